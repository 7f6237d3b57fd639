"""A day whose file is mostly garbage fails ingestion's blocking check, and dbt does not build on it."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import pytest

from platform_assets.definitions import build_definitions
from platform_assets.settings import load_settings
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.landing import partition_path

DAY = date(2026, 3, 1)


@pytest.fixture
def platform(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLATFORM_LANDING_DIR", raising=False)
    settings = load_settings()
    config = SimulationConfig(start_date=DAY, days=1, n_customers=200, n_merchants=30, transactions_per_day=300,
                              malformed_rate=0.0)
    write_landing_zone(config, settings.landing_dir)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield settings, build_definitions(settings), instance


def _corrupt_amounts(path, every: int) -> int:
    lines = path.read_text().splitlines()
    broken = 0
    for i in range(1, len(lines), every):
        fields = lines[i].split(",")
        fields[3] = '"n/a"'
        lines[i] = ",".join(fields)
        broken += 1
    path.write_text("\n".join(lines) + "\n")
    return broken


def _load_day_then_warehouse(defs, instance) -> dg.ExecuteInProcessResult:
    dimensions = dg.AssetSelection.assets("raw_customers", "raw_merchants")
    assert dg.materialize(list(defs.assets), selection=dimensions, instance=instance,
                          resources=defs.resources).success
    dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets("raw_chargebacks"), instance=instance,
                   resources=defs.resources, partition_key=DAY.isoformat())
    return dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets("raw_transactions") | dg.AssetSelection.groups("warehouse"),
        instance=instance, resources=defs.resources, partition_key=DAY.isoformat(), raise_on_error=False,
    )


@pytest.mark.slow
def test_clean_day_flows_into_the_warehouse_in_the_same_run(platform):
    _, defs, instance = platform
    result = _load_day_then_warehouse(defs, instance)
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {dg.AssetKey("raw_transactions"), dg.AssetKey("fct_transactions")} <= materialized


def test_garbage_day_is_quarantined_and_blocks_the_warehouse(platform):
    settings, defs, instance = platform
    broken = _corrupt_amounts(partition_path(settings.landing_dir, "transactions", DAY), every=3)
    result = _load_day_then_warehouse(defs, instance)
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "quarantine_share_below_threshold"]
    assert len(checks) == 1 and not checks[0].passed
    # The good rows are in, the bad ones are in quarantine with their reason, nothing is lost.
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM raw.transactions").fetchone()[0]
        refused = con.execute(
            "SELECT count(*) FROM raw.quarantine WHERE source = 'transactions' AND reason = 'invalid_amount'"
        ).fetchone()[0]
    assert refused == broken and loaded > 0
    # dbt never ran on that day: no warehouse asset was materialized in the run.
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("raw_transactions")}
    assert instance.get_latest_materialization_event(dg.AssetKey("fct_transactions")) is None
