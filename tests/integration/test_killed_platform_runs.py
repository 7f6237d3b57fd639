"""`kill -9` of the platform's own runs, during ingestion and during dbt: the next run finishes, within the bound
deploy/local/dagster.yaml states, with exact counts, and nothing was half-written in between.

The instance is deploy/local/dagster.yaml (pools of limit 1, run monitoring, our launcher) in a temporary
DAGSTER_HOME; runs go through a real code server of `platform_assets.definitions` on a simulated landing zone; the
run worker is SIGKILLed while its step writes, the code server lives on (as under `dagster dev`), and the run
monitoring daemon's own iterations run at the configured poll interval. The oracle is the landing files.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest
from run_helpers import launch, status, step_started, wait, worker_pid

from platform_assets.definitions import build_definitions
from platform_assets.lib import names
from platform_assets.settings import PROJECT_ROOT, load_settings
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.landing import partition_path

pytestmark = pytest.mark.slow
START = date(2026, 3, 1)
DAYS = 4
SLOT_FREE_SECONDS = 30  # deploy/local/dagster.yaml: a killed run's slot is free within ~15 s
BOUND_SECONDS = 60  # then the next run's own steps run
DONE = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@pytest.fixture
def platform(tmp_path, monkeypatch):
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget

    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLATFORM_LANDING_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    settings = load_settings()
    write_landing_zone(SimulationConfig(start_date=START, days=DAYS, n_customers=2_000, n_merchants=200,
                                        transactions_per_day=8_000, malformed_rate=0.0), settings.landing_dir)
    target = ModuleTarget(module_name="platform_assets.definitions", attribute="defs",
                          working_directory=str(PROJECT_ROOT), location_name="platform_assets")
    with dg.DagsterInstance.from_config(str(home)) as instance, \
            create_test_daemon_workspace_context(target, instance) as context:
        request = context.create_request_context()
        repo = next(iter(request.get_code_location("platform_assets").get_repositories().values()))
        yield settings, instance, context, request, repo


def expected_rows(settings) -> dict[date, int]:
    return {START + timedelta(days=i): len(partition_path(settings.landing_dir, "transactions",
                                                          START + timedelta(days=i)).read_text().splitlines()) - 1
            for i in range(DAYS)}


def counts(settings, sql: str) -> dict:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return dict(con.execute(sql).fetchall())


def run_to_end(instance, context, run_id: str, timeout: float, until_slot_free: bool = False) -> float:
    """The monitoring daemon's iterations at their cadence until the run ends (and, if asked, its pool slot is
    free); returns the seconds that took."""
    from dagster._daemon.daemon import get_default_daemon_logger
    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
    from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

    logger = get_default_daemon_logger("MonitoringDaemon")
    started, next_poll = time.monotonic(), 0.0
    def holds_slot() -> bool:
        claimed = instance.event_log_storage.get_concurrency_info(names.DUCKDB_WRITER_POOL).claimed_slots
        return any(s.run_id == run_id for s in claimed)

    while status(instance, run_id) not in DONE or (until_slot_free and holds_slot()):
        assert time.monotonic() - started < timeout, f"run {run_id[:8]} still {status(instance, run_id)}"
        if time.monotonic() >= next_poll:
            list(execute_run_monitoring_iteration(context, logger))
            list(execute_concurrency_slots_iteration(context, logger))
            next_poll = time.monotonic() + instance.run_monitoring_poll_interval_seconds
        time.sleep(0.2)
    return time.monotonic() - started


def kill_worker_during(instance, run_id: str, step_key: str, after_seconds: float = 0.0) -> None:
    wait(lambda: step_started(instance, run_id, step_key), 300, f"{step_key} to start")
    time.sleep(after_seconds)
    pid = worker_pid(instance, run_id)
    assert pid and status(instance, run_id) == dg.DagsterRunStatus.STARTED
    os.kill(pid, signal.SIGKILL)


def test_kill_9_during_ingestion_then_during_dbt_and_the_next_runs_finish_exactly(platform):
    settings, instance, context, request, repo = platform
    window = names.partition_range_tags(START.isoformat(), (START + timedelta(days=DAYS - 1)).isoformat())
    expected = expected_rows(settings)

    # Ingestion: the worker dies while raw_transactions loads four days in one transaction.
    killed = launch(instance, request, repo, names.DAILY_INGESTION_JOB, tags=window)
    kill_worker_during(instance, killed, "raw_transactions", after_seconds=0.2)
    freed_after = run_to_end(instance, context, killed, 60, until_slot_free=True)
    assert status(instance, killed) == dg.DagsterRunStatus.FAILURE
    assert freed_after < SLOT_FREE_SECONDS
    # Nothing half-written: every day has all of its rows or none (the orphaned step died with its worker, so the
    # file opens).
    wait(lambda: _opens(settings), 30, "the warehouse to be free")
    partial = counts(settings, "SELECT partition_date, count(*) FROM raw.transactions GROUP BY 1") \
        if _has_table(settings, "transactions") else {}
    assert all(n == expected[d] for d, n in partial.items()), (partial, expected)

    again = launch(instance, request, repo, names.DAILY_INGESTION_JOB, tags=window)
    took = run_to_end(instance, context, again, BOUND_SECONDS + 120)
    assert status(instance, again) == dg.DagsterRunStatus.SUCCESS, took
    print(f"\ningestion: slot free {freed_after:.1f} s after kill -9; the next run took {took:.1f} s")
    assert counts(settings, "SELECT partition_date, count(*) FROM raw.transactions GROUP BY 1") == expected
    assert counts(settings, "SELECT source, count(*) FROM raw.landed_files WHERE source = 'transactions' "
                            "GROUP BY 1") == {"transactions": DAYS}

    # dbt: the worker dies while `dbt build` writes the warehouse.
    graph = build_definitions(settings).resolve_asset_graph()
    warehouse = frozenset(dg.AssetSelection.groups(names.WAREHOUSE).resolve(graph))
    killed = launch(instance, request, repo, "__ASSET_JOB", tags=window, asset_selection=warehouse)
    step = wait(lambda: next((e.dagster_event.step_key for e in instance.all_logs(
        killed, of_type=dg.DagsterEventType.STEP_START)), None), 300, "the dbt step to start")
    kill_worker_during(instance, killed, step, after_seconds=3.0)
    freed_after = run_to_end(instance, context, killed, 60, until_slot_free=True)
    assert status(instance, killed) == dg.DagsterRunStatus.FAILURE
    assert freed_after < SLOT_FREE_SECONDS

    again = launch(instance, request, repo, "__ASSET_JOB", tags=window, asset_selection=warehouse)
    took = run_to_end(instance, context, again, BOUND_SECONDS + 240)
    assert status(instance, again) == dg.DagsterRunStatus.SUCCESS, took
    print(f"dbt: slot free {freed_after:.1f} s after kill -9; the next run took {took:.1f} s")
    assert counts(settings, "SELECT transaction_date, count(*) FROM fct_transactions GROUP BY 1") == expected
    claimed = instance.event_log_storage.get_concurrency_info(names.DUCKDB_WRITER_POOL).claimed_slots
    assert claimed == []


def _opens(settings) -> bool:
    try:
        duckdb.connect(str(settings.warehouse_path), read_only=True).close()
        return True
    except duckdb.IOException:
        return False


def _has_table(settings, table: str) -> bool:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = ?",
                                [table]).fetchone()[0])
