with

customers as (

    select * from {{ ref('stg_customers') }}

),

final as (

    select
        customer_id,
        created_at,
        country,
        card_type,
        birth_year

    from customers

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by customer_id
