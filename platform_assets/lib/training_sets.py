"""The training-set read contract: what a snapshot holds and how every stage after the features stage reads it.

The features stage builds training sets (`features/training_set_builder.py`); training, scoring, monitoring, the
notebook helpers and the tests read them through this module only. A snapshot is `<id>.parquet` plus its
manifest `<id>.json` (and `latest.json` for the newest): the manifest names the feature and label columns, the
feature service and the window, so a reader never needs the builder. The same module holds the two reads that
must match training exactly: the point-in-time join of entity rows (scoring a day, a notebook's date range) and
`model_inputs`, the frame a model is fed.

pandas and pyarrow load with this module: stages import it inside their asset functions, never at Definitions
load.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from upath import UPath

from platform_assets.lib import object_store
from platform_assets.lib.exports import query

# Model inputs taken from the transaction itself; the hour of day comes from the on-demand feature view.
TRANSACTION_FEATURES = ["amount", "is_online", "is_night"]
LABEL = "is_fraud"
KEYS = ["transaction_id", "customer_id", "merchant_id", "event_timestamp"]
LATEST = "latest.json"


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
    # The recipe (defaults keep manifests written before these fields readable; they cannot be rebuilt by id).
    feature_service_version: str = ""
    upstream_versions: dict[str, str] = field(default_factory=dict)
    label_maturity_days: int | None = None
    warmup_days: int | None = None
    holdout_days: int | None = None
    content_hash: str = ""

    def to_json(self) -> str:
        """The manifest as saved next to its parquet file: `path` is that file's name, so the data directory can
        be moved (`read` resolves it against the manifest's own directory)."""
        return json.dumps({**asdict(self), "path": Path(self.path).name}, indent=2)

    @classmethod
    def read(cls, path: Path) -> TrainingSetManifest:
        """`path` is a local path or a URL of the shared store (then `path` of the result is a URL too)."""
        path = UPath(path)
        fields = json.loads(path.read_text())
        # Manifests written before held an absolute path, kept as it is (tools.relocate rewrites it after a move).
        fields["path"] = str(path.parent / fields["path"])
        return cls(**fields)


def transactions_between(exports_dir: Path, start: datetime, end: datetime) -> pd.DataFrame:
    """Entity rows of the transactions in [start, end), with what on-demand features need from the request."""
    return query(
        exports_dir,
        """
        SELECT transaction_id, customer_id, merchant_id, event_ts AS event_timestamp,
               amount, hour_of_day, is_online, is_night, CAST(epoch(event_ts) AS BIGINT) AS transaction_epoch,
               epoch_us(event_ts) AS transaction_us
        FROM {tx} WHERE event_ts >= $start AND event_ts < $end ORDER BY event_ts, transaction_id
        """,
        {"start": start, "end": end},
        tx="fct_transactions",
    )


def join_features(store, entity_rows: pd.DataFrame, feature_service_name: str) -> pd.DataFrame:
    """Feast's point-in-time join, returned in the entity rows' order with the service's feature columns.

    `filter_by_created_timestamp`: when a feature row was (re)loaded after the entity's time, it was not known
    then, so it must not win over the row that was; without it a late backfill leaks into training."""
    service = store.get_feature_service(feature_service_name)
    joined = store.get_historical_features(
        entity_df=entity_rows, features=service, filter_by_created_timestamp=True
    ).to_df()
    joined["event_timestamp"] = pd.to_datetime(joined["event_timestamp"], utc=True)
    joined = joined.sort_values(["event_timestamp", "transaction_id"], kind="stable").reset_index(drop=True)
    if len(joined) != len(entity_rows):
        raise RuntimeError(f"point-in-time join returned {len(joined)} rows for {len(entity_rows)} entity rows")
    return joined


def model_inputs(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """What a model reads: every feature as float64. A count with no feature row yet is NaN (missing), which an
    integer column cannot hold, so neither training, the logged signature nor scoring may promise integers."""
    return frame[features].astype("float64")


def read_split(path: str | Path, split: str) -> pd.DataFrame:
    """The rows of one split of a snapshot; the filter runs batch by batch, so the other split is never held."""
    import pyarrow.parquet as pq

    return pq.read_table(str(path), filters=[("split", "==", split)],
                         filesystem=object_store.arrow_filesystem(path)).to_pandas()


@dataclass
class TrainingInputs:
    inputs: pd.DataFrame  # the feature columns, float32, one block
    labels: np.ndarray
    timestamps: pd.Series


def read_training_inputs(manifest: TrainingSetManifest, split: str = "train") -> TrainingInputs:
    """A split's features as one float32 block, filled batch by batch from the parquet file.

    XGBoost bins and splits on float32 values whatever it is given, so float32 inputs train the same model as
    float64 ones, in half the memory; reading batch by batch never holds the file's float64 columns whole."""
    import pyarrow.parquet as pq

    features, label = manifest.feature_columns, manifest.label_column
    rows = manifest.rows - manifest.holdout_rows if split == "train" else manifest.holdout_rows
    values = np.empty((len(features), rows), dtype=np.float32)  # (columns, rows): pandas' own block layout
    labels = np.empty(rows, dtype=np.int32)
    timestamps = np.empty(rows, dtype="datetime64[us]")
    offset = 0
    # Batch by batch, without read-ahead: a dataset scanner buffers many decoded row groups (GBs here).
    batches = pq.ParquetFile(manifest.path, filesystem=object_store.arrow_filesystem(manifest.path)).iter_batches(
        batch_size=262_144, columns=[*features, label, "event_timestamp", "split"]
    )
    for batch in batches:
        keep = (batch.column("split").to_numpy(zero_copy_only=False) == split).nonzero()[0]
        end = offset + len(keep)
        if end > rows:
            raise ValueError(f"{manifest.path} holds more {split} rows than its manifest's {rows}")
        for j, name in enumerate(features):
            values[j, offset:end] = batch.column(name).to_numpy(zero_copy_only=False)[keep]
        labels[offset:end] = batch.column(label).to_numpy(zero_copy_only=False)[keep]
        timestamps[offset:end] = batch.column("event_timestamp").cast("timestamp[us]").to_numpy(
            zero_copy_only=False)[keep]
        offset = end
    if offset != rows:
        raise ValueError(f"{manifest.path} holds {offset} {split} rows, its manifest {rows}")
    inputs = pd.DataFrame(values.T, columns=features, copy=False)
    return TrainingInputs(inputs, labels, pd.Series(pd.to_datetime(timestamps, utc=True)))


def manifest_path(training_sets_dir: Path, snapshot_id: str) -> UPath:
    """A Path for a local folder, an S3 UPath on the shared store."""
    return UPath(training_sets_dir) / f"{snapshot_id}.json"


def latest_manifest(training_sets_dir: Path) -> TrainingSetManifest:
    """The newest snapshot's manifest (what `fraud_model` trains on)."""
    return TrainingSetManifest.read(UPath(training_sets_dir) / LATEST)


TIMESTAMP = "event_timestamp"


def split_partitions(row_group_rows: list[int], min_partitions: int = 1) -> list[tuple[int, int, int]]:
    """(row group, first row, end row) of each partition, in file order: one per row group, each row group cut
    into equal row ranges when there are fewer row groups than `min_partitions` (the builder writes a row group
    per 1M-row chunk, so a 1M-row training set is one or two of them, and every worker should get a share)."""
    groups = [(g, n) for g, n in enumerate(row_group_rows) if n > 0]
    if not groups:
        return []
    pieces = max(1, -(-min_partitions // len(groups)))  # ceil
    out = []
    for g, n in groups:
        bounds = np.linspace(0, n, min(pieces, n) + 1).astype(int)
        out += [(g, int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]
    return out


def _read_partition(piece: tuple[int, int, int], path: str, split: str, features: list[str], label_column: str):
    """One partition of `read_split_partitions`, on a worker: a slice of one row group, the split's rows only."""
    import fsspec
    import pyarrow.parquet as pq

    group, start, stop = piece
    fs, location = fsspec.url_to_fs(path)
    with fs.open(location, "rb") as handle:
        table = pq.ParquetFile(handle).read_row_group(group, columns=[*features, label_column, TIMESTAMP, "split"])
    table = table.slice(start, stop - start)
    frame = table.to_pandas()
    frame = frame[frame["split"] == split].drop(columns="split").reset_index(drop=True)
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    return frame.astype({**dict.fromkeys(features, "float32"), label_column: "int32"})


def read_split_partitions(manifest: TrainingSetManifest, split: str = "train", min_partitions: int = 1):
    """A split as a Dask DataFrame, for training on a cluster: the feature columns as float32 (as
    `read_training_inputs`), the label as int32 and the event time, one partition per row group (or slice of
    one), in file order. The workers read the parquet file (a local path every worker sees, or an s3:// URL: s3fs
    on each worker reads its own AWS variables); the driver reads only the footer.

    The builder writes a snapshot in time order (chunks in time order, each sorted by event time), so the
    partitions come in time order too. Partitions are explicit (`from_map`), never fused or re-split by Dask's
    optimizer, so partition i is the same rows in every computation (the early-stopping cut relies on it)."""
    import dask.dataframe as dd
    import fsspec
    import pyarrow.parquet as pq

    features, label, path = manifest.feature_columns, manifest.label_column, str(manifest.path)
    fs, location = fsspec.url_to_fs(path)
    with fs.open(location, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    pieces = split_partitions([metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)],
                              min_partitions)
    meta = pd.DataFrame({**{f: pd.Series(dtype="float32") for f in features}, label: pd.Series(dtype="int32"),
                         TIMESTAMP: pd.Series(dtype="datetime64[us, UTC]")})
    return dd.from_map(_read_partition, pieces, path=path, split=split, features=features, label_column=label, meta=meta,
                       enforce_metadata=False, divisions=[None] * (len(pieces) + 1))
