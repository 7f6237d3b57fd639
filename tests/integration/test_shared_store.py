"""The production profile's files on the shared store (an S3 API server, tests/s3_server.py): training-set
snapshots, the batch and served predictions, reports and the scoring service's prediction log are written as
whole objects and read back by the same code the platform runs, with nothing left on the node's disk."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from s3_server import s3_server

from platform_assets.resources import PlatformStorage

pytestmark = pytest.mark.production


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[PlatformStorage]:
    """A fresh bucket as PLATFORM_SHARED_STORE_URL, the AWS_* variables of its server in this process."""
    root = tmp_path_factory.mktemp("shared")
    with s3_server(root / "s3.log") as s3, pytest.MonkeyPatch.context() as mp:
        for key, value in s3.env().items():
            mp.setenv(key, value)
        url = s3.create_bucket(f"platform-{uuid.uuid4().hex[:8]}") + "/prod"
        yield PlatformStorage(data_dir=str(root / "data"), shared_root=url)
    assert not (root / "data").exists(), "something was written to the node's data directory"


def _snapshot_frame(rows: int = 120) -> pd.DataFrame:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    frame = pd.DataFrame({
        "transaction_id": [f"T{i:05d}" for i in range(rows)],
        "customer_id": [f"C{i % 7}" for i in range(rows)],
        "merchant_id": [f"M{i % 5}" for i in range(rows)],
        "event_timestamp": pd.to_datetime([start + timedelta(hours=3 * i) for i in range(rows)], utc=True),
        "amount": np.arange(rows, dtype="float64") + 0.5,
        "is_fraud": [int(i % 9 == 0) for i in range(rows)],
    })
    frame["split"] = np.where(np.arange(rows) >= rows * 3 // 4, "holdout", "train")
    return frame


def _save_snapshot(shared, tmp_path, frame: pd.DataFrame, sid: str):
    """Publish `frame` as snapshot `sid` the way the training_set asset does (a local temporary file first)."""
    from platform_assets.features.training_set_builder import BuiltTrainingSet, save_snapshot

    holdout = frame["split"] == "holdout"
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    local = scratch / f".{sid}.parquet.tmp"
    frame.to_parquet(local, index=False)
    fields = {"snapshot_id": sid, "feature_service": "fraud_detector_v1", "feature_columns": ["amount"],
              "label_column": "is_fraud", "window_start": "2026-03-01T00:00:00+00:00",
              "window_end": "2026-03-16T00:00:00+00:00", "as_of": "2026-03-20T00:00:00+00:00",
              "holdout_start": "2026-03-12T06:00:00+00:00", "rows": len(frame),
              "positives": int(frame["is_fraud"].sum()), "holdout_rows": int(holdout.sum()),
              "holdout_positives": int(frame.loc[holdout, "is_fraud"].sum())}
    return local, save_snapshot(BuiltTrainingSet(local, fields, 0.0, 1), shared.training_sets_dir())


def test_a_training_set_is_saved_and_read_back_through_the_shared_store(shared, tmp_path):
    from platform_assets.lib.training_sets import latest_manifest, read_split, read_training_inputs

    frame = _snapshot_frame()
    holdout = frame["split"] == "holdout"
    local, saved = _save_snapshot(shared, tmp_path, frame, "abc123")

    assert saved.path == f"{shared.shared_root}/training_sets/abc123.parquet"
    assert not local.exists(), "the local file is uploaded and removed"
    names = sorted(p.name for p in shared.training_sets_dir().iterdir())
    assert {"abc123.json", "abc123.parquet", "latest.json"} <= set(names)
    assert not [n for n in names if n.startswith(".")], "no temporary object on the shared store"
    manifest = latest_manifest(shared.training_sets_dir())
    assert manifest == saved
    pd.testing.assert_frame_equal(read_split(manifest.path, "holdout").reset_index(drop=True),
                                  frame[holdout].reset_index(drop=True), check_dtype=False)
    inputs = read_training_inputs(manifest, "train")
    np.testing.assert_array_equal(inputs.inputs["amount"].to_numpy(), frame.loc[~holdout, "amount"].to_numpy("float32"))
    np.testing.assert_array_equal(inputs.labels, frame.loc[~holdout, "is_fraud"].to_numpy())


def test_predictions_and_reports_are_whole_objects_on_the_shared_store(shared):
    from platform_assets.lib import predictions as pr
    from platform_assets.lib.files import write_atomic

    day = date(2026, 3, 5)
    frame = pd.DataFrame({"transaction_id": ["a", "b"], pr.SCORE: [0.1, 0.9]})
    path = pr.write_day(frame, shared.predictions_dir(), day)
    assert str(path) == f"{shared.shared_root}/predictions/2026-03-05.parquet"
    pr.write_day(frame.iloc[:1], shared.predictions_dir(), day)  # a re-run replaces the day, never appends
    back, days = pr.read_days(shared.predictions_dir(), day - timedelta(days=1), day + timedelta(days=1))
    assert days == [day] and back["transaction_id"].tolist() == ["a"]

    report = shared.reports_dir() / "feature_drift" / "thresholds" / "x.json"
    write_atomic(report, json.dumps({"amount": 0.1}))
    assert json.loads(report.read_text()) == {"amount": 0.1}


def test_the_prediction_log_uploads_objects_the_loader_reads_as_the_days_union(shared):
    import duckdb

    from platform_assets.serving.assets import TABLE, _complete_lines, _export_day, _log_files, load_day
    from platform_assets.serving.log import PredictionLog

    log = PredictionLog(shared.serving_log_dir(), drain_seconds=0.01, upload_seconds=0.05).start()
    assert log.remote
    records = [{"served_at": f"2026-12-0{1 + i % 2}T10:00:{i:02d}.000000+00:00", "transaction_id": f"t{i}",
                "customer_id": "C1", "merchant_id": "M1", "amount": 1.0 + i, "currency": "EUR", "channel": "online",
                "event_ts": "2026-12-01T09:59:00+00:00", "score": 0.5, "decision": "approve"} for i in range(12)]
    log.append(records[:5])
    import time

    time.sleep(0.5)  # at least one upload in between: the day is then several objects
    log.append(records[5:])
    log.close()
    assert log.written == 12 and log.dropped == 0

    day = date(2026, 12, 1)
    files = _log_files(shared.serving_log_dir(), day)
    assert len(files) >= 2 and all(f.startswith("s3://") for f in files), files
    assert _complete_lines(files) == 6
    con = duckdb.connect()
    from platform_assets.lib import object_store

    object_store.configure_duckdb(con)
    loaded_at = datetime.now(UTC)
    assert load_day(con, files, day, loaded_at) == 6
    assert load_day(con, _log_files(shared.serving_log_dir(), day), day, loaded_at) == 6  # idempotent
    ids = sorted(r[0] for r in con.execute(f"SELECT transaction_id FROM {TABLE}").fetchall())
    assert ids == sorted(r["transaction_id"] for r in records if r["served_at"].startswith("2026-12-01"))

    export = _export_day(con, shared.served_dir(), day)
    assert str(export) == f"{shared.shared_root}/serving/served/2026-12-01.parquet"
    from platform_assets.lib.predictions import read_served_days

    assert sorted(read_served_days(shared.served_dir(), day, day)["transaction_id"]) == ids


def test_local_paths_stay_paths(tmp_path):
    storage = PlatformStorage(data_dir=str(tmp_path))
    assert isinstance(storage.training_sets_dir(), Path) and isinstance(storage.serving_log_dir(), Path)


def test_evidently_snapshots_published_to_the_shared_store_are_mirrored_into_the_ui_workspace(shared, tmp_path):
    from platform_assets.monitoring.workspace import PROJECT_ID, ensure_project, snapshot_id, sync, withdraw

    published = shared.evidently_workspace_dir()
    assert str(published) == f"{shared.shared_root}/evidently"
    ensure_project(published)
    snapshots = published / str(PROJECT_ID) / "snapshots"
    day = date(2026, 3, 5)
    (snapshots / f"{snapshot_id('feature_drift', day)}.json").write_text(json.dumps({"metadata": {"day": "x"}}))

    local = tmp_path / "evidently"
    assert sync(published, local) == {"files": 3, "copied": 3, "removed": 0}
    mirrored = local / str(PROJECT_ID)
    assert sorted(p.name for p in mirrored.iterdir()) == ["dashboard.json", "metadata.json", "snapshots"]
    assert json.loads((mirrored / "snapshots" / f"{snapshot_id('feature_drift', day)}.json").read_text()) == {
        "metadata": {"day": "x"}}
    assert sync(published, local)["copied"] == 0  # nothing changed, nothing rewritten

    withdraw(published, "feature_drift", day)
    assert sync(published, local) == {"files": 2, "copied": 0, "removed": 1}
    assert list((mirrored / "snapshots").glob("*.json")) == []


def test_the_champion_reads_its_manifest_from_the_shared_store(shared, tmp_path):
    """Scoring, monitoring and serving find the champion's training set by its snapshot id under the shared
    store's training_sets (lib/champion.py): an S3 path must reach the reader intact."""
    from types import SimpleNamespace

    from platform_assets.lib import names
    from platform_assets.lib.champion import Champion
    _, saved = _save_snapshot(shared, tmp_path, _snapshot_frame(40), "champ1")
    version = SimpleNamespace(version="1", tags={names.TAG_TRAINING_SET_ID: saved.snapshot_id})
    assert Champion(version, shared.training_sets_dir(), None).manifest == saved
