{#
    Custom schemas are used as given (`reference`, `audit`) instead of dbt's default `<target schema>_<custom>`,
    so the seed and the stored test failures have stable names whatever the target.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
