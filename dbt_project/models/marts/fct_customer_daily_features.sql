with

daily as (

    select * from {{ ref('int_customer_daily_activity') }}

),

pairs as (

    select customer_id, merchant_id, activity_date from {{ ref('int_customer_merchant_daily_activity') }}

),

-- the versions that changed `created_at`, the only attribute the rows read: another change (a move, a deletion)
-- must not make a row known later
customer_versions as (

    select customer_id, valid_from, known_from, created_at
    from {{ ref('int_customer_versions') }}
    qualify created_at is distinct from lag(created_at) over (partition by customer_id order by valid_from)

),

last_transactions as (

    select customer_id, transaction_date as activity_date, max(event_ts) as last_txn_ts
    from {{ ref('int_transactions_enriched') }}
    group by 1, 2

),

-- every day of the feature calendar, with zeros on the days the customer had no transaction
dense as (

    select dense_activity.*, last_transactions.last_txn_ts
    from ({{ dense_daily_activity('daily', 'customer_id') }}) as dense_activity
    left join last_transactions
        on last_transactions.customer_id = dense_activity.customer_id
        and last_transactions.activity_date = dense_activity.activity_date

),

windowed as (

    select
        customer_id,
        activity_date,
        timezone('UTC', cast(activity_date + interval 1 day as timestamp)) as event_timestamp,
        txn_count,
        amount_sum,
        amount_max,
        sum(txn_count) over last_7_days as txn_count_7d,
        sum(amount_sum) over last_7_days as amount_sum_7d,
        max(amount_max) over last_7_days as amount_max_7d,
        sum(night_txn_count) over last_7_days as night_txn_count_7d,
        sum(online_txn_count) over last_7_days as online_txn_count_7d,
        sum(txn_count) over last_30_days as txn_count_30d,
        sum(amount_sum) over last_30_days as amount_sum_30d,
        max(amount_max) over last_30_days as amount_max_30d,
        max(last_txn_ts) over to_date as last_txn_ts,
        -- the row changes when any day of its window is (re)loaded, and it is known once its own day is loaded
        greatest(max(last_loaded_at) over last_30_days, day_loaded_at) as knowable_from

    from dense
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
        ),
        to_date as (
            partition by customer_id
            order by activity_date
            rows between unbounded preceding and current row
        )

),

-- distinct counts do not add up across days: count them from the customer x merchant x day grain
distinct_merchants as (

    {{ trailing_distinct_counts('pairs', 'customer_id', 'merchant_id', [7, 30]) }}

),

final as (

    select
        windowed.customer_id,
        windowed.activity_date as feature_date,
        windowed.event_timestamp,
        -- a customer version recorded after the row's figures makes the row known only from then on
        {{ knowable_at('windowed.event_timestamp', 'greatest(windowed.knowable_from, customer_versions.known_from)') }}
            as created_timestamp,
        -- Money is an exact DECIMAL up to here (sums DECIMAL(38,2), maxima DECIMAL(18,2)); each amount feature
        -- converts it to DOUBLE once, here, because Feast and XGBoost read float64. An average divides the
        -- converted sum by the count: the DOUBLE division DuckDB would also do for DECIMAL / BIGINT.
        cast(windowed.txn_count as bigint) as cust_txn_count_1d,
        cast(windowed.amount_sum as double) as cust_amount_sum_1d,
        -- an empty window has a count and a sum of 0 and no average, maximum or share (null)
        cast(windowed.amount_sum as double) / nullif(windowed.txn_count, 0) as cust_amount_avg_1d,
        cast(windowed.amount_max as double) as cust_amount_max_1d,
        cast(windowed.txn_count_7d as bigint) as cust_txn_count_7d,
        cast(windowed.amount_sum_7d as double) as cust_amount_sum_7d,
        cast(windowed.amount_sum_7d as double) / nullif(windowed.txn_count_7d, 0) as cust_amount_avg_7d,
        cast(windowed.amount_max_7d as double) as cust_amount_max_7d,
        cast(windowed.night_txn_count_7d as double) / nullif(windowed.txn_count_7d, 0) as cust_night_txn_share_7d,
        cast(windowed.online_txn_count_7d as double) / nullif(windowed.txn_count_7d, 0) as cust_online_txn_share_7d,
        cast(coalesce(distinct_merchants.distinct_7d, 0) as bigint) as cust_distinct_merchants_7d,
        cast(windowed.txn_count_30d as bigint) as cust_txn_count_30d,
        cast(windowed.amount_sum_30d as double) as cust_amount_sum_30d,
        cast(windowed.amount_sum_30d as double) / nullif(windowed.txn_count_30d, 0) as cust_amount_avg_30d,
        cast(windowed.amount_max_30d as double) as cust_amount_max_30d,
        cast(coalesce(distinct_merchants.distinct_30d, 0) as bigint) as cust_distinct_merchants_30d,
        -- the newest transaction known at `event_timestamp`; the on-demand view turns it into "seconds since"
        cast(epoch(windowed.last_txn_ts) as bigint) as cust_last_txn_epoch,
        -- young accounts are where card-testing fraud starts
        date_diff('day', cast(customer_versions.created_at as date), windowed.activity_date) as cust_account_age_days

    from windowed
    -- the distinct counts change only on their event days: each row takes the newest one up to its day
    asof left join distinct_merchants
        on distinct_merchants.customer_id = windowed.customer_id
        and distinct_merchants.activity_date <= windowed.activity_date
    -- the customer's attributes as of the row's time (when the row becomes visible to a point-in-time join)
    asof left join customer_versions
        on customer_versions.customer_id = windowed.customer_id
        and windowed.event_timestamp >= customer_versions.valid_from

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by feature_date, customer_id
