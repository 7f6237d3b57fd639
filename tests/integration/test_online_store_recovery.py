"""A lost online store is detected and rebuilt from the offline data (issue 15, item 4).

Real Feast, our SQLite online store, DuckDB over parquet: small synthetic feature marts of the documented schema
(the shape `test_production_profile` uses; no dbt needed), `feast_feature_views` + `feast_online_store` run once
per module through Dagster, then each test breaks the store the way it breaks in life (deleted; overwritten with
garbage; cut short; recreated empty by `feast apply`) and runs `feast_online_store` again. Before the fix the
asset reported success with 0 rows and the store stayed lost. Every test leaves the store rebuilt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from feature_marts import write_feature_marts
from platform_env import local_settings

from platform_assets.lib import names
from platform_assets.lib import online_store_health as health

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 5
CUSTOMERS = [f"C{i:04d}" for i in range(40)]
MERCHANTS = [f"M{i:03d}" for i in range(8)]
# A sample of entities, some of them never seen (their features must stay None after the rebuild too).
SAMPLE = [{"customer_id": c, "merchant_id": m} for c, m in
          [("C0000", "M000"), ("C0007", "M007"), ("C0013", "M005"), ("C0039", "M003"), ("C9999", "M999")]]
SERVICE = names.DEFAULT_FEATURE_SERVICE


@dataclass
class World:
    data_dir: Path
    resources: dict
    instance: dg.DagsterInstance
    online_path: Path
    before: dict  # get_online_features(SERVICE, SAMPLE) after the first load
    counts: dict[str, int]  # entity keys per view after the first load

    def store(self):
        return self.resources["feast"].store()

    def online(self, store=None) -> dict:
        """Every stored feature of every view for the sample (the service's on-demand view needs request data)."""
        store = store or self.store()
        refs = [f"{v.name}:{f.name}" for v in store.list_feature_views() for f in v.features]
        return store.get_online_features(features=refs, entity_rows=SAMPLE).to_dict()

    def materialize(self, *assets) -> dg.ExecuteInProcessResult:
        from platform_assets.features.assets import feast_feature_views, feast_online_store

        selection = dg.AssetSelection.assets(*(assets or [names.FEAST_ONLINE_STORE]))
        return dg.materialize([feast_feature_views, feast_online_store], selection=selection,
                              resources=self.resources, instance=self.instance)

    def sense(self, cursor: str | None = None):
        from platform_assets.automation.sensors import online_store_watch
        from platform_assets.resources import Notifier

        context = dg.build_sensor_context(instance=self.instance, cursor=cursor,
                                          resources={"feast": self.resources["feast"], "notifier": Notifier()})
        return online_store_watch(context), context.cursor


@pytest.fixture(scope="module")
def world(tmp_path_factory):

    from platform_assets.resources.profile import build_resources

    data_dir = tmp_path_factory.mktemp("online-recovery")
    with pytest.MonkeyPatch.context() as mp:
        settings = local_settings(mp, data_dir)
        write_feature_marts(settings.feature_repo_dir, settings.exports_dir, CUSTOMERS, MERCHANTS, 15, START, DAYS)
        resources = {k: v for k, v in build_resources(settings).items() if k in ("feast", "storage")}
        (data_dir / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(data_dir / "dagster")) as instance:
            w = World(data_dir, resources, instance, data_dir / "feast" / "online_store.db", {}, {})
            first = w.materialize(names.FEAST_FEATURE_VIEWS, names.FEAST_ONLINE_STORE)
            assert first.success
            w.before = w.online()
            store = w.store()
            w.counts = health.entity_counts(store, store.list_feature_views())
            yield w


def _latest(world: World) -> tuple[dict, dg.AssetCheckEvaluation]:
    event = world.instance.get_latest_materialization_event(names.FEAST_ONLINE_STORE)
    metadata = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    check = world.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(names.FEAST_ONLINE_STORE, names.ONLINE_STORE_CHECK)])
    evaluation = next(iter(check.values())).event.dagster_event.event_specific_data
    return metadata, evaluation


def _assert_rebuilt(world: World, status: str) -> dict:
    result = world.materialize()
    assert result.success
    metadata, check = _latest(world)
    assert metadata[names.ONLINE_STORE_REBUILT] is True
    assert metadata["rebuild_reason"].startswith(status), metadata["rebuild_reason"]
    assert metadata["entities"] == world.counts
    assert check.passed, check.description
    store = world.store()
    assert health.entity_counts(store, store.list_feature_views()) == world.counts
    assert world.online(store) == world.before
    assert health.integrity_problem(world.online_path) is None
    return metadata


