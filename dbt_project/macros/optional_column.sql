{#
    `column` of `relation` cast to `data_type`, or a typed NULL when the relation does not have it (yet): the raw
    tables of the files mode may predate a column that the database source writes (`updated_at`, `deleted_at`),
    and the models must read both. Outside execution (parsing, linting) there is no relation to ask: NULL.
#}
{% macro optional_column(relation, column, data_type) -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- for existing in adapter.get_columns_in_relation(relation) -%}
            {%- if existing.name | lower == column | lower -%}{%- do present.append(existing.name) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if present -%}cast({{ adapter.quote(present[0]) }} as {{ data_type }}){%- else -%}cast(null as {{ data_type }}){%- endif -%}
{%- endmacro %}
