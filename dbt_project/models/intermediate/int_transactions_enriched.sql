with

transactions as (

    select * from {{ ref('stg_transactions') }}

),

merchant_versions as (

    select * from {{ ref('int_merchant_versions') }}

),

with_utc_parts as (

    select
        transactions.*,
        -- timezone('UTC', ...) makes the day and hour independent of the session's TimeZone setting
        cast(timezone('UTC', transactions.event_ts) as date) as transaction_date,
        cast(extract(hour from timezone('UTC', transactions.event_ts)) as integer) as hour_of_day

    from transactions

),

enriched as (

    select
        with_utc_parts.transaction_id,
        with_utc_parts.customer_id,
        with_utc_parts.merchant_id,
        with_utc_parts.event_ts,
        with_utc_parts.transaction_date,
        with_utc_parts.amount,
        with_utc_parts.currency,
        with_utc_parts.channel,
        cast(with_utc_parts.channel = 'online' as integer) as is_online,
        with_utc_parts.hour_of_day,
        cast(with_utc_parts.hour_of_day between 0 and 5 as integer) as is_night,
        merchant_versions.merchant_category_code,
        merchant_versions.category as merchant_category,
        with_utc_parts.loaded_at

    from with_utc_parts
    -- the merchant as it was when the transaction happened: its newest version starting no later
    asof left join merchant_versions
        on with_utc_parts.merchant_id = merchant_versions.merchant_id
        and with_utc_parts.event_ts >= merchant_versions.valid_from

)

select * from enriched
