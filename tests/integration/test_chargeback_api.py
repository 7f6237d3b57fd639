"""Chargebacks through the real chargeback API service (our command, a subprocess on a free port) into raw, with
its failures injected: every chargeback the simulator reported lands exactly once, the retries are counted
exactly, the cursor advances only with a committed load, and the raw counts equal those of the landing files.

The oracle is the simulator's own output: the chargeback landing files of the same SimulationConfig, read as CSV.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from process_helpers import free_port

from platform_assets.ingestion import chargeback_api as ingestion
from platform_assets.ingestion.definitions import build_defs
from platform_assets.lib import names
from platform_assets.resources import ChargebackApi, LandingZone, WarehouseResource
from platform_assets.resources.chargeback_api import ChargebackApiError
from platform_assets.settings import load_settings
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.chargeback_api import start_service, stop_service, write_chargeback_api_data
from platform_assets.simulator.landing import partition_path

START = date(2026, 10, 1)
CONFIG = SimulationConfig(start_date=START, days=5, n_customers=200, n_merchants=40, transactions_per_day=300,
                          fraud_rate=0.1, malformed_rate=0.02, max_label_delay_days=3, seed=11)
DAYS = [START + timedelta(days=i) for i in range(CONFIG.days)]
PAGE = 10


def lenient(key: dg.AssetKey) -> dict:
    """Run config: this world's 2% malformed transactions pass the quarantine check (it is not under test)."""
    return {"ops": {names.asset_name(key): {"config": {"max_quarantine_share": 0.1}}}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The landing zone, the API's data and a warehouse holding customers, merchants and transactions (from the
    files), built once; each test copies the warehouse."""
    root = tmp_path_factory.mktemp("chargeback_api_world")
    settings = load_settings({"PLATFORM_DATA_DIR": str(root)})
    write_landing_zone(CONFIG, settings.landing_dir)
    data = write_chargeback_api_data(CONFIG, settings.sources_dir)
    defs = build_defs(settings)
    resources = {"warehouse": WarehouseResource(database=str(settings.warehouse_path)),
                 "landing_zone": LandingZone(path=str(settings.landing_dir))}
    assert dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(*names.SNAPSHOT_RAW),
                          resources=resources).success
    assert dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.RAW_TRANSACTIONS),
                          resources=resources, tags=names.partition_range_tags(str(DAYS[0]), str(DAYS[-1])),
                          run_config=lenient(names.RAW_TRANSACTIONS)).success
    oracle = {}
    for day in DAYS:
        with partition_path(settings.landing_dir, "chargebacks", day).open() as f:
            oracle.update({row["chargeback_id"]: day for row in csv.DictReader(f)})
    return {"root": root, "data": data, "warehouse": settings.warehouse_path, "landing": settings.landing_dir,
            "oracle": oracle}


@pytest.fixture
def platform(world, tmp_path):
    """A warehouse of our own, and a way to start the service (stopped after the test) and to load days."""
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(world["warehouse"], warehouse)
    services = []

    def serve(faults: str = "", token: str | None = None) -> str:
        port = free_port()
        env = {**os.environ, "PLATFORM_DATA_DIR": str(tmp_path)}
        env.pop("PLATFORM_CHARGEBACK_API_TOKEN", None)
        if token:
            env["PLATFORM_CHARGEBACK_API_TOKEN"] = token
        services.append(start_service(port, world["data"], faults, env=env))
        return f"http://127.0.0.1:{port}"

    def load(url: str, first: date, last: date, **api) -> dg.ExecuteInProcessResult:
        settings = load_settings({"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_CHARGEBACKS_SOURCE": "api",
                                  "PLATFORM_PARTITION_START": str(START), "PLATFORM_CHARGEBACK_API_URL": url})
        defs = build_defs(settings)
        client = ChargebackApi(url=url, page_limit=PAGE, backoff_base_seconds=0.05, read_timeout_seconds=1.0, **api)
        return dg.materialize(
            list(defs.assets), selection=dg.AssetSelection.assets(names.RAW_CHARGEBACKS), raise_on_error=False,
            resources={"warehouse": WarehouseResource(database=str(warehouse)), "chargeback_api": client,
                       "landing_zone": LandingZone(path=str(world["landing"]))},
            tags=names.partition_range_tags(str(first), str(last)))

    yield {"serve": serve, "load": load, "warehouse": warehouse, "dir": tmp_path}
    for process in services:
        stop_service(process)


def _pages(items: int) -> int:
    """Pages of PAGE items a read takes; a read that finds nothing still asks once."""
    return max(1, -(-items // PAGE))


def _health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        return json.loads(response.read())


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    """The run's metadata (each partition of the range carries the same)."""
    event = next(e for e in result.get_asset_materialization_events() if "pages" in e.materialization.metadata)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _state(warehouse: Path) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {t for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()}
        loaded = (con.execute("SELECT chargeback_id, partition_date FROM raw.chargebacks").fetchall()
                  if "chargebacks" in tables else [])
        refused = (con.execute("SELECT reason, record FROM raw.quarantine WHERE source = 'chargebacks'").fetchall()
                   if "quarantine" in tables else [])
        cursor = (con.execute("SELECT cursor FROM raw.source_cursors").fetchall()
                  if "source_cursors" in tables else [])
        received = (con.execute("SELECT count(*) FROM raw.received_chargebacks").fetchone()[0]
                    if "received_chargebacks" in tables else 0)
    return {"loaded": loaded, "refused": refused, "cursor": cursor, "received": received}


