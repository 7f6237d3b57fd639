{#
    When a feature row became known to the platform, for Feast's `created_timestamp` (training joins only see
    rows created no later than the transaction, so a correction loaded after a label time cannot leak into it).

    A row's figures are known from the load of its transactions on. Exception: the platform's first load (the
    initial backfill of history, one ingestion run) stands in for loads that would have happened on time, so its
    rows count as known at their event time; otherwise no historical transaction could ever see a feature.
    Every later load (daily runs, re-loads, corrections) counts from its load time.
#}
{% macro knowable_at(event_timestamp, loaded_at) -%}
    case
        when {{ loaded_at }} <= (select min(loaded_at) from {{ ref('stg_transactions') }})
            then {{ event_timestamp }}
        else greatest({{ loaded_at }}, {{ event_timestamp }})
    end
{%- endmacro %}
