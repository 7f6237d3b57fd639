"""Leakage tests: our training-set join (`training_data.join_features`) against a brute-force oracle.

The oracle is written the way Feast's own `get_expected_training_df` is: for every entity row, scan every feature
row of its entity and keep the one that was *knowable* at the entity's time: event time <= entity time, within the
TTL, loaded (created) no later than the entity time; the latest event wins, then the latest load.

The store is whatever `feature_store.yaml` configures (its offline store is what is under test); set
`PLATFORM_PIT_STORE_YAMLS` to a comma-separated list of other feature_store yaml files to run the same tests
against them (e.g. a faster offline store).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from platform_assets.lib.training_sets import join_features
from platform_assets.resources.feature_store import FeastResource
from platform_assets.settings import PROJECT_ROOT

TTL = timedelta(days=2)
D0 = datetime(2026, 3, 1, tzinfo=UTC)
STORE_YAMLS = [
    Path(p) for p in os.environ.get(
        "PLATFORM_PIT_STORE_YAMLS", str(PROJECT_ROOT / "feature_repo" / "feature_store.yaml")).split(",") if p
]


def _us(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    return frame


def pit_store(tmp_path: Path, store_yaml: Path, feature_rows: pd.DataFrame):
    """A Feast store of the given configuration over one probe feature view of `feature_rows`."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    exports = tmp_path / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    path = exports / "probe_features.parquet"
    _us(feature_rows.copy(), "event_timestamp", "created_timestamp").to_parquet(path, index=False)
    resource = FeastResource(repo_path=str(PROJECT_ROOT / "feature_repo"), feature_store_yaml=str(store_yaml),
                             data_dir=str(tmp_path), project=f"pit_{tmp_path.name[-12:].replace('-', '_')}")
    store = resource.store()
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="probe", entities=[customer], ttl=TTL, schema=[Field(name="value", dtype=Float64)],
        source=FileSource(name="probe_source", path=str(path), timestamp_field="event_timestamp",
                          created_timestamp_column="created_timestamp"),
    )
    store.apply([customer, view, FeatureService(name="probe_service", features=[view])])
    return store


def oracle(feature_rows: pd.DataFrame, entity_rows: pd.DataFrame, ttl: timedelta) -> list[float]:
    """Brute force: the value knowable at each entity row's time, or NaN."""
    expected = []
    for row in entity_rows.itertuples():
        t = row.event_timestamp
        candidates = feature_rows[
            (feature_rows.customer_id == row.customer_id)
            & (feature_rows.event_timestamp <= t)
            & (feature_rows.event_timestamp >= t - ttl)
            & (feature_rows.created_timestamp <= t)
        ]
        if candidates.empty:
            expected.append(np.nan)
        else:
            expected.append(candidates.sort_values(["event_timestamp", "created_timestamp"]).iloc[-1].value)
    return expected


def joined(store, entity_rows: pd.DataFrame) -> pd.DataFrame:
    frame = join_features(store, _us(entity_rows.copy(), "event_timestamp"), "probe_service")
    return frame.set_index("transaction_id").loc[entity_rows.transaction_id]


def assert_matches_oracle(store, feature_rows, entity_rows):
    result = joined(store, entity_rows)
    assert len(result) == len(entity_rows), "entity rows were dropped"
    expected = oracle(feature_rows, entity_rows, TTL)
    mismatches = [
        (tid, got, want) for tid, got, want in zip(entity_rows.transaction_id, result["value"], expected, strict=True)
        if not ((pd.isna(got) and pd.isna(want)) or got == want)
    ]
    assert not mismatches, mismatches[:10]
    return result


def frame(rows: list[tuple]) -> pd.DataFrame:
    return _us(pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "created_timestamp", "value"]),
               "event_timestamp", "created_timestamp")


def entities(rows: list[tuple]) -> pd.DataFrame:
    return _us(pd.DataFrame(rows, columns=["transaction_id", "customer_id", "event_timestamp"]), "event_timestamp")


