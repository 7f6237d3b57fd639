with

daily as (
    {{ daily_activity(['customer_id']) }}
)

select * from daily
