with

source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        cast(customer_id as varchar) as customer_id,
        cast(created_at as timestamptz) as created_at,
        cast(country as varchar) as country,
        cast(card_type as varchar) as card_type,
        cast(birth_year as integer) as birth_year,
        cast(_loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
