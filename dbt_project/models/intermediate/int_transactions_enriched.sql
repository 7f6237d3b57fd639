with

transactions as (

    select * from {{ ref('stg_transactions') }}

),

merchants as (

    select * from {{ ref('stg_merchants') }}

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
        merchants.merchant_category_code,
        merchants.category as merchant_category,
        with_utc_parts.loaded_at

    from with_utc_parts
    left join merchants
        on with_utc_parts.merchant_id = merchants.merchant_id

)

select * from enriched
