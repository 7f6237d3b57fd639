with

daily as (
    {{ daily_activity(['merchant_id']) }}
)

select * from daily
