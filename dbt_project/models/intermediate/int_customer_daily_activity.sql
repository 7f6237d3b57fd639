with

transactions as (

    select * from {{ ref('int_transactions_enriched') }}

),

daily as (

    select
        customer_id,
        transaction_date as activity_date,
        count(*) as txn_count,
        -- exact DECIMAL sum: a DOUBLE sum depends on the order rows arrive in, so rebuilds could differ
        sum(cast(amount as decimal(18, 2))) as amount_sum,
        max(amount) as amount_max,
        cast(sum(is_night) as bigint) as night_txn_count,
        cast(sum(is_online) as bigint) as online_txn_count,
        max(loaded_at) as last_loaded_at

    from transactions
    group by customer_id, transaction_date

)

select * from daily
