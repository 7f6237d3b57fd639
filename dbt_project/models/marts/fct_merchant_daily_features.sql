with

daily as (

    select * from {{ ref('int_merchant_daily_activity') }}

),

windowed as (

    select
        merchant_id,
        activity_date,
        last_loaded_at,
        merchant_category_code,
        txn_count,
        sum(txn_count) over last_7_days as txn_count_7d,
        sum(amount_sum) over last_7_days as amount_sum_7d,
        sum(night_txn_count) over last_7_days as night_txn_count_7d,
        sum(online_txn_count) over last_7_days as online_txn_count_7d

    from daily
    window
        last_7_days as (
            partition by merchant_id
            order by activity_date
            range between interval 6 days preceding and current row
        )

),

final as (

    select
        merchant_id,
        activity_date as feature_date,
        timezone('UTC', cast(activity_date + interval 1 day as timestamp)) as event_timestamp,
        last_loaded_at as created_timestamp,
        cast(txn_count as bigint) as merch_txn_count_1d,
        cast(txn_count_7d as bigint) as merch_txn_count_7d,
        cast(amount_sum_7d as double) / txn_count_7d as merch_amount_avg_7d,
        cast(night_txn_count_7d as double) / txn_count_7d as merch_night_txn_share_7d,
        cast(online_txn_count_7d as double) / txn_count_7d as merch_online_txn_share_7d,
        merchant_category_code as merch_category_code

    from windowed

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by feature_date, merchant_id
