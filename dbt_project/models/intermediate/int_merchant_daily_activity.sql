with

daily as (
    {{ daily_activity(['merchant_id', 'merchant_category_code']) }}
)

select * from daily
