"""Point-in-time-correct training sets, saved as snapshots with a manifest.

A training row is a transaction whose label has matured: its chargeback window (`label_maturity_days`) has passed
before the as-of time, so "no chargeback yet" is never read as "not fraud". Its features come from Feast's
point-in-time join at the transaction's own timestamp. The first `warmup_days` are skipped because the rolling
windows (up to 30 days) are not yet full there. The newest `holdout_days` whole days are the holdout every model
is judged on; whole days, and by default a whole week, so that the holdout (also the drift reference) has the
same hours and weekdays as the week it is compared with.

The snapshot id hashes what determines the rows: the feature service, the entity window, the as-of time and the
content of the frame. The manifest (`<id>.json`, and `latest.json` for the newest) tells the training stage the
feature and label columns, so that stage never imports this one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from platform_assets.exports import query

TRANSACTION_FEATURES = ["amount", "hour_of_day", "is_online", "is_night"]
LABEL = "is_fraud"
KEYS = ["transaction_id", "customer_id", "merchant_id", "event_timestamp"]


@dataclass(frozen=True)
class TrainingSetManifest:
    snapshot_id: str
    path: str
    feature_service: str
    feature_columns: list[str]
    label_column: str
    window_start: str
    window_end: str
    as_of: str
    holdout_start: str
    rows: int
    positives: int
    holdout_rows: int
    holdout_positives: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def read(cls, path: Path) -> TrainingSetManifest:
        return cls(**json.loads(Path(path).read_text()))


def labelled_transactions(
    exports_dir: Path, label_maturity_days: int, warmup_days: int, as_of: datetime | None = None
) -> tuple[pd.DataFrame, dict]:
    """The entity rows: matured transactions with their transaction-level features and label.

    `as_of` (default: the newest transaction) cuts the world at a point in time: only transactions and chargeback
    reports known then count, so a retrain keyed to a drift window is reproducible whatever landed later."""
    bounds = query(
        exports_dir,
        "SELECT min(event_ts) AS first_ts, max(event_ts) AS as_of FROM {tx} WHERE $as_of IS NULL OR event_ts <= $as_of",
        {"as_of": as_of},
        tx="fct_transactions",
    ).iloc[0]
    if pd.isna(bounds.as_of):
        raise ValueError("fct_transactions is empty: ingest some transactions first")
    as_of = bounds.as_of.to_pydatetime()
    start = (bounds.first_ts.normalize() + timedelta(days=warmup_days)).to_pydatetime()
    end = (bounds.as_of.normalize() - timedelta(days=label_maturity_days)).to_pydatetime()
    if end <= start:
        raise ValueError(
            f"no transaction has a matured label yet: data spans {bounds.first_ts} .. {as_of}, and a label needs "
            f"{label_maturity_days} days after a {warmup_days}-day warm-up; simulate more days"
        )
    frame = query(
        exports_dir,
        """
        SELECT t.transaction_id, t.customer_id, t.merchant_id, t.event_ts AS event_timestamp,
               t.amount, t.hour_of_day, t.is_online, t.is_night,
               CASE WHEN l.fraud_reported_at <= $as_of THEN 1 ELSE 0 END AS is_fraud
        FROM {tx} AS t JOIN {labels} AS l USING (transaction_id)
        WHERE t.event_ts >= $start AND t.event_ts < $end
        ORDER BY t.event_ts, t.transaction_id
        """,
        {"as_of": as_of, "start": start, "end": end},
        tx="fct_transactions",
        labels="fct_transaction_labels",
    )
    return frame, {"window_start": start, "window_end": end, "as_of": as_of}


def recent_transactions(exports_dir: Path, days: int) -> tuple[pd.DataFrame, dict]:
    """The latest `days` of transactions (labels not needed): the current window monitoring looks at."""
    as_of = query(exports_dir, "SELECT max(event_ts) AS as_of FROM {tx}", tx="fct_transactions").as_of.iloc[0]
    start = (as_of.normalize() - timedelta(days=days - 1)).to_pydatetime()
    frame = query(
        exports_dir,
        """
        SELECT transaction_id, customer_id, merchant_id, event_ts AS event_timestamp,
               amount, hour_of_day, is_online, is_night
        FROM {tx} WHERE event_ts >= $start ORDER BY event_ts, transaction_id
        """,
        {"start": start},
        tx="fct_transactions",
    )
    return frame, {"window_start": start, "window_end": as_of.to_pydatetime()}


def transactions_between(exports_dir: Path, start: datetime, end: datetime) -> pd.DataFrame:
    """Transactions with start <= event time < end and their transaction-level features (labels not needed):
    what daily scoring reads."""
    columns = ", ".join(TRANSACTION_FEATURES)
    return query(
        exports_dir,
        f"""
        SELECT transaction_id, customer_id, merchant_id, event_ts AS event_timestamp, {columns}
        FROM {{tx}} WHERE event_ts >= $start AND event_ts < $end ORDER BY event_ts, transaction_id
        """,
        {"start": start, "end": end},
        tx="fct_transactions",
    )


def join_features(store, entity_rows: pd.DataFrame, feature_service_name: str) -> pd.DataFrame:
    """Feast's point-in-time join, returned in the entity rows' order with the service's feature columns."""
    service = store.get_feature_service(feature_service_name)
    joined = store.get_historical_features(entity_df=entity_rows, features=service).to_df()
    joined["event_timestamp"] = pd.to_datetime(joined["event_timestamp"], utc=True)
    joined = joined.sort_values(["event_timestamp", "transaction_id"], kind="stable").reset_index(drop=True)
    if len(joined) != len(entity_rows):
        raise RuntimeError(f"point-in-time join returned {len(joined)} rows for {len(entity_rows)} entity rows")
    return joined


