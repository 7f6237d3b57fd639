"""Training-set helpers: the whole-day split, the snapshot id, and the atomic snapshot files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from platform_assets.training_data import (
    TrainingSetManifest,
    assign_split,
    content_hash,
    save_snapshot,
    snapshot_id,
)

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
    split, returned_cut = assign_split(f, WINDOW["window_end"], holdout_days=7)

    assert returned_cut == cut
    assert split.loc[0, "split"] == "train" and split.loc[1, "split"] == "holdout"
    by_day = split.groupby(split["event_timestamp"].dt.date)["split"].agg(set)
    assert all(len(s) == 1 for s in by_day)  # every day lies wholly on one side
    holdout_days = sorted(d for d, s in by_day.items() if s == {"holdout"})
    assert holdout_days == [(cut + timedelta(days=i)).date() for i in range(7)]
    assert len(split) == len(f) and "split" not in f.columns  # the input frame is not modified


def test_assign_split_without_training_rows_raises():
    f = frame(days=21)
    with pytest.raises(ValueError, match="no training rows"):
        assign_split(f, WINDOW["window_end"], holdout_days=21)


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


def test_save_snapshot_writes_parquet_manifest_and_latest(tmp_path):
    f = frame()
    f.loc[0, "event_timestamp"] = pd.Timestamp("2026-03-01T00:00:00.123456Z")
    sid = sid_of(versions={"f": content_hash(f)})
    out = tmp_path / "training_sets"
    manifest = save_snapshot(f, manifest_fields(f, sid), out)

    assert sorted(p.name for p in out.iterdir()) == sorted([f"{sid}.parquet", f"{sid}.json", "latest.json"])
    assert manifest.path == str(out / f"{sid}.parquet")
    assert TrainingSetManifest.read(out / f"{sid}.json") == manifest
    assert TrainingSetManifest.read(out / "latest.json") == manifest
    back = pd.read_parquet(manifest.path)
    pd.testing.assert_frame_equal(back, f, check_dtype=False)
    assert back.loc[0, "event_timestamp"].microsecond == 123456


def test_second_snapshot_moves_latest_and_keeps_the_first(tmp_path):
    first, second = frame(), frame(days=22)
    sid1 = sid_of(versions={"f": content_hash(first)})
    sid2 = sid_of(versions={"f": content_hash(second)})
    save_snapshot(first, manifest_fields(first, sid1), tmp_path)
    m2 = save_snapshot(second, manifest_fields(second, sid2), tmp_path)

    assert TrainingSetManifest.read(tmp_path / "latest.json") == m2
    assert TrainingSetManifest.read(tmp_path / f"{sid1}.json").rows == len(first)
    assert (tmp_path / f"{sid1}.parquet").is_file()
    assert not [p.name for p in tmp_path.iterdir() if "tmp" in p.name]
