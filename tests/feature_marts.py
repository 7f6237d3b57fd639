"""Synthetic daily feature marts in the shape dbt exports them, for tests of the Feast stores without a dbt run."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd


def synthetic_mart(key: str, ids: list[str], features: dict, rng: np.random.Generator, start: datetime,
                   days: int) -> pd.DataFrame:
    """One row per entity and day: known at the day's end, created an hour later; Int64 features as integers."""
    from feast.types import Int64

    rows = []
    for day in range(days):
        end_of_day = start + timedelta(days=day + 1) - timedelta(microseconds=1)
        for entity in ids:
            row = {key: entity, "event_timestamp": end_of_day, "created_timestamp": end_of_day + timedelta(hours=1)}
            for name, dtype in features.items():
                row[name] = int(rng.integers(0, 50)) if dtype == Int64 else float(rng.random() * 100)
            rows.append(row)
    frame = pd.DataFrame(rows)
    for column in ("event_timestamp", "created_timestamp"):
        frame[column] = frame[column].astype("datetime64[us, UTC]")  # microseconds: what DuckDB and Feast read
    return frame


def recent_states(customers: list[str], merchants: list[str], seed: int, start: datetime, days: int) -> pd.DataFrame:
    """The velocity state mart: one state per customer and day (its day's transaction plus the previous day's,
    if within 24 h), as dbt's fct_customer_recent_transactions writes it; its own random stream."""
    rng = np.random.default_rng([seed, 18])
    rows = []
    for c, customer in enumerate(customers):
        previous = None
        for day in range(days):
            instant = start + timedelta(days=day, seconds=int(rng.integers(0, 86_400)))
            event = (f"T{c:04d}{day:03d}", int((instant - datetime(1970, 1, 1, tzinfo=instant.tzinfo))
                                                 / timedelta(microseconds=1)),
                     int(rng.integers(50, 50_000)), merchants[int(rng.integers(0, len(merchants)))])
            state = [e for e in [previous] if e and event[1] - e[1] <= 86_400_000_000] + [event]
            rows.append({"customer_id": customer, "event_timestamp": instant, "created_timestamp": instant,
                         "recent_transaction_ids": [e[0] for e in state], "recent_event_us": [e[1] for e in state],
                         "recent_amount_cents": [e[2] for e in state], "recent_merchant_ids": [e[3] for e in state]})
            previous = event
    frame = pd.DataFrame(rows)
    for column in ("event_timestamp", "created_timestamp"):
        frame[column] = frame[column].astype("datetime64[us, UTC]")
    return frame


def write_feature_marts(feature_repo_dir, exports_dir, customers: list[str], merchants: list[str], seed: int,
                        start: datetime, days: int) -> dict[str, pd.DataFrame]:
    """The dbt feature marts Feast reads, written as their parquet exports (the documented schema, small and
    synthetic): one row per entity and day; each customer's pair is with one merchant."""
    import sys

    sys.path.insert(0, str(feature_repo_dir))
    try:
        from fraud_features import CUSTOMER_FEATURES, CUSTOMER_MERCHANT_FEATURES, MERCHANT_FEATURES
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(seed)
    pairs = synthetic_mart("customer_id", customers, CUSTOMER_MERCHANT_FEATURES, rng, start, days)
    pairs.insert(1, "merchant_id", [merchants[customers.index(c) % len(merchants)] for c in pairs.customer_id])
    marts = {
        "fct_customer_daily_features": synthetic_mart("customer_id", customers, CUSTOMER_FEATURES, rng, start, days),
        "fct_merchant_daily_features": synthetic_mart("merchant_id", merchants, MERCHANT_FEATURES, rng, start, days),
        "fct_customer_merchant_features": pairs,
        "fct_customer_recent_transactions": recent_states(customers, merchants, seed, start, days),
    }
    exports_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in marts.items():
        frame.to_parquet(exports_dir / f"{name}.parquet", index=False)
    return marts
