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


def write_feature_marts(feature_repo_dir, exports_dir, customers: list[str], merchants: list[str], seed: int,
                        start: datetime, days: int) -> dict[str, pd.DataFrame]:
    """The three dbt feature marts Feast reads, written as their parquet exports (the documented schema, small and
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
    }
    exports_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in marts.items():
        frame.to_parquet(exports_dir / f"{name}.parquet", index=False)
    return marts
