with

merchants as (

    -- the current version; a deleted merchant stays (transactions still point at it), flagged
    select * from {{ ref('int_merchant_versions') }}
    where is_current

),

category_codes as (

    select * from {{ ref('merchant_category_codes') }}

),

final as (

    select
        merchants.merchant_id,
        merchants.merchant_name,
        merchants.merchant_category_code,
        merchants.category,
        category_codes.description as merchant_category_description,
        coalesce(category_codes.risk_level, 'unknown') as mcc_risk_level,
        merchants.country,
        merchants.created_at,
        merchants.is_deleted

    from merchants
    left join category_codes using (merchant_category_code)

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by merchant_id
