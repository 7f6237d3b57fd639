{#
    One row per entity and UTC day with activity: the daily aggregates every rolling-window feature is summed from.
    `keys` are the grouping columns (the entity id first, then any attribute constant per entity).
#}
{% macro daily_activity(keys) %}

    select
        {% for key in keys %}{{ key }},
        {% endfor %}transaction_date as activity_date,
        count(*) as txn_count,
        -- `amount` is DECIMAL(18,2) from staging: the sum is exact (DECIMAL(38,2)), whereas a DOUBLE sum would
        -- depend on the order rows arrive in, so rebuilds could differ
        sum(amount) as amount_sum,
        max(amount) as amount_max,
        cast(sum(is_night) as bigint) as night_txn_count,
        cast(sum(is_online) as bigint) as online_txn_count,
        max(loaded_at) as last_loaded_at

    from {{ ref('int_transactions_enriched') }}
    group by {% for key in keys %}{{ key }}, {% endfor %}transaction_date

{% endmacro %}
