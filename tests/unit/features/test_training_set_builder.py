"""Training-set helpers: the whole-day split, the chunk plan, the snapshot id, the content hash fed chunk by chunk,
the atomic snapshot files and reading a split back as float32 model inputs."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from platform_assets.features.training_set_builder import (
    BuiltTrainingSet,
    ContentHash,
    assign_split,
    content_hash,
    holdout_cut,
    plan_chunks,
    save_snapshot,
    snapshot_id,
)
from platform_assets.lib.training_sets import TrainingSetManifest, read_split, read_training_inputs

WINDOW = {
    "window_start": datetime(2026, 3, 1, tzinfo=UTC),
    "window_end": datetime(2026, 3, 22, tzinfo=UTC),
    "as_of": datetime(2026, 4, 12, 23, 59, tzinfo=UTC),
}


def frame(days: int = 21, per_day: int = 6) -> pd.DataFrame:
    ts = [WINDOW["window_start"] + timedelta(days=d, hours=h * 4, minutes=7) for d in range(days)
          for h in range(per_day)]
    n = len(ts)
    return pd.DataFrame({
        "transaction_id": [f"T{i:05d}" for i in range(n)],
        "customer_id": [f"C{i % 7}" for i in range(n)],
        "merchant_id": [f"M{i % 5}" for i in range(n)],
        "event_timestamp": pd.to_datetime(ts, utc=True),
        "amount": [10.0 + i for i in range(n)],
        "is_fraud": [int(i % 17 == 0) for i in range(n)],
    })


def test_assign_split_holds_out_the_last_whole_days():
    f = frame()
    # Boundary rows: the last microsecond before the cut trains, the cut itself is holdout.
    cut = datetime(2026, 3, 15, tzinfo=UTC)
    f.loc[0, "event_timestamp"] = pd.Timestamp(cut - timedelta(microseconds=1))
    f.loc[1, "event_timestamp"] = pd.Timestamp(cut)
    returned_cut = holdout_cut(WINDOW["window_end"], holdout_days=7)
    split = assign_split(f, returned_cut)

    assert returned_cut == cut
    assert split.loc[0, "split"] == "train" and split.loc[1, "split"] == "holdout"
    by_day = split.groupby(split["event_timestamp"].dt.date)["split"].agg(set)
    assert all(len(s) == 1 for s in by_day)  # every day lies wholly on one side
    holdout_days = sorted(d for d, s in by_day.items() if s == {"holdout"})
    assert holdout_days == [(cut + timedelta(days=i)).date() for i in range(7)]
    assert len(split) == len(f) and "split" not in f.columns  # the input frame is not modified


def day_counts(days: int, per_day: int | list[int]) -> list:
    counts = per_day if isinstance(per_day, list) else [per_day] * days
    return [(WINDOW["window_start"] + timedelta(days=d), n) for d, n in enumerate(counts)]


def test_plan_chunks_cuts_whole_days_and_covers_the_window_exactly():
    start, end = WINDOW["window_start"], WINDOW["window_end"]
    cut = holdout_cut(end, 7)
    chunks = plan_chunks(day_counts(21, 100), start, end, cut, max_rows=250)

    assert chunks[0][0] == start and chunks[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))  # consecutive, no gap, no overlap
    assert all(lo.time() == hi.time() == datetime.min.time() for lo, hi in chunks)  # cut at midnight
    assert [(hi - lo).days for lo, hi in chunks] == [2] * 10 + [1]  # 200 rows each, at most 250
    assert plan_chunks(day_counts(21, 100), start, end, cut, max_rows=10_000) == [(start, end)]


def test_plan_chunks_gives_an_oversized_day_a_chunk_of_its_own():
    start, end = WINDOW["window_start"], WINDOW["window_end"]
    counts = [10] * 5 + [1_000] + [10] * 15
    chunks = plan_chunks(day_counts(21, counts), start, end, holdout_cut(end, 7), max_rows=100)
    big_day = start + timedelta(days=5)
    assert (big_day, big_day + timedelta(days=1)) in chunks
    assert chunks[0] == (start, big_day)


def test_plan_chunks_without_training_rows_raises():
    start, end = WINDOW["window_start"], WINDOW["window_end"]
    with pytest.raises(ValueError, match="no training rows before the 21-day holdout"):
        plan_chunks(day_counts(21, 5), start, end, holdout_cut(end, 21), max_rows=100)
    counts = [0] * 14 + [5] * 7  # days before the holdout, but none holds a row
    with pytest.raises(ValueError, match="no training rows"):
        plan_chunks(day_counts(21, counts), start, end, holdout_cut(end, 7), max_rows=100)


def test_content_hash_fed_chunk_by_chunk_equals_the_whole_frames():
    f = frame()
    hasher = ContentHash()
    for lo in range(0, len(f), 25):
        hasher.update(f.iloc[lo:lo + 25])
    assert hasher.hexdigest() == content_hash(f)
    retyped = ContentHash()
    retyped.update(f.iloc[:10])
    with pytest.raises(ValueError, match="types differ"):
        retyped.update(f.iloc[10:].astype({"is_fraud": "float64"}))


VERSIONS = {"fct_transactions.parquet": "aaaa", "fct_customer_daily_features.parquet": "bbbb"}
PARAMS = {"label_maturity_days": 21, "warmup_days": 30, "holdout_days": 7}


def sid_of(service="fraud_detector_v1", version="v1hash", window=None, versions=None, params=None) -> str:
    return snapshot_id(service, version, window or WINDOW, versions or VERSIONS, params or PARAMS)


def test_snapshot_id_is_stable_and_derived_from_the_recipe():
    sid = sid_of()
    assert len(sid) == 16 and int(sid, 16) >= 0
    assert sid_of(window=dict(WINDOW), versions=dict(VERSIONS)) == sid
    # every ingredient of the recipe changes it
    assert sid_of(service="fraud_detector_v2") != sid
    assert sid_of(version="other") != sid
    assert sid_of(window={**WINDOW, "as_of": WINDOW["as_of"] + timedelta(days=1)}) != sid
    assert sid_of(window={**WINDOW, "window_start": WINDOW["window_start"] + timedelta(days=1)}) != sid
    assert sid_of(versions={**VERSIONS, "fct_transactions.parquet": "cccc"}) != sid
    assert sid_of(params={**PARAMS, "label_maturity_days": 28}) != sid


def test_content_hash_sees_values_and_labels():
    f = frame()
    changed = f.copy()
    changed.loc[3, "amount"] += 0.01
    flipped = f.copy()
    flipped.loc[5, "is_fraud"] = 1 - flipped.loc[5, "is_fraud"]
    hashes = {content_hash(f), content_hash(changed), content_hash(flipped), content_hash(f.iloc[:-1])}
    assert len(hashes) == 4 and content_hash(f.copy()) == content_hash(f)


def test_snapshot_id_changes_when_a_column_is_renamed():
    f = frame()
    renamed = f.rename(columns={"amount": "amount_eur"})
    assert content_hash(renamed) != content_hash(f)


def manifest_fields(f: pd.DataFrame, sid: str) -> dict:
    return {
        "snapshot_id": sid,
        "feature_service": "fraud_detector_v1",
        "feature_columns": ["amount"],
        "label_column": "is_fraud",
        "window_start": WINDOW["window_start"].isoformat(),
        "window_end": WINDOW["window_end"].isoformat(),
        "as_of": WINDOW["as_of"].isoformat(),
        "holdout_start": "2026-03-15T00:00:00+00:00",
        "rows": len(f),
        "positives": int(f["is_fraud"].sum()),
        "holdout_rows": 0,
        "holdout_positives": 0,
    }


def built(f: pd.DataFrame, sid: str, scratch) -> BuiltTrainingSet:
    """A training set as build_training_set leaves it: a temporary parquet file and its manifest fields."""
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f".{sid}.parquet.tmp"
    f.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    return BuiltTrainingSet(path, manifest_fields(f, sid), join_seconds=0.0, chunks=1)


def test_save_snapshot_writes_parquet_manifest_and_latest(tmp_path):
    f = frame()
    f.loc[0, "event_timestamp"] = pd.Timestamp("2026-03-01T00:00:00.123456Z")
    sid = sid_of(versions={"f": content_hash(f)})
    out = tmp_path / "training_sets"
    manifest = save_snapshot(built(f, sid, out), out)

    assert sorted(p.name for p in out.iterdir()) == sorted([f"{sid}.parquet", f"{sid}.json", "latest.json"])
    assert manifest.path == str(out / f"{sid}.parquet")
    assert TrainingSetManifest.read(out / f"{sid}.json") == manifest
    assert TrainingSetManifest.read(out / "latest.json") == manifest
    back = pd.read_parquet(manifest.path)
    pd.testing.assert_frame_equal(back, f, check_dtype=False)
    assert back.loc[0, "event_timestamp"].microsecond == 123456


def test_a_saved_snapshot_is_found_after_its_directory_moved(tmp_path):
    """The manifest names its parquet file relative to itself, so the data directory can be moved."""
    f = frame()
    sid = sid_of(versions={"f": content_hash(f)})
    out = tmp_path / "before" / "training_sets"
    save_snapshot(built(f, sid, out), out)
    assert json.loads((out / "latest.json").read_text())["path"] == f"{sid}.parquet"

    moved = tmp_path / "after"
    (tmp_path / "before").rename(moved)
    manifest = TrainingSetManifest.read(moved / "training_sets" / "latest.json")
    assert manifest.path == str(moved / "training_sets" / f"{sid}.parquet")
    assert len(pd.read_parquet(manifest.path)) == manifest.rows


def test_a_manifest_with_an_absolute_path_is_read_as_written(tmp_path):
    """Manifests saved before relative names keep their absolute path (tools.relocate rewrites it after a move)."""
    f = frame()
    sid = sid_of(versions={"f": content_hash(f)})
    out = tmp_path / "training_sets"
    save_snapshot(built(f, sid, out), out)
    fields = json.loads((out / "latest.json").read_text())
    (tmp_path / "old.json").write_text(json.dumps({**fields, "path": "/elsewhere/x.parquet"}))
    assert TrainingSetManifest.read(tmp_path / "old.json").path == "/elsewhere/x.parquet"


def test_second_snapshot_moves_latest_and_keeps_the_first(tmp_path):
    first, second = frame(), frame(days=22)
    sid1 = sid_of(versions={"f": content_hash(first)})
    sid2 = sid_of(versions={"f": content_hash(second)})
    save_snapshot(built(first, sid1, tmp_path), tmp_path)
    m2 = save_snapshot(built(second, sid2, tmp_path), tmp_path)

    assert TrainingSetManifest.read(tmp_path / "latest.json") == m2
    assert TrainingSetManifest.read(tmp_path / f"{sid1}.json").rows == len(first)
    assert (tmp_path / f"{sid1}.parquet").is_file()
    assert not [p.name for p in tmp_path.iterdir() if "tmp" in p.name]


def test_a_split_reads_back_as_float32_inputs_with_its_labels_and_times(tmp_path):
    f = assign_split(frame(), holdout_cut(WINDOW["window_end"], 7))
    f["count_7d"] = pd.array([None, *range(len(f) - 1)], dtype="Int64")  # an integer feature with a gap
    sid = sid_of(versions={"f": content_hash(f)})
    fields = {**manifest_fields(f, sid), "feature_columns": ["amount", "count_7d"],
              "holdout_rows": int((f["split"] == "holdout").sum())}
    path = tmp_path / f"{sid}.parquet"
    # Small row groups: the reader must stitch many batches of both splits together in order.
    f.to_parquet(path, index=False, row_group_size=10)
    manifest = TrainingSetManifest(path=str(path), **fields)

    train = read_training_inputs(manifest, "train")
    expected = f[f["split"] == "train"].reset_index(drop=True)
    assert list(train.inputs.columns) == ["amount", "count_7d"]
    assert (train.inputs.dtypes == "float32").all() and train.inputs._mgr.nblocks == 1
    np.testing.assert_array_equal(train.inputs["amount"], expected["amount"].astype("float32"))
    assert np.isnan(train.inputs["count_7d"].iloc[0]) and train.inputs["count_7d"].iloc[-1] == len(expected) - 2
    np.testing.assert_array_equal(train.labels, expected["is_fraud"])
    pd.testing.assert_series_equal(train.timestamps, expected["event_timestamp"].dt.as_unit("us"),
                                   check_names=False)
    holdout = read_training_inputs(manifest, "holdout")
    assert len(holdout.inputs) == fields["holdout_rows"] and holdout.timestamps.min() >= pd.Timestamp(
        holdout_cut(WINDOW["window_end"], 7))
    pd.testing.assert_frame_equal(read_split(path, "holdout"), f[f["split"] == "holdout"].reset_index(drop=True),
                                  check_dtype=False)

    wrong = TrainingSetManifest(path=str(path), **{**fields, "rows": fields["rows"] - 1})
    with pytest.raises(ValueError, match="holds more train rows"):
        read_training_inputs(wrong, "train")
