with

source as (

    select * from {{ source('raw', 'chargebacks') }}

),

renamed as (

    select
        cast(chargeback_id as varchar) as chargeback_id,
        cast(transaction_id as varchar) as transaction_id,
        cast(reported_at as timestamptz) as reported_at,
        cast(reason as varchar) as reason,
        cast(partition_date as date) as partition_date,
        cast(_loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
