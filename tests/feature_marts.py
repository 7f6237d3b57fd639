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
