"""Landing files as source systems really deliver them, through the real assets, sensor and DuckDB file: the same
file twice, a corrected file, a late file, an old file, and two days loading at once from two processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from platform_assets.automation.landing import plan
from platform_assets.definitions import build_definitions
from platform_assets.lib import names
from platform_assets.settings import PROJECT_ROOT, load_settings
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.landing import partition_path

START = date(2026, 3, 1)
DAYS = 4


@pytest.fixture
def platform(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLATFORM_LANDING_DIR", raising=False)
    settings = load_settings()
    config = SimulationConfig(start_date=START, days=DAYS, n_customers=200, n_merchants=30,
                              transactions_per_day=300, malformed_rate=0.0)
    write_landing_zone(config, settings.landing_dir)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield settings, build_definitions(settings), instance


def ingest(defs, instance, day: date) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(names.DAILY_INGESTION_JOB).execute_in_process(
        instance=instance, partition_key=day.isoformat())
    assert result.success
    return result


def metadata(result, key: dg.AssetKey) -> dict:
    [m] = [m for m in result.asset_materializations_for_node(key.path[-1])]
    return {k: getattr(v, "value", v) for k, v in m.metadata.items()}


def query(settings, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def lines(path) -> int:
    return len(path.read_text().splitlines()) - 1


def test_the_same_file_twice_is_a_no_op_and_a_corrected_file_replaces_its_day(platform):
    settings, defs, instance = platform
    day = START + timedelta(days=1)
    first = ingest(defs, instance, day)
    tx_path = partition_path(settings.landing_dir, "transactions", day)
    assert metadata(first, names.RAW_TRANSACTIONS)["dagster/row_count"] == lines(tx_path)

    # The same bytes dropped again (a retried upload rewrites the file): nothing is loaded twice.
    tx_path.write_bytes(tx_path.read_bytes())
    again = ingest(defs, instance, day)
    tx_meta = metadata(again, names.RAW_TRANSACTIONS)
    assert (tx_meta["files_unchanged"], tx_meta["dagster/row_count"]) == (1, lines(tx_path))
    assert metadata(again, names.RAW_CUSTOMERS)["files_unchanged"] == 1
    assert query(settings, "SELECT count(*) FROM raw.landed_files WHERE source = 'transactions'") == [(1,)]

    # A corrected file: one row dropped, one row's amount changed. The day is replaced, exactly.
    with tx_path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    dropped = rows.pop(0)[0]
    fields = rows[0]
    fields[3] = "123.45"
    with tx_path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    corrected = ingest(defs, instance, day)
    assert metadata(corrected, names.RAW_TRANSACTIONS)["files_unchanged"] == 0
    assert query(settings, "SELECT count(*), count(*) FILTER (WHERE transaction_id = $t) FROM raw.transactions "
                           "WHERE partition_date = $d", {"t": dropped, "d": day}) == [(len(rows), 0)]
    assert query(settings, "SELECT amount FROM raw.transactions WHERE transaction_id = $t",
                 {"t": fields[0]}) == [(Decimal("123.45"),)]
    assert query(settings, "SELECT count(*) FROM raw.landed_files WHERE source = 'transactions'") == [(2,)]


def test_landing_sensor_requests_new_and_changed_days_once_per_content_within_the_lookback(platform):
    settings, defs, instance = platform
    sensor = defs.get_sensor_def("landing_files_sensor")

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
        data = sensor.evaluate_tick(context)
        return data.run_requests or [], data.cursor

    requests, cursor = tick(None)
    assert requests == []  # the first tick only records what is there
    assert len(json.loads(cursor)) == 2 + 2 * DAYS

    # A late day lands, and an old day's file is corrected.
    late = START + timedelta(days=DAYS)
    for source in ("transactions", "chargebacks"):
        src = partition_path(settings.landing_dir, source, START)
        dst = partition_path(settings.landing_dir, source, late)
        dst.parent.mkdir(parents=True)
        dst.write_text(src.read_text().replace(START.isoformat(), late.isoformat()))
    requests, cursor = tick(cursor)
    assert [r.partition_key for r in requests] == [late.isoformat()]
    assert requests[0].job_name in (None, names.DAILY_INGESTION_JOB)

    # Touched but the same bytes: no request. Same bytes as an earlier request: the same run key.
    path = partition_path(settings.landing_dir, "transactions", late)
    path.write_bytes(path.read_bytes())
    assert tick(cursor)[0] == []

    # Outside the lookback window: reported, not requested.
    old = plan(json.loads(cursor), settings.landing_dir, lookback_days=0)
    assert old.days == {}
    partition_path(settings.landing_dir, "chargebacks", START).write_text(
        "chargeback_id,transaction_id,reported_at,reason\n")
    old = plan(json.loads(cursor), settings.landing_dir, lookback_days=1)
    assert old.days == {} and old.too_old == [f"chargebacks/date={START.isoformat()}/chargebacks.csv"]

    # A folder that is not a day is not a landing file, however it is spelled.
    (settings.landing_dir / "transactions" / "date=..").mkdir(exist_ok=True)
    (settings.landing_dir / "transactions" / "date=2026-02-30").mkdir()
    (settings.landing_dir / "transactions" / "date=2026-02-30" / "transactions.csv").write_text("x\n")
    assert all("2026-02-30" not in p for p in plan(None, settings.landing_dir, 35).state)


def test_landed_files_manifest_shows_pending_then_loaded_files(platform):
    _, defs, instance = platform
    day = START
    result = ingest(defs, instance, day)
    manifest = metadata(result, names.LANDED_FILES)
    # Loaded: both snapshots and the day's two files; pending: the other days' files.
    assert manifest["dagster/row_count"] == 4
    assert len(manifest["pending_files"]) == 2 * (DAYS - 1)
    [check] = result.get_asset_check_evaluations()[-1:]
    assert check.check_name == names.LANDED_FILES_CHECK and not check.passed

    window = names.partition_range_tags(START.isoformat(), (START + timedelta(days=DAYS - 1)).isoformat())
    backfill = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(*names.RAW, names.LANDED_FILES),
                              instance=instance, resources=defs.resources, tags=window)
    manifest = metadata(backfill, names.LANDED_FILES)
    assert manifest["pending_files"] == [] and manifest["dagster/row_count"] == 2 + 2 * DAYS
    assert all(c.passed for c in backfill.get_asset_check_evaluations())


LOAD_ONE_DAY = """
import sys, dagster as dg
from platform_assets.definitions import build_definitions
from platform_assets.settings import load_settings
defs = build_definitions(load_settings())
result = defs.resolve_job_def("daily_ingestion").execute_in_process(partition_key=sys.argv[1])
print("ok" if result.success else "failed")
"""


@pytest.mark.slow
def test_two_days_loading_at_once_from_two_processes_both_load_exactly(platform):
    settings, defs, instance = platform
    ingest(defs, instance, START)  # the snapshots are in; the two processes then race for the file
    env = {**os.environ, "PLATFORM_DATA_DIR": str(settings.data_dir)}
    env.pop("PLATFORM_LANDING_DIR", None)
    days = [START + timedelta(days=1), START + timedelta(days=2)]
    procs = [subprocess.Popen([sys.executable, "-c", LOAD_ONE_DAY, d.isoformat()], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in days]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [o.strip().splitlines()[-1] for o, _ in outputs] == ["ok", "ok"], [e[-2000:] for _, e in outputs]
    for d in days:
        expected = lines(partition_path(settings.landing_dir, "transactions", d))
        assert query(settings, "SELECT count(*) FROM raw.transactions WHERE partition_date = $d", {"d": d}) == [
            (expected,)]
    assert query(settings, "SELECT count(*) FROM raw.landed_files WHERE source = 'transactions'") == [(3,)]
