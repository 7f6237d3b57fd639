"""Point-in-time-correct training sets, saved as snapshots with a manifest.

A training row is a transaction whose label has matured: its chargeback window (`label_maturity_days`) has passed
before the as-of time, so "no chargeback yet" is never read as "not fraud". Its features come from Feast's
point-in-time join at the transaction's own timestamp. The first `warmup_days` are skipped because the rolling
windows (up to 30 days) are not yet full there. The newest `holdout_days` whole days are the holdout every model
is judged on; whole days, and by default a whole week, so that the holdout (also the drift reference) has the
same hours and weekdays as the week it is compared with.

The snapshot id hashes what determines the rows *before* they are built: the feature service and its version
(a fingerprint of every feature's definition, the on-demand code included), the entity window, the as-of time,
the build parameters and the versions (content hashes) of the upstream parquet exports. So the same id always
means the same recipe, and `rebuild_training_set(id)` can rebuild it and prove the rows identical (the manifest
also records the frame's content hash). What a snapshot holds and how it is read is the read contract in
`lib/training_sets.py`, which later stages use; only this stage builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from upath import UPath

from platform_assets.lib import names, object_store
from platform_assets.lib.exports import query
from platform_assets.lib.training_sets import (
    KEYS,
    LABEL,
    LATEST,
    TRANSACTION_FEATURES,
    TrainingSetManifest,
    join_features,
    manifest_path,
)

# Entity rows per point-in-time join. A build holds one chunk at a time (its join result, on-demand features and
# pandas copies: ~1 GB per million rows), so its memory no longer grows with the window; a demo-size training
# set is one chunk.
DEFAULT_CHUNK_ROWS = 1_000_000


def entity_window(
    exports_dir: Path, label_maturity_days: int, warmup_days: int, as_of: datetime | None = None
) -> dict:
    """The window of transactions whose label has matured: as-of = the newest transaction (or `as_of`, which cuts
    the world at a point in time so a retrain keyed to a drift window is reproducible whatever landed later); the
    window ends `label_maturity_days` whole days before it and starts `warmup_days` after the first transaction."""
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
    return {"window_start": start, "window_end": end, "as_of": as_of}


def labelled_transactions(
    exports_dir: Path, label_maturity_days: int, warmup_days: int, window: dict | None = None,
    as_of: datetime | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The entity rows: matured transactions with their transaction-level features and label as known at the
    as-of time (a chargeback reported later does not count). `window` pins the window (a rebuild by id)."""
    window = window or entity_window(exports_dir, label_maturity_days, warmup_days, as_of)
    as_of, start, end = window["as_of"], window["window_start"], window["window_end"]
    frame = query(
        exports_dir,
        """
        SELECT t.transaction_id, t.customer_id, t.merchant_id, t.event_ts AS event_timestamp,
               t.amount, t.is_online, t.is_night, CAST(epoch(t.event_ts) AS BIGINT) AS transaction_epoch,
               epoch_us(t.event_ts) AS transaction_us,
               CASE WHEN l.fraud_reported_at <= $as_of THEN 1 ELSE 0 END AS is_fraud
        FROM {tx} AS t JOIN {labels} AS l USING (transaction_id)
        WHERE t.event_ts >= $start AND t.event_ts < $end
        ORDER BY t.event_ts, t.transaction_id
        """,
        {"as_of": as_of, "start": start, "end": end},
        tx="fct_transactions",
        labels="fct_transaction_labels",
    )
    return frame, window


def service_feature_columns(store, feature_service_name: str) -> list[str]:
    service = store.get_feature_service(feature_service_name)
    return [f.name for projection in service.feature_view_projections for f in projection.features]


class ContentHash:
    """Values, column names and types: a renamed or retyped feature is a different training set. Row hashes are
    per row, so feeding a frame chunk by chunk gives the hash of the whole frame."""

    def __init__(self):
        self._digest, self._dtypes = hashlib.sha256(), None

    def update(self, frame: pd.DataFrame) -> None:
        dtypes = [[str(c), str(t)] for c, t in frame.dtypes.items()]
        if self._dtypes is not None and dtypes != self._dtypes:
            raise ValueError(f"a chunk's columns or types differ from the first chunk's: {dtypes} vs {self._dtypes}")
        self._dtypes = dtypes
        self._digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())

    def hexdigest(self) -> str:
        digest = self._digest.copy()
        digest.update(json.dumps(self._dtypes or []).encode())
        return digest.hexdigest()


