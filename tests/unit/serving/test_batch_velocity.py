"""Transactions of one scoring request see each other in the velocity features, as they will offline."""

from datetime import UTC, datetime, timedelta

from platform_env import feature_repo_module

from platform_assets.serving.features import fold_batch_into_states, transaction_us

velocity_features_from_state = feature_repo_module("fraud_features_batch_under_test").velocity_features_from_state
T = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _columns(rows, states):
    columns = {"transaction_us": [transaction_us(r["event_ts"]) for r in rows],
               "customer_id": [r["customer_id"] for r in rows], "merchant_id": [r["merchant_id"] for r in rows]}
    for field in ("recent_transaction_ids", "recent_event_us", "recent_amount_cents", "recent_merchant_ids"):
        columns[field] = [None if s is None else list(s[field]) for s in states]
    return columns


def test_card_tests_in_one_batch_count_the_ones_before_them_and_nothing_twice():
    stored = {"recent_transaction_ids": ["T0", "T1"], "recent_event_us": [transaction_us(T - timedelta(minutes=5)),
                                                                        transaction_us(T)],
              "recent_amount_cents": [100, 250], "recent_merchant_ids": ["M1", "M2"]}
    rows = [  # out of order on purpose; T1 is already in the stored state (the consumer saw it)
        {"transaction_id": "T3", "customer_id": "C1", "merchant_id": "M1", "amount": 0.03, "event_ts": T + timedelta(seconds=20)},
        {"transaction_id": "T2", "customer_id": "C1", "merchant_id": "M1", "amount": 0.02, "event_ts": T + timedelta(seconds=10)},
        {"transaction_id": "T1", "customer_id": "C1", "merchant_id": "M2", "amount": 2.50, "event_ts": T},
        {"transaction_id": "X1", "customer_id": "C2", "merchant_id": "M1", "amount": 9.99, "event_ts": T + timedelta(seconds=30)},
    ]
    columns = _columns(rows, [stored, stored, stored, None])
    fold_batch_into_states(columns, rows)
    out = velocity_features_from_state(columns)
    # T3 sees T0, T1 and T2; T2 sees T0 and T1; T1 sees T0; C2 sees nothing of C1's
    assert out["cust_txn_count_10m"].tolist() == [3, 2, 1, 0]
    assert out["cust_amount_sum_10m"].tolist() == [3.52, 3.5, 1.0, 0.0]
    assert out["cm_txn_count_10m"].tolist() == [2, 1, 0, 0]  # at M1: T0 (and T2 for T3)
    assert out["cust_distinct_merchants_1h"].tolist() == [2, 2, 1, 0]
    # the stored T1 was not added a second time
    assert columns["recent_transaction_ids"][1].count("T1") == 1
