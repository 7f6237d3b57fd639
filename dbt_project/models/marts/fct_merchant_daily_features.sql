with

daily as (

    select * from {{ ref('int_merchant_daily_activity') }}

),

pairs as (

    select customer_id, merchant_id, activity_date from {{ ref('int_customer_merchant_daily_activity') }}

),

fraud_reports as (

    select * from {{ ref('int_merchant_fraud_reports') }}

),

-- the versions that changed the category, the only attribute the rows read: another change (name, country, a
-- deletion) must not make a row known later
merchant_versions as (

    select merchant_id, valid_from, known_from, merchant_category_code
    from {{ ref('int_merchant_versions') }}
    qualify merchant_category_code is distinct from lag(merchant_category_code) over (
        partition by merchant_id order by valid_from
    )

),

category_codes as (

    select merchant_category_code, risk_level from {{ ref('merchant_category_codes') }}

),

-- every day of the feature calendar, with zeros on the days the merchant had no transaction
dense as (

    {{ dense_daily_activity('daily', 'merchant_id') }}

),

windowed as (

    select
        merchant_id,
        activity_date,
        timezone('UTC', cast(activity_date + interval 1 day as timestamp)) as event_timestamp,
        txn_count,
        sum(txn_count) over last_7_days as txn_count_7d,
        sum(amount_sum) over last_7_days as amount_sum_7d,
        max(amount_max) over last_7_days as amount_max_7d,
        sum(night_txn_count) over last_7_days as night_txn_count_7d,
        sum(online_txn_count) over last_7_days as online_txn_count_7d,
        sum(txn_count) over last_30_days as txn_count_30d,
        sum(amount_sum) over last_30_days as amount_sum_30d,
        -- the row changes when any day of its window is (re)loaded, and it is known once its own day is loaded
        greatest(max(last_loaded_at) over last_30_days, day_loaded_at) as knowable_from

    from dense
    window
        last_7_days as (
            partition by merchant_id
            order by activity_date
            range between interval 6 days preceding and current row
        ),
        last_30_days as (
            partition by merchant_id
            order by activity_date
            range between interval 29 days preceding and current row
        )

),

distinct_customers as (

    {{ trailing_distinct_counts('pairs', 'merchant_id', 'customer_id', [7]) }}

),

-- Frauds among the merchant's last 30 days of transactions that had been reported by the end of the day: a
-- report made later is not known yet when the feature row becomes visible (event_timestamp), so it must not
-- count, or training would see chargebacks that serving cannot.
known_frauds as (

    select
        dense.merchant_id,
        dense.activity_date,
        coalesce(sum(fraud_reports.fraud_reports), 0) as known_frauds_30d

    from dense
    left join fraud_reports
        on fraud_reports.merchant_id = dense.merchant_id
        and fraud_reports.transaction_date between dense.activity_date - 29 and dense.activity_date
        and fraud_reports.reported_date <= dense.activity_date
    group by 1, 2

),

final as (

    select
        windowed.merchant_id,
        windowed.activity_date as feature_date,
        windowed.event_timestamp,
        -- a merchant version recorded after the row's figures makes the row known only from then on
        {{ knowable_at('windowed.event_timestamp', 'greatest(windowed.knowable_from, merchant_versions.known_from)') }}
            as created_timestamp,
        -- Money is an exact DECIMAL up to here (sums DECIMAL(38,2), maxima DECIMAL(18,2)); each amount feature
        -- converts it to DOUBLE once, here, because Feast and XGBoost read float64. An average divides the
        -- converted sum by the count: the DOUBLE division DuckDB would also do for DECIMAL / BIGINT.
        -- an empty window has a count of 0 and no average, maximum, share or rate (null)
        cast(windowed.txn_count as bigint) as merch_txn_count_1d,
        cast(windowed.txn_count_7d as bigint) as merch_txn_count_7d,
        cast(windowed.amount_sum_7d as double) / nullif(windowed.txn_count_7d, 0) as merch_amount_avg_7d,
        cast(windowed.amount_max_7d as double) as merch_amount_max_7d,
        cast(windowed.night_txn_count_7d as double) / nullif(windowed.txn_count_7d, 0) as merch_night_txn_share_7d,
        cast(windowed.online_txn_count_7d as double) / nullif(windowed.txn_count_7d, 0) as merch_online_txn_share_7d,
        cast(coalesce(distinct_customers.distinct_7d, 0) as bigint) as merch_distinct_customers_7d,
        cast(windowed.txn_count_30d as bigint) as merch_txn_count_30d,
        cast(windowed.amount_sum_30d as double) / nullif(windowed.txn_count_30d, 0) as merch_amount_avg_30d,
        cast(known_frauds.known_frauds_30d as bigint) as merch_known_frauds_30d,
        cast(known_frauds.known_frauds_30d as double) / nullif(windowed.txn_count_30d, 0) as merch_chargeback_rate_30d,
        cast(merchant_versions.merchant_category_code as bigint) as merch_category_code,
        cast(coalesce(category_codes.risk_level = 'high', false) as bigint) as merch_high_risk_mcc

    from windowed
    -- the distinct count changes only on its event days: each row takes the newest one up to its day
    asof left join distinct_customers
        on distinct_customers.merchant_id = windowed.merchant_id
        and distinct_customers.activity_date <= windowed.activity_date
    inner join known_frauds
        on known_frauds.merchant_id = windowed.merchant_id and known_frauds.activity_date = windowed.activity_date
    -- the merchant's attributes as of the row's time (when the row becomes visible to a point-in-time join)
    asof left join merchant_versions
        on merchant_versions.merchant_id = windowed.merchant_id
        and windowed.event_timestamp >= merchant_versions.valid_from
    left join category_codes on category_codes.merchant_category_code = merchant_versions.merchant_category_code

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by feature_date, merchant_id
