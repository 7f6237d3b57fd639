with

source as (

    select * from {{ ref('customers_snapshot') }}

),

renamed as (

    select
        cast(dbt_scd_id as varchar) as customer_version_id,
        cast(customer_id as varchar) as customer_id,
        cast(created_at as timestamptz) as created_at,
        cast(country as varchar) as country,
        cast(card_type as varchar) as card_type,
        cast(birth_year as integer) as birth_year,
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
