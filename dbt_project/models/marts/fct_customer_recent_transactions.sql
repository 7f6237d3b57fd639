{#
    Feast batch source of `customer_recent_transactions` (and of its push source): the state the velocity
    features are computed from, one row per customer and instant at which the customer paid, holding the
    customer's transactions from `recent_horizon_seconds` before that instant up to and including it (all of the
    instant's own transactions too). Arrays are aligned and sorted by (event time, transaction id); amounts are
    integer cents, so sums do not depend on the order of addition.

    A row is the state right after its instant, and the stream consumer makes the same state known online within
    a second of the transaction, so `created_timestamp` is the instant itself. The velocity features
    (`velocity_features` in feature_repo/fraud_features.py) take the newest state at or before a transaction and
    count only the events strictly before it: the transaction never sees itself.
#}

with

transactions as (

    select
        transaction_id,
        customer_id,
        merchant_id,
        event_ts,
        epoch_us(event_ts) as event_us,
        -- widened first: DECIMAL(18, 2) * 100 overflows from 10^14 EUR, which the landing contract allows
        cast(cast(amount as decimal(38, 2)) * 100 as bigint) as amount_cents

    from {{ ref('int_transactions_enriched') }}

),

states as (

    -- One plain `list` window aggregate of structs, sorted afterwards (the key (event_us, transaction_id) is
    -- unique, so the order is total): DuckDB evaluates ordered aggregates (`list(x order by ...) over`) frame by
    -- frame, and four of them took 17x longer at 1M transactions for the same rows (benchmarks/velocity_offline.py).
    select
        customer_id,
        event_ts,
        list_sort(
            list(
                { 'us': event_us, 'id': transaction_id, 'cents': amount_cents, 'merchant': merchant_id }
            ) over recent
        ) as recent

    from transactions
    window
        recent as (
            partition by customer_id order by event_us
            range between {{ var('recent_horizon_seconds') * 1000000 }} preceding and current row
        )
    -- the transactions of one instant share one state
    qualify row_number() over (partition by customer_id, event_us order by transaction_id) = 1

),

final as (

    select
        customer_id,
        event_ts as event_timestamp,
        event_ts as created_timestamp,
        list_transform(recent, x -> x.id) as recent_transaction_ids,
        list_transform(recent, x -> x.us) as recent_event_us,
        list_transform(recent, x -> x.cents) as recent_amount_cents,
        list_transform(recent, x -> x.merchant) as recent_merchant_ids

    from states

)

-- a fixed row order makes rebuilt files byte-identical
select * from final
order by event_timestamp, customer_id