def service_feature_columns(store, feature_service_name: str) -> list[str]:
    service = store.get_feature_service(feature_service_name)
    return [f.name for projection in service.feature_view_projections for f in projection.features]


def model_inputs(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """What a model reads: every feature as float64. A count with no feature row yet is NaN (missing), which an
    integer column cannot hold, so neither training, the logged signature nor scoring may promise integers."""
    return frame[features].astype("float64")


def content_hash(frame: pd.DataFrame) -> str:
    """Values, column names and types: a renamed or retyped feature is a different training set."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    return digest.hexdigest()


def snapshot_id(feature_service: str, window: dict, frame: pd.DataFrame) -> str:
    parts = [feature_service, window["window_start"].isoformat(), window["window_end"].isoformat(),
             window["as_of"].isoformat(), content_hash(frame)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def assign_split(frame: pd.DataFrame, window_end: datetime, holdout_days: int) -> tuple[pd.DataFrame, datetime]:
    """Time-based split: the last `holdout_days` whole days before `window_end` are the holdout."""
    cut = pd.Timestamp(window_end) - pd.Timedelta(days=holdout_days)
    if not (frame["event_timestamp"] < cut).any():
        raise ValueError(f"no training rows before the {holdout_days}-day holdout: simulate more days")
    frame = frame.assign(split=(frame["event_timestamp"] >= cut).map({True: "holdout", False: "train"}))
    return frame, cut.to_pydatetime()


def save_snapshot(frame: pd.DataFrame, manifest_fields: dict, out_dir: Path) -> TrainingSetManifest:
    out_dir.mkdir(parents=True, exist_ok=True)
    sid = manifest_fields["snapshot_id"]
    path = out_dir / f"{sid}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    os.replace(tmp, path)
    manifest = TrainingSetManifest(path=str(path), **manifest_fields)
    for name in (f"{sid}.json", "latest.json"):
        tmp_json = out_dir / f".{name}.tmp"
        tmp_json.write_text(manifest.to_json())
        os.replace(tmp_json, out_dir / name)
    return manifest