def content_hash(frame: pd.DataFrame) -> str:
    hasher = ContentHash()
    hasher.update(frame)
    return hasher.hexdigest()


def file_version(path: Path) -> str:
    """Content hash of an export: the dbt marts are written in a fixed row order, so a rebuild of the same
    data is byte-identical and keeps its version."""
    digest = hashlib.sha256()
    with UPath(path).open("rb") as f:  # a local file, or an object on the shared store
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _source_path(view) -> str | None:
    return getattr(view.batch_source, "path", None)


def feature_service_recipe(store, feature_service_name: str) -> tuple[str, list[str]]:
    """(version, source files) of a feature service: the version fingerprints every feature's name, type,
    view, entities, TTL, source and timestamp columns, and the code of on-demand views."""
    service = store.get_feature_service(feature_service_name)
    spec, sources = [], set()

    def describe_view(view_name: str) -> dict:
        view = store.get_feature_view(view_name)
        path = _source_path(view)
        if path:
            sources.add(path)
        return {"view": view.name, "entities": sorted(view.entities), "ttl": str(view.ttl), "source": path,
                "timestamp": view.batch_source.timestamp_field,
                "created": view.batch_source.created_timestamp_column,
                "features": [[f.name, str(f.dtype)] for f in view.features]}

    on_demand = {v.name for v in store.list_on_demand_feature_views()}
    for projection in service.feature_view_projections:
        item = {"name": projection.name, "features": [[f.name, str(f.dtype)] for f in projection.features]}
        if projection.name not in on_demand:
            item["definition"] = describe_view(projection.name)
        else:
            odfv = store.get_on_demand_feature_view(projection.name)
            item["code"] = odfv.feature_transformation.udf_string
            item["inputs"] = [describe_view(name) for name in sorted(odfv.source_feature_view_projections)]
        spec.append(item)
    version = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return version, sorted(sources)


def upstream_versions(exports_dir: Path, feature_sources: list[str]) -> dict[str, str]:
    """{file name: content hash} of every parquet file a training set reads."""
    paths = [UPath(exports_dir) / f"{mart}.parquet" for mart in (k.path[-1] for k in names.ENTITY_MARTS)]
    paths += [UPath(p) for p in feature_sources]
    return {p.name: file_version(p) for p in sorted(set(paths), key=str)}


