with

daily as (

    select * from {{ ref('int_customer_daily_activity') }}

),

customers as (

    select customer_id, created_at from {{ ref('stg_customers') }}

),

windowed as (

    select
        customer_id,
        activity_date,
        last_loaded_at,
        txn_count,
        amount_sum,
        sum(txn_count) over last_7_days as txn_count_7d,
        sum(amount_sum) over last_7_days as amount_sum_7d,
        max(amount_max) over last_7_days as amount_max_7d,
        sum(night_txn_count) over last_7_days as night_txn_count_7d,
        sum(online_txn_count) over last_7_days as online_txn_count_7d,
        sum(txn_count) over last_30_days as txn_count_30d,
        sum(amount_sum) over last_30_days as amount_sum_30d

    from daily
    window
        last_7_days as (
            partition by customer_id
            order by activity_date
            range between interval 6 days preceding and current row
        ),
        last_30_days as (
            partition by customer_id
            order by activity_date
            range between interval 29 days preceding and current row
        )

),

final as (

    select
        windowed.customer_id,
        activity_date as feature_date,
        timezone('UTC', cast(activity_date + interval 1 day as timestamp)) as event_timestamp,
        last_loaded_at as created_timestamp,
        cast(txn_count as bigint) as cust_txn_count_1d,
        cast(amount_sum as double) as cust_amount_sum_1d,
        cast(txn_count_7d as bigint) as cust_txn_count_7d,
        cast(amount_sum_7d as double) as cust_amount_sum_7d,
        cast(amount_sum_7d as double) / txn_count_7d as cust_amount_avg_7d,
        cast(amount_max_7d as double) as cust_amount_max_7d,
        cast(night_txn_count_7d as double) / txn_count_7d as cust_night_txn_share_7d,
        cast(online_txn_count_7d as double) / txn_count_7d as cust_online_txn_share_7d,
        cast(txn_count_30d as bigint) as cust_txn_count_30d,
        cast(amount_sum_30d as double) / txn_count_30d as cust_amount_avg_30d,
        -- young accounts are where card-testing fraud starts
        date_diff('day', cast(customers.created_at as date), windowed.activity_date) as cust_account_age_days

    from windowed
    left join customers using (customer_id)

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by feature_date, customer_id
