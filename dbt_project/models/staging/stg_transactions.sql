with

source as (

    select * from {{ source('raw', 'transactions') }}

),

renamed as (

    select
        cast(transaction_id as varchar) as transaction_id,
        cast(customer_id as varchar) as customer_id,
        cast(merchant_id as varchar) as merchant_id,
        -- money is typed once, here, as exact DECIMAL(18,2) (cents) and stays so through the intermediate
        -- models; only the marts convert it to DOUBLE (float64 for Feast, training and monitoring)
        cast(amount as decimal(18, 2)) as amount,
        cast(currency as varchar) as currency,
        cast(channel as varchar) as channel,
        cast(event_ts as timestamptz) as event_ts,
        cast(partition_date as date) as partition_date,
        cast(_loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