def test_first_load_fills_every_view_and_passes_its_check(world):
    metadata, check = _latest(world)
    assert world.counts == {"customer_daily_features": 40, "merchant_daily_features": 8,
                            "customer_merchant_features": 40, "customer_recent_transactions": 40}
    assert metadata[names.ONLINE_STORE_REBUILT] is False and check.passed
    assert world.before["cust_txn_count_1d"][-1] is None  # an unknown customer stays unknown
    assert all(v is not None for v in world.before["cust_txn_count_1d"][:-1])
    # A whole store is left alone: an incremental run with no new data loads nothing.
    assert world.materialize().success
    again, check = _latest(world)
    assert again[names.ONLINE_STORE_REBUILT] is False and again["chunks"] == 0 and check.passed
    assert world.sense()[0].skip_message == "the online store is whole"


def test_deleted_store_is_flagged_refused_and_rebuilt_with_the_same_rows_and_values(world):
    from platform_assets.feast_stores.sqlite_online import OnlineStoreMissing

    reader_store = world.store()  # a long-lived reader (the scoring service) that saw the store before
    assert world.online(reader_store) == world.before
    world.online_path.unlink()
    request, cursor = world.sense()
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith("online-store-rebuild:")
    assert request.tags["online_store_problem"] == health.MISSING
    assert world.sense(cursor)[0].run_key == request.run_key  # the same incident: the same key
    with pytest.raises(OnlineStoreMissing):  # not a fresh empty file answering None for everything
        world.online(reader_store)
    assert not world.online_path.exists()
    _assert_rebuilt(world, health.MISSING)
    assert world.online(reader_store) == world.before  # the reader reopened the rebuilt file
    assert world.sense()[0].skip_message == "the online store is whole"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_store_is_detected_moved_aside_and_rebuilt(world, damage):
    import sqlite3

    reader_store = world.store()
    assert world.online(reader_store) == world.before
    key_before = world.sense()
    if damage == "garbage":
        broken = os.urandom(20_000)
    else:
        broken = world.online_path.read_bytes()[:8192]  # the first pages: the header survives
    world.online_path.write_bytes(broken)
    request, _ = world.sense()
    assert isinstance(request, dg.RunRequest), key_before
    assert request.tags["online_store_problem"] == health.CORRUPT
    with pytest.raises(sqlite3.DatabaseError):
        world.online(world.store())
    metadata = _assert_rebuilt(world, health.CORRUPT)
    moved = Path(metadata["moved_aside"])
    assert moved.parent == world.online_path.parent and moved.name.startswith("online_store.db.corrupt-")
    assert moved.read_bytes() == broken  # the evidence is kept as it was found
    assert world.online(reader_store) == world.before


def test_store_recreated_empty_is_refused_by_the_reader_and_rebuilt(world):
    from platform_assets.serving.features import FeatureReadError, OnlineFeatureReader

    world.online_path.unlink()
    assert world.materialize(names.FEAST_FEATURE_VIEWS).success  # `feast apply` recreates the tables, empty
    assert world.online_path.exists()
    assert world.online()["cust_txn_count_1d"] == [None] * len(SAMPLE)  # what serving used to score on
    reader = OnlineFeatureReader(world.store(), SERVICE, ["cust_txn_count_1d", "merch_txn_count_7d"])
    assert reader.problem().startswith("online store empty")
    rows = [{**SAMPLE[0], "amount": 10.0, "channel": "online", "event_ts": START + timedelta(days=DAYS)}]
    with pytest.raises(FeatureReadError, match="empty"):
        reader.read(rows)
    request, _ = world.sense()
    assert request.tags["online_store_problem"] == health.EMPTY
    _assert_rebuilt(world, health.EMPTY)
    assert OnlineFeatureReader(world.store(), SERVICE, ["cust_txn_count_1d"]).problem() is None


def test_each_incident_gets_its_own_run_key(world):
    world.online_path.unlink()
    first, _ = world.sense()
    _assert_rebuilt(world, health.MISSING)
    world.online_path.unlink()
    second, _ = world.sense()
    assert first.run_key != second.run_key  # a new loss after a rebuild is a new incident
    _assert_rebuilt(world, health.MISSING)