H = timedelta(hours=1)
DAY = timedelta(days=1)
FEATURES = frame([
    # backfill: the day-1 value was corrected (99) by a load made after T1 = D0 + 12h
    ("C1", D0, D0 + H, 1.0),
    ("C1", D0, D0 + 5 * DAY, 99.0),
    # TTL: one value, then silence
    ("C2", D0, D0 + H, 2.0),
    # equal event timestamps: the later load wins when both were loaded before the entity's time
    ("C3", D0, D0 + H, 3.0),
    ("C3", D0, D0 + 2 * H, 4.0),
    # the entity's only feature row comes after it
    ("C4", D0 + 5 * DAY, D0 + 5 * DAY, 5.0),
])


@pytest.fixture(params=STORE_YAMLS, ids=lambda p: p.name)
def store(request, tmp_path):
    return pit_store(tmp_path, request.param, FEATURES)


def test_value_backfilled_after_the_label_time_is_not_seen(store):
    rows = entities([("t1", "C1", D0 + 12 * H), ("t2", "C1", D0 + 6 * DAY - H)])
    result = assert_matches_oracle(store, FEATURES, rows)
    assert result.loc["t1", "value"] == 1.0  # the correction did not exist yet
    # t2 is 6 days later: past the TTL, so nothing; the oracle agrees (and the correction is not time-travelled)
    assert pd.isna(result.loc["t2", "value"])


def test_ttl_expiry_gives_null(store):
    rows = entities([("fresh", "C2", D0 + DAY), ("edge", "C2", D0 + TTL), ("expired", "C2", D0 + TTL + H)])
    result = assert_matches_oracle(store, FEATURES, rows)
    assert result.loc["fresh", "value"] == 2.0 and result.loc["edge", "value"] == 2.0
    assert pd.isna(result.loc["expired", "value"])


def test_equal_event_timestamps_are_broken_by_the_later_load(store):
    rows = entities([("both_loaded", "C3", D0 + 3 * H), ("only_first_loaded", "C3", D0 + 90 * timedelta(minutes=1))])
    result = assert_matches_oracle(store, FEATURES, rows)
    assert result.loc["both_loaded", "value"] == 4.0
    assert result.loc["only_first_loaded", "value"] == 3.0


def test_entity_rows_before_any_feature_are_kept_with_nulls(store):
    rows = entities([("early", "C4", D0 + DAY), ("later", "C4", D0 + 5 * DAY + H), ("unknown", "C9", D0 + DAY)])
    result = assert_matches_oracle(store, FEATURES, rows)
    assert pd.isna(result.loc["early", "value"]) and pd.isna(result.loc["unknown", "value"])
    assert result.loc["later", "value"] == 5.0


@pytest.mark.parametrize("store_yaml", STORE_YAMLS, ids=lambda p: p.name)
def test_random_world_matches_the_oracle(tmp_path, store_yaml):
    """Many entities, event times on a coarse grid (so ties are common) and loads up to 3 days late."""
    rng = np.random.default_rng(3)
    n = 400
    event = [D0 + timedelta(hours=6 * int(h)) for h in rng.integers(0, 40, n)]
    features = frame([
        (f"C{int(c)}", e, e + timedelta(hours=int(lag)), float(i))
        for i, (c, e, lag) in enumerate(zip(rng.integers(0, 25, n), event, rng.integers(0, 72, n), strict=True))
    ])
    store = pit_store(tmp_path, store_yaml, features)
    rows = entities([
        (f"T{i:04d}", f"C{int(c)}", D0 + timedelta(hours=int(h)))
        for i, (c, h) in enumerate(zip(rng.integers(0, 27, 600), rng.integers(0, 260, 600), strict=True))
    ])
    result = assert_matches_oracle(store, features, rows)
    assert result["value"].notna().sum() > 200 and result["value"].isna().sum() > 20
