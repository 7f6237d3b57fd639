{#
    The daily partition window Dagster passes as vars: `min_date` inclusive, `max_date` exclusive (ISO dates).
    Without vars (standalone `dbt build`) the window is every day, so a plain build rebuilds the whole model.
#}
{% macro partition_window_filter(date_column) -%}
    {%- if var('min_date') is not none and var('max_date') is not none -%}
        {{ date_column }} >= cast('{{ var("min_date") | string | truncate(10, True, "") }}' as date)
        and {{ date_column }} < cast('{{ var("max_date") | string | truncate(10, True, "") }}' as date)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#
    Pre-hook of a daily incremental model: delete the window's rows, so that the insert that follows replaces
    the partitions (a day re-loaded with fewer rows loses the rows it no longer has; re-running changes nothing).
#}
{% macro delete_partition_window(date_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ partition_window_filter(date_column) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#
    Post-hook of a mart kept as a DuckDB table: write the whole table to `<external_root>/<model>.parquet`
    (what Feast and the ML stages read) in a fixed row order, like the `external` marts.
#}
{% macro export_table_to_parquet(order_by) -%}
    copy (select * from {{ this }} order by {{ order_by }})
    to '{{ adapter.external_root() }}/{{ this.identifier }}.parquet' (format parquet)
{%- endmacro %}
