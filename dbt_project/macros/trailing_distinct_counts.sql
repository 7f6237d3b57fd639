{#
    Distinct counterparts per `key` and activity date over trailing windows of `days` days, from `relation`
    (one row per key, counterpart and activity date).

    Joining every day to every row of its window and counting distinct values grows with activity x window length
    and cannot spill: at 10M transactions it ran DuckDB out of its memory limit. Here each row covers the dates
    from its own date up to the end of its window or the pair's next row, whichever comes first, so on any date
    exactly one row of a pair covers it if the pair met within the window, and the distinct count is a running
    sum of +1/-1 events per key: sorts and window functions, which DuckDB spills to disk.
#}
{% macro trailing_distinct_counts(relation, key, counterpart, days) %}

    with spans as (
        select
            {{ key }},
            activity_date,
            lead(activity_date) over (partition by {{ key }}, {{ counterpart }} order by activity_date) as next_date
        from {{ relation }}
    ),

    events as (
        select {{ key }}, activity_date as event_date
            {%- for n in days %}, 1 as delta_{{ n }}d{% endfor %}
        from spans
        {%- for n in days %}
        union all
        select {{ key }}, least(activity_date + {{ n }}, coalesce(next_date, activity_date + {{ n }})) as event_date
            {%- for m in days %}, {{ -1 if m == n else 0 }} as delta_{{ m }}d{% endfor %}
        from spans
        {%- endfor %}
    )

    select
        {{ key }},
        event_date as activity_date
        {%- for n in days %},
        sum(sum(delta_{{ n }}d)) over (
            partition by {{ key }} order by event_date rows between unbounded preceding and current row
        ) as distinct_{{ n }}d
        {%- endfor %}
    from events
    group by 1, 2

{% endmacro %}
