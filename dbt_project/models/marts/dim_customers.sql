with

customers as (

    -- the current version; a deleted customer stays (transactions still point at it), flagged
    select * from {{ ref('int_customer_versions') }}
    where is_current

),

final as (

    select
        customer_id,
        created_at,
        country,
        card_type,
        birth_year,
        is_deleted

    from customers

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by customer_id
