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
