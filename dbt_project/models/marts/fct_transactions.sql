with

transactions as (

    select * from {{ ref('int_transactions_enriched') }}

),

final as (

    select
        transaction_id,
        customer_id,
        merchant_id,
        event_ts,
        transaction_date,
        amount,
        currency,
        channel,
        is_online,
        hour_of_day,
        is_night,
        merchant_category_code

    from transactions

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by event_ts, transaction_id
