with

transactions as (

    select * from {{ ref('stg_transactions') }}

),

chargebacks as (

    select * from {{ ref('stg_chargebacks') }}

),

fraud_reports as (

    select
        transaction_id,
        min(reported_at) as fraud_reported_at

    from chargebacks
    where reason = 'fraud'
    group by transaction_id

),

final as (

    select
        transactions.transaction_id,
        transactions.customer_id,
        transactions.event_ts,
        cast(fraud_reports.transaction_id is not null as integer) as is_fraud,
        fraud_reports.fraud_reported_at

    from transactions
    left join fraud_reports
        on transactions.transaction_id = fraud_reports.transaction_id

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by event_ts, transaction_id