def _exactly_once(state: dict, oracle: dict, days: list[date]) -> None:
    """Every chargeback of `days` is in raw.chargebacks or refused with a reason, once; nothing else is."""
    expected = {cb: d for cb, d in oracle.items() if d in days}
    refused_ids = [json.loads(r)["chargeback_id"] for reason, r in state["refused"] if reason != "not_a_record"]
    ids = [cb for cb, _ in state["loaded"]] + refused_ids
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == set(expected)
    assert {cb: d for cb, d in state["loaded"]} == {cb: expected[cb] for cb, _ in state["loaded"]}


def test_failures_injected_every_chargeback_lands_exactly_once(platform, world):
    # 429 (Retry-After 1 s), two 500s, a page slower than the client's 1 s timeout, two garbage pages (cut-off
    # JSON, then JSON of another shape).
    url = platform["serve"]("429@2,500@3,500@4,slow@6,garbage@7,garbage@10,retry_after=1,slow_seconds=2")
    result = platform["load"](url, DAYS[0], DAYS[-1])
    assert result.success
    meta = _metadata(result)
    pages = _pages(len(world["oracle"]))
    assert meta["retries_by_cause"] == {"429": 1, "500": 2, "timeout": 1, "garbage": 2}
    assert meta["garbage_pages"] == meta["garbage_quarantined"] == 2
    assert meta["pages"] == pages and meta["requests"] == pages + 6
    assert meta["items_read"] == meta["items_new"] == len(world["oracle"])
    assert _health(url)["injected"] == {"429": 1, "500": 2, "slow": 1, "garbage": 2}
    state = _state(platform["warehouse"])
    _exactly_once(state, world["oracle"], DAYS)
    reasons = Counter(reason for reason, _ in state["refused"])
    assert reasons["not_a_record"] == 2
    assert meta["quarantine_by_reason"] == dict(reasons)
    # The garbage carries no chargeback: the check judges the chargebacks alone.
    [check] = result.get_asset_check_evaluations()
    assert check.passed, check.description


def test_a_seeded_fault_plan_is_counted_exactly_by_both_sides(platform, world):
    url = platform["serve"]("429=0.15,500=0.15,garbage=0.1,seed=5,retry_after=0")
    result = platform["load"](url, DAYS[0], DAYS[-1])
    assert result.success
    meta = _metadata(result)
    injected = _health(url)["injected"]
    assert meta["retries_by_cause"] == injected and sum(injected.values()) > 5
    assert meta["requests"] == meta["pages"] + sum(injected.values())
    assert meta["garbage_pages"] == meta["garbage_quarantined"] == injected.get("garbage", 0)
    _exactly_once(_state(platform["warehouse"]), world["oracle"], DAYS)


def test_incremental_runs_read_only_new_pages_and_match_the_landing_files(platform, world):
    url = platform["serve"]()
    oracle = world["oracle"]
    first = sum(1 for d in oracle.values() if d <= DAYS[2])
    meta = _metadata(platform["load"](url, DAYS[0], DAYS[2]))
    assert meta["items_read"] == first and meta["pages"] == _pages(first)
    cursor = _state(platform["warehouse"])["cursor"]
    assert len(cursor) == 1
    meta = _metadata(platform["load"](url, DAYS[3], DAYS[4]))
    assert meta["items_read"] == meta["items_new"] == len(oracle) - first
    assert meta["pages"] == _pages(len(oracle) - first) and meta["days_outside_range"] == []
    state = _state(platform["warehouse"])
    _exactly_once(state, oracle, DAYS)
    # Again: nothing new (one empty page), the same raw table.
    again = platform["load"](url, DAYS[3], DAYS[4])
    assert _metadata(again)["items_read"] == 0 and _metadata(again)["pages"] == 1
    assert sorted(_state(platform["warehouse"])["loaded"]) == sorted(state["loaded"])

    # The same days from the landing files: the same rows and the same refusals.
    files = platform["dir"] / "files.duckdb"
    shutil.copy(world["warehouse"], files)
    settings = load_settings({"PLATFORM_DATA_DIR": str(platform["dir"]), "PLATFORM_PARTITION_START": str(START)})
    assert dg.materialize(list(build_defs(settings).assets),
                          selection=dg.AssetSelection.assets(names.RAW_CHARGEBACKS),
                          resources={"warehouse": WarehouseResource(database=str(files)),
                                     "landing_zone": LandingZone(path=str(world["landing"]))},
                          tags=names.partition_range_tags(str(DAYS[0]), str(DAYS[-1]))).success
    from_files = _state(files)
    assert sorted(from_files["loaded"]) == sorted(state["loaded"])
    assert Counter(r for r, _ in from_files["refused"]) == Counter(r for r, _ in state["refused"])


