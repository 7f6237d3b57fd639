{#
    Each version of an entity with the interval it was valid in, for as-of joins (`valid_from <= t < valid_to`,
    or an ASOF JOIN on `valid_from`), shared by the customer and merchant version models.
#}
{% macro version_intervals(versions, key) -%}
with

versions as (

    select * from {{ versions }}

),

numbered as (

    select
        *,
        row_number() over by_time as version_number,
        lead(recorded_from) over by_time as next_recorded_from

    from versions
    window by_time as (partition by {{ key }} order by recorded_from)

),

final as (

    select
        * exclude (next_recorded_from),
        case when version_number = 1 then cast('-infinity' as timestamptz) else recorded_from end as valid_from,
        coalesce(next_recorded_from, cast('infinity' as timestamptz)) as valid_to,
        next_recorded_from is null as is_current,
        -- When the platform could first know this version (a feature row that reads it is no older): its load,
        -- or dbt's deletion record's capture. NULL for the first version, known for as long as history goes.
        case when version_number > 1 then greatest(loaded_at, recorded_from) end as known_from

    from numbered

)

select * from final
{%- endmacro %}
