with

merchants as (

    select * from {{ ref('stg_merchants') }}

),

final as (

    select
        merchant_id,
        merchant_name,
        merchant_category_code,
        category,
        country,
        created_at

    from merchants

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by merchant_id
