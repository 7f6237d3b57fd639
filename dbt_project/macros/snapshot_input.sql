{#
    What a snapshot records of a raw master-data table: its columns as loaded (staging types them, from the
    snapshot), the source's `updated_at` / `deleted_at` when it has them, and `changed_at`, the time a version
    starts: when the system of record changed the row (`updated_at`, database mode) or else when the platform
    loaded it (`_loaded_at`, files mode: a snapshot file says nothing about when its rows changed).
#}
{% macro snapshot_input(table, columns) -%}
with

source as (

    select
        {%- for column in columns %}
        {{ column }},
        {%- endfor %}
        {{ optional_column(source('raw', table), 'updated_at', 'timestamptz') }} as updated_at,
        {{ optional_column(source('raw', table), 'deleted_at', 'timestamptz') }} as deleted_at,
        _loaded_at

    from {{ source('raw', table) }}

),

final as (

    select
        *,
        coalesce(updated_at, _loaded_at) as changed_at

    from source

)

select * from final
{%- endmacro %}
