{#
    One row per customer, merchant and UTC day with at least one transaction between them: the grain of
    "distinct merchants in a window" and of "has this customer paid this merchant before".
#}

with

daily as (
    {{ daily_activity(['customer_id', 'merchant_id']) }}
)

select * from daily
