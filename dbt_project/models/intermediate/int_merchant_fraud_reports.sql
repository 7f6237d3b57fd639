{#
    Fraud chargebacks per merchant, by the day of the disputed transaction and the day the fraud became known
    (the earliest `fraud` chargeback's report day, as in `fct_transaction_labels`). A merchant's chargeback rate
    as of a day may only count reports made by the end of that day: this model keeps both days so that the mart
    can filter on the second.
#}

with

first_fraud_reports as (

    select
        transaction_id,
        min(reported_at) as fraud_reported_at

    from {{ ref('stg_chargebacks') }}
    where reason = 'fraud'
    group by transaction_id

),

transactions as (

    select transaction_id, merchant_id, transaction_date from {{ ref('int_transactions_enriched') }}

),

final as (

    select
        transactions.merchant_id,
        transactions.transaction_date,
        cast(timezone('UTC', first_fraud_reports.fraud_reported_at) as date) as reported_date,
        count(*) as fraud_reports

    from first_fraud_reports
    inner join transactions using (transaction_id)
    group by 1, 2, 3

)

select * from final
