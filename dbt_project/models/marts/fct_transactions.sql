{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        tags=['daily'],
        pre_hook="{{ delete_partition_window('transaction_date') }}",
        post_hook="{{ export_table_to_parquet('event_ts, transaction_id') }}",
    )
}}

{#
    Daily incremental: a run processes only the partition window Dagster passes (vars min_date/max_date), after
    the pre-hook deleted that window's rows. The table stays in DuckDB; the post-hook exports it as parquet.
#}

with

transactions as (

    select * from {{ ref('int_transactions_enriched') }}
    where {{ partition_window_filter('transaction_date') }}

),

final as (

    select
        transaction_id,
        customer_id,
        merchant_id,
        event_ts,
        transaction_date,
        -- the DECIMAL(18,2) amount leaves the warehouse as DOUBLE (float64 for training and monitoring)
        cast(amount as double) as amount,
        currency,
        channel,
        is_online,
        hour_of_day,
        is_night,
        merchant_category_code

    from transactions

)

select * from final