def snapshot_id(feature_service: str, service_version: str, window: dict, versions: dict, params: dict) -> str:
    """What determines the rows, known before they are built: equal ids mean equal recipes."""
    recipe = {
        "feature_service": feature_service,
        "feature_service_version": service_version,
        "window": {k: window[k].isoformat() for k in ("window_start", "window_end", "as_of")},
        "upstream_versions": versions,
        "params": params,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def holdout_cut(window_end: datetime, holdout_days: int) -> datetime:
    """Time-based split: the last `holdout_days` whole days before `window_end` are the holdout."""
    return (pd.Timestamp(window_end) - pd.Timedelta(days=holdout_days)).to_pydatetime()


def assign_split(frame: pd.DataFrame, cut: datetime) -> pd.DataFrame:
    return frame.assign(split=(frame["event_timestamp"] >= pd.Timestamp(cut)).map({True: "holdout", False: "train"}))


def labelled_rows_per_day(exports_dir: Path, window: dict) -> list[tuple[datetime, int]]:
    """(day, entity rows) of the window: what the chunks are planned from."""
    counts = query(
        exports_dir,
        """
        SELECT date_trunc('day', t.event_ts) AS day, count(*) AS n
        FROM {tx} AS t JOIN {labels} AS l USING (transaction_id)
        WHERE t.event_ts >= $start AND t.event_ts < $end GROUP BY 1 ORDER BY 1
        """,
        {"start": window["window_start"], "end": window["window_end"]},
        tx="fct_transactions",
        labels="fct_transaction_labels",
    )
    return [(pd.Timestamp(d).to_pydatetime(), int(n)) for d, n in zip(counts["day"], counts["n"])]


def plan_chunks(
    day_counts: list[tuple[datetime, int]], start: datetime, end: datetime, cut: datetime, max_rows: int
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at day boundaries into consecutive ranges of at most `max_rows` entity rows (a day holding
    more is a range of its own). Raises when no row lies before the holdout `cut`: nothing to train on."""
    if not any(day < cut and n for day, n in day_counts):
        holdout_days = (end - cut).days
        raise ValueError(f"no training rows before the {holdout_days}-day holdout: simulate more days")
    chunks, lo, rows = [], start, 0
    for day, n in day_counts:
        if rows and rows + n > max_rows:
            chunks.append((lo, day))
            lo, rows = day, 0
        rows += n
    chunks.append((lo, end))
    return chunks


class SnapshotNotReproducibleError(RuntimeError):
    pass


@dataclass
class BuiltTrainingSet:
    """A training set written to `path` (a temporary file until `save_snapshot` publishes it)."""

    path: Path
    manifest_fields: dict
    join_seconds: float
    chunks: int

    @property
    def train_positives(self) -> int:
        return self.manifest_fields["positives"] - self.manifest_fields["holdout_positives"]

    def read(self) -> pd.DataFrame:
        return pd.read_parquet(self.path)


def build_training_set(
    store,
    exports_dir: Path,
    feature_service: str,
    label_maturity_days: int,
    warmup_days: int,
    holdout_days: int,
    out_dir: Path,
    window: dict | None = None,
    as_of: datetime | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BuiltTrainingSet:
    """Entity rows -> point-in-time join -> time split, chunk by chunk in time order, into a temporary parquet
    file in `out_dir`. Building and rebuilding-by-id run exactly this code; `window` pins the entity window and
    as-of time of a rebuild. Every feature is written as float64, as the model reads it: a count with no feature
    row yet is NaN, and a column's type must not depend on whether its chunk happened to hold one. The rows, their
    order and the content hash do not depend on `chunk_rows`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    service_version, feature_sources = feature_service_recipe(store, feature_service)
    versions = upstream_versions(exports_dir, feature_sources)
    window = window or entity_window(exports_dir, label_maturity_days, warmup_days, as_of)
    cut = holdout_cut(window["window_end"], holdout_days)
    chunks = plan_chunks(labelled_rows_per_day(exports_dir, window), window["window_start"], window["window_end"],
                         cut, chunk_rows)
    feature_columns = TRANSACTION_FEATURES + [
        c for c in service_feature_columns(store, feature_service) if c not in TRANSACTION_FEATURES
    ]
    params = {"label_maturity_days": label_maturity_days, "warmup_days": warmup_days, "holdout_days": holdout_days}
    sid = snapshot_id(feature_service, service_version, window, versions, params)
    if object_store.is_remote(out_dir):
        # An object cannot be written in parts: build the file on the local disk, save_snapshot uploads it whole.
        out_dir = Path(tempfile.mkdtemp(prefix=f"training-set-{sid}-"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f".{sid}.{os.getpid()}.parquet.tmp"
    hasher, writer, join_seconds = ContentHash(), None, 0.0
    counts = {"rows": 0, "positives": 0, "holdout_rows": 0, "holdout_positives": 0}
    try:
        for lo, hi in chunks:
            chunk_window = {"as_of": window["as_of"], "window_start": lo, "window_end": hi}
            entity_rows, _ = labelled_transactions(exports_dir, label_maturity_days, warmup_days, chunk_window)
            if entity_rows.empty:
                continue
            started = time.perf_counter()
            frame = join_features(store, entity_rows, feature_service)
            join_seconds += time.perf_counter() - started
            del entity_rows
            frame = assign_split(frame, cut)[[*KEYS, *feature_columns, LABEL, "split"]]
            frame = frame.astype(dict.fromkeys(feature_columns, "float64"))
            hasher.update(frame)
            holdout = frame["split"] == "holdout"
            counts["rows"] += len(frame)
            counts["positives"] += int(frame[LABEL].sum())
            counts["holdout_rows"] += int(holdout.sum())
            counts["holdout_positives"] += int(frame.loc[holdout, LABEL].sum())
            table = pa.Table.from_pandas(frame, preserve_index=False)
            del frame
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, coerce_timestamps="us", allow_truncated_timestamps=True)
            writer.write_table(table.cast(writer.schema))
        if writer is None:
            raise ValueError(f"no labelled transactions in {window['window_start']} .. {window['window_end']}")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.close()
        path.unlink(missing_ok=True)
        raise
    fields = {
        "snapshot_id": sid,
        "feature_service": feature_service,
        "feature_columns": feature_columns,
        "label_column": LABEL,
        "window_start": window["window_start"].isoformat(),
        "window_end": window["window_end"].isoformat(),
        "as_of": window["as_of"].isoformat(),
        "holdout_start": cut.isoformat(),
        **counts,
        "feature_service_version": service_version,
        "upstream_versions": versions,
        **params,
        "content_hash": hasher.hexdigest(),
    }
    return BuiltTrainingSet(path, fields, join_seconds, len(chunks))


def save_snapshot(built: BuiltTrainingSet, out_dir: Path) -> TrainingSetManifest:
    """Publish a built training set as `<id>.parquet` with its manifest `<id>.json` and `latest.json`, in that
    order, each whole (an atomic rename locally, one upload per object on the shared store): a reader sees the old
    snapshot or the new one, never half of one, and `latest.json` never names a file not yet there."""
    out_dir = UPath(out_dir)
    if not object_store.is_remote(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    sid = built.manifest_fields["snapshot_id"]
    path = out_dir / f"{sid}.parquet"
    object_store.publish_file(built.path, str(path))
    if object_store.is_remote(out_dir):
        shutil.rmtree(Path(built.path).parent, ignore_errors=True)  # the local scratch folder build made
    manifest = TrainingSetManifest(path=str(path), **built.manifest_fields)
    for target in (manifest_path(out_dir, sid), out_dir / LATEST):
        object_store.write_bytes(str(target), manifest.to_json().encode())
    return manifest


def rebuild_training_set(store, exports_dir: Path, training_sets_dir: Path, snapshot: str) -> pd.DataFrame:
    """Rebuild snapshot `snapshot` from its recipe and prove the rows identical to the saved ones.

    Raises `SnapshotNotReproducibleError` naming what differs when the feature definitions or the upstream data
    changed since (then the saved parquet file is the record of that training set, not the current stores)."""
    manifest = TrainingSetManifest.read(manifest_path(training_sets_dir, snapshot))
    if not manifest.content_hash or manifest.label_maturity_days is None:
        raise SnapshotNotReproducibleError(f"snapshot {snapshot} predates recorded recipes: it cannot be rebuilt")
    service_version, feature_sources = feature_service_recipe(store, manifest.feature_service)
    if service_version != manifest.feature_service_version:
        raise SnapshotNotReproducibleError(
            f"feature service {manifest.feature_service} changed since snapshot {snapshot} "
            f"(version {manifest.feature_service_version} -> {service_version})"
        )
    versions = upstream_versions(exports_dir, feature_sources)
    changed = sorted(k for k in set(versions) | set(manifest.upstream_versions)
                     if versions.get(k) != manifest.upstream_versions.get(k))
    if changed:
        raise SnapshotNotReproducibleError(f"upstream data changed since snapshot {snapshot}: {changed}")
    window = {k: datetime.fromisoformat(getattr(manifest, k)) for k in ("window_start", "window_end", "as_of")}
    local_dir = None if object_store.is_remote(training_sets_dir) else training_sets_dir
    with tempfile.TemporaryDirectory(dir=local_dir, prefix=".rebuild-") as scratch:
        built = build_training_set(
            store, exports_dir, manifest.feature_service, manifest.label_maturity_days, manifest.warmup_days,
            manifest.holdout_days, Path(scratch), window,
        )
        if built.manifest_fields["snapshot_id"] != snapshot or built.manifest_fields["content_hash"] != manifest.content_hash:
            raise SnapshotNotReproducibleError(
                f"rebuilding {snapshot} gave different rows (id {built.manifest_fields['snapshot_id']}, content hash "
                f"{built.manifest_fields['content_hash']} vs {manifest.content_hash})"
            )
        return built.read()
