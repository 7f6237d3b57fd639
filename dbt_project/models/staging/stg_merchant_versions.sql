with

source as (

    select * from {{ ref('merchants_snapshot') }}

),

renamed as (

    select
        cast(dbt_scd_id as varchar) as merchant_version_id,
        cast(merchant_id as varchar) as merchant_id,
        cast(merchant_name as varchar) as merchant_name,
        cast(category_code as integer) as merchant_category_code,
        cast(category as varchar) as category,
        cast(country as varchar) as country,
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,
        cast(deleted_at as timestamptz) as deleted_at,
        -- a tombstone of the system of record, or a key gone from the source (dbt's deletion record)
        coalesce(deleted_at is not null or dbt_is_deleted = 'True', false) as is_deleted,
        cast(dbt_valid_from as timestamptz) as recorded_from,
        cast(dbt_valid_to as timestamptz) as recorded_to,
        cast(_loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