def test_a_run_for_a_later_day_loads_the_days_before_it_too(platform, world):
    url = platform["serve"]()
    result = platform["load"](url, DAYS[4], DAYS[4])
    meta = _metadata(result)
    earlier = sorted({str(d) for d in world["oracle"].values() if d < DAYS[4]})
    assert meta["days_outside_range"] == earlier
    partitions = sorted(e.partition for e in result.get_asset_materialization_events())
    assert partitions == [*earlier, str(DAYS[4])]
    _exactly_once(_state(platform["warehouse"]), world["oracle"], DAYS)


def test_a_failure_after_receiving_leaves_nothing_and_the_rerun_recovers(platform, world, monkeypatch):
    url = platform["serve"]()

    def failing_rebuild(*args, **kwargs):
        raise RuntimeError("killed after receive")

    monkeypatch.setattr(ingestion, "rebuild_days", failing_rebuild)
    assert not platform["load"](url, DAYS[0], DAYS[-1]).success
    state = _state(platform["warehouse"])
    assert state["cursor"] == [] and state["loaded"] == [] and state["received"] == 0
    monkeypatch.undo()
    assert platform["load"](url, DAYS[0], DAYS[-1]).success
    _exactly_once(_state(platform["warehouse"]), world["oracle"], DAYS)


@pytest.mark.parametrize("phase", ["reading", "writing"])
def test_a_killed_run_leaves_cursor_and_raw_unchanged(platform, world, phase):
    """SIGKILL while the run waits on the API (a page that stalls), or inside its DuckDB transaction (the days
    rebuilt, the cursor not yet committed): the warehouse is as before, and the rerun loads every chargeback."""
    url = platform["serve"]()
    assert platform["load"](url, DAYS[0], DAYS[2]).success
    before = _state(platform["warehouse"])
    api = platform["serve"]("slow@2,slow_seconds=60" if phase == "reading" else "")
    marker = platform["dir"] / "rebuilt"
    script = textwrap.dedent(f"""
        import time
        import dagster as dg
        from platform_assets.ingestion import chargeback_api
        from platform_assets.ingestion.definitions import build_defs
        from platform_assets.lib import names
        from platform_assets.resources import ChargebackApi, LandingZone, WarehouseResource
        from platform_assets.settings import load_settings
        rebuild = chargeback_api.rebuild_days
        def rebuild_then_stall(*args, **kwargs):
            result = rebuild(*args, **kwargs)
            open({str(marker)!r}, "w").close()
            time.sleep(60)
            return result
        if {phase!r} == "writing":
            chargeback_api.rebuild_days = rebuild_then_stall
        settings = load_settings({{"PLATFORM_DATA_DIR": {str(platform["dir"])!r}, "PLATFORM_CHARGEBACKS_SOURCE": "api",
                                   "PLATFORM_PARTITION_START": {str(START)!r}}})
        dg.materialize(list(build_defs(settings).assets), selection=dg.AssetSelection.assets(names.RAW_CHARGEBACKS),
                       resources={{"warehouse": WarehouseResource(database={str(platform["warehouse"])!r}),
                                  "landing_zone": LandingZone(path={str(world["landing"])!r}),
                                  "chargeback_api": ChargebackApi(url={api!r}, page_limit={PAGE},
                                                                  read_timeout_seconds=120)}},
                       tags=names.partition_range_tags({str(DAYS[3])!r}, {str(DAYS[4])!r}))
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2],
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() if phase == "writing" else _health(api)["requests"] >= 2):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert _state(platform["warehouse"]) == before
    assert platform["load"](url, DAYS[3], DAYS[4]).success
    _exactly_once(_state(platform["warehouse"]), world["oracle"], DAYS)


def test_a_token_is_required_when_set_and_a_refusal_is_not_retried(platform):
    url = platform["serve"](token="s3cret")
    bound = datetime(2026, 10, 3, tzinfo=UTC)
    with pytest.raises(ChargebackApiError, match="HTTP 401.*PLATFORM_CHARGEBACK_API_TOKEN"):
        ChargebackApi(url=url).read(None, bound)
    assert _health(url)["requests"] == 0
    fetched = ChargebackApi(url=url, token="s3cret", page_limit=PAGE).read(None, bound)
    assert fetched.items > 0 and not fetched.retries


def test_exhausted_retries_fail_clearly_and_load_nothing(platform):
    url = platform["serve"]("500=1")
    result = platform["load"](url, DAYS[0], DAYS[-1], max_retries=2)
    assert not result.success
    assert "gave up" in str(result.all_events) and "HTTP 500" in str(result.all_events)
    assert _health(url)["injected"] == {"500": 3}
    assert _state(platform["warehouse"])["cursor"] == []
