with

source as (

    select * from {{ source('raw', 'merchants') }}

),

renamed as (

    select
        cast(merchant_id as varchar) as merchant_id,
        cast(merchant_name as varchar) as merchant_name,
        cast(category_code as integer) as merchant_category_code,
        cast(category as varchar) as category,
        cast(country as varchar) as country,
        cast(created_at as timestamptz) as created_at,
        cast(_loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
