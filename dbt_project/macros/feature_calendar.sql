{#
    The days a daily feature mart has a row for: one row per `key` and day from the entity's first activity
    day on, so that a point-in-time join at any instant lands on the row of the day before it, whose windows
    end where the documented rule says (the start of the transaction's own day), not on the last *active* day.

    After an activity day the rows go on every day until the next activity day or until the longest window has
    drained (`window_days` days later: that row's windows are all empty, counts and sums 0); after that, while
    the entity stays idle, one row every `window_days` days. The feature views' TTL is `window_days` + 1 days
    (feature_repo/fraud_features.py), so within the loaded days a seen entity always has a row inside the TTL
    and reads 0, never null: null stays "never seen" (or "nothing loaded for longer than the TTL"). The cost is
    bounded: at most `window_days` + 1 rows per activity day, plus one per `window_days` idle days.

    Rows stop at the newest loaded transaction day: a day not loaded yet is not known to be empty.
    `relation` holds one row per key and activity day (`activity_date`).
#}
{% macro feature_calendar(relation, key, window_days) %}

    with activity as (
        select
            {{ key }},
            activity_date,
            coalesce(
                lead(activity_date) over (partition by {{ key }} order by activity_date),
                (select max(transaction_date) from {{ ref('int_transactions_enriched') }}) + 1
            ) - activity_date as days_to_next
        from {{ relation }}
    ),

    offsets as (
        select
            {{ key }},
            activity_date,
            unnest(list_concat(
                range(0, least(days_to_next, {{ window_days + 1 }})),
                range({{ 2 * window_days }}, days_to_next, {{ window_days }})
            )) as days_after
        from activity
    )

    select {{ key }}, cast(activity_date + cast(days_after as integer) as date) as feature_date
    from offsets

{% endmacro %}

{#
    The daily activity of `relation` (macro daily_activity's columns) on every day of the feature calendar, with
    counts and sums 0 (maxima null) on the days the entity had no transaction, and `day_loaded_at`: the last load
    of any transaction of that day, from which on the row is known.
#}
{% macro dense_daily_activity(relation, key) %}

    with calendar as (
        {{ feature_calendar(relation, key, var('longest_window_days')) }}
    ),

    day_loads as (
        select transaction_date, max(loaded_at) as day_loaded_at
        from {{ ref('int_transactions_enriched') }}
        group by 1
    )

    select
        calendar.{{ key }},
        calendar.feature_date as activity_date,
        coalesce(activity.txn_count, 0) as txn_count,
        coalesce(activity.amount_sum, 0) as amount_sum,
        activity.amount_max,
        coalesce(activity.night_txn_count, 0) as night_txn_count,
        coalesce(activity.online_txn_count, 0) as online_txn_count,
        activity.last_loaded_at,
        day_loads.day_loaded_at

    from calendar
    left join {{ relation }} as activity
        on activity.{{ key }} = calendar.{{ key }} and activity.activity_date = calendar.feature_date
    left join day_loads
        on day_loads.transaction_date = calendar.feature_date

{% endmacro %}
