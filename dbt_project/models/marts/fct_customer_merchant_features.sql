{#
    Feast batch source of the customer x merchant feature view: one row per pair and UTC day on which the
    customer paid the merchant, with the pair's count of transactions up to and including that day. Like the
    daily marts, a row becomes visible at the end of its day (`event_timestamp` = `feature_date` + 1 day), so a
    transaction never sees its own day. No row visible at a transaction's time = first purchase at this
    merchant (as far as the previous day's figures know).
#}

with

pairs as (

    select * from {{ ref('int_customer_merchant_daily_activity') }}

),

final as (

    select
        customer_id,
        merchant_id,
        activity_date as feature_date,
        timezone('UTC', cast(activity_date + interval 1 day as timestamp)) as event_timestamp,
        {{ knowable_at("timezone('UTC', cast(activity_date + interval 1 day as timestamp))", 'last_loaded_at') }}
            as created_timestamp,
        cast(sum(txn_count) over (
            partition by customer_id, merchant_id order by activity_date
            rows between unbounded preceding and current row
        ) as bigint) as cm_txn_count_to_date

    from pairs

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by feature_date, customer_id, merchant_id
