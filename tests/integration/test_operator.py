"""Operator conveniences: each common mistake fails with a message naming its fix, long loads log their progress,
`make doctor` diagnoses, and `make mlflow` serves the MLflow UI on the loopback interface."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime

import dagster as dg
import duckdb
import pytest
from process_helpers import free_port, stop_process_group

from platform_assets.definitions import build_definitions
from platform_assets.ingestion.loader import load_source
from platform_assets.ingestion.sources import SOURCES
from platform_assets.lib.progress import ProgressLog
from platform_assets.resources.dbt import ManifestMissingError, require_manifest
from platform_assets.resources.warehouse import WarehouseLockedError, WarehouseResource, lock_holder
from platform_assets.settings import PROJECT_ROOT, load_settings
from platform_assets.simulator import SimulationConfig, write_landing_zone


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLATFORM_LANDING_DIR", raising=False)
    monkeypatch.setenv("PLATFORM_PROFILE", "local")
    return tmp_path


def _doctor(data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLATFORM_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "platform_assets.tools.doctor"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


# --- no sample data yet --------------------------------------------------------------------------------------


def test_ingesting_without_sample_data_names_make_simulate_and_make_demo(data_dir):
    settings = load_settings()
    defs = build_definitions(settings)
    (data_dir / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(data_dir / "dagster")) as instance:
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets("raw_customers"),
                                resources=defs.resources, instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.cause.message if failure.step_failure_data.error.cause else ""
    message += failure.step_failure_data.error.message
    assert "No sample data yet" in message and "make simulate" in message and "make demo" in message
    assert str(settings.landing_dir / "customers" / "customers.csv") in message


def test_doctor_on_an_empty_data_dir_lists_each_fix(data_dir):
    out = _doctor(data_dir)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert any(line.startswith("FIX  sample data") and "make simulate" in line and "make demo" in line
               for line in lines), out.stdout
    assert any(line.startswith("FIX  warehouse:") and "make demo" in line for line in lines), out.stdout
    assert any(line.startswith("ok   dbt manifest") for line in lines), out.stdout


# --- dbt manifest not built ------------------------------------------------------------------------------------


def test_missing_dbt_manifest_names_make_prepare(tmp_path):
    from dagster_dbt import DbtProject

    project_dir = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    with pytest.raises(ManifestMissingError, match=r"make prepare"):
        require_manifest(DbtProject(project_dir=project_dir, profiles_dir=project_dir))


# --- DuckDB file locked by another process -------------------------------------------------------------------


@pytest.fixture
def locked_warehouse(tmp_path):
    """Another process holding the warehouse open for writing, as a forgotten notebook does."""
    path = tmp_path / "warehouse" / "warehouse.duckdb"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(120)"), str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield path, holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_locked_warehouse_names_the_holder_and_what_to_do(locked_warehouse):
    path, pid = locked_warehouse
    warehouse = WarehouseResource(database=str(path), lock_timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError) as excinfo, warehouse.get_connection():
        pass
    assert time.monotonic() - started < 10, "the bounded wait must not become DuckDBResource's ~100 s back-off"
    message = str(excinfo.value)
    assert f"locked by process {pid}" in message and f"kill {pid}" in message
    assert "cancel it under Runs" in message and "data/exports" in message and "make doctor" in message


def test_lock_is_waited_for_and_taken_once_released(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(1.5); con.close(); time.sleep(30)"), str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with WarehouseResource(database=str(path), lock_timeout_seconds=30).get_connection() as con:
            assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
    finally:
        holder.kill()
        holder.wait()


def test_doctor_names_the_process_holding_the_lock(locked_warehouse):
    path, pid = locked_warehouse
    out = _doctor(path.parent.parent)
    assert out.returncode == 1
    line = next(line for line in out.stdout.splitlines() if line.startswith("FIX  warehouse:"))
    assert f"process {pid}" in line and "-c import duckdb" in line


def test_lock_holder_parses_duckdb_message():
    message = ('IO Error: Could not set lock on file "/x.duckdb": Conflicting lock is held in /usr/bin/python3 '
               f"(PID {os.getpid()}) by user root.")
    pid, command = lock_holder(message)
    assert pid == os.getpid() and "python" in command
    assert lock_holder("IO Error: something else") == (None, "")


# --- progress of long loads ----------------------------------------------------------------------------------


def test_progress_logs_first_throttled_and_last():
    lines, now = [], [0.0]
    progress = ProgressLog(lines.append, "transactions files loaded", total=5, every_seconds=10, clock=lambda: now[0])
    for step in range(5):
        now[0] = step * 4.0  # 0, 4, 8, 12, 16 s
        progress.advance(rows=1_000)
    # first (t=0), t=12 (>= 10 s after the first), last (t=16)
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == ["1/5 done", "4/5 done", "5/5 done"]
    assert "5,000 rows" in lines[-1] and "rows/s" in lines[-1]


def test_ingestion_reports_rows_done_after_each_file(tmp_path):
    config = SimulationConfig(start_date=date(2026, 3, 1), days=3, n_customers=50, n_merchants=10,
                              transactions_per_day=100, malformed_rate=0.0)
    write_landing_zone(config, tmp_path / "landing")
    seen: list[int] = []
    con = duckdb.connect(":memory:")
    for snapshot in ("customers", "merchants"):
        load_source(con, SOURCES[snapshot], tmp_path / "landing", None, datetime.now(UTC))
    result = load_source(con, SOURCES["transactions"], tmp_path / "landing",
                         [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)], datetime.now(UTC),
                         on_file_loaded=seen.append)
    assert len(seen) == 3 and sum(seen) == result.rows_read > 0


# --- make mlflow ---------------------------------------------------------------------------------------------


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent, the kernel just picks a source address
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_make_mlflow_serves_the_ui_on_loopback_only(tmp_path):
    port = free_port()
    env = {**os.environ, "PLATFORM_DATA_DIR": str(tmp_path)}
    server = subprocess.Popen(["make", "--no-print-directory", "mlflow", f"MLFLOW_PORT={port}"], cwd=PROJECT_ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, body = time.monotonic() + 90, None
        while time.monotonic() < deadline and body is None:
            assert server.poll() is None, "make mlflow exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search"
                                            "?max_results=10", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(1)
        assert body is not None, "the MLflow UI did not answer on 127.0.0.1"
        assert any(e["name"] == "Default" for e in body.get("experiments", []))
        assert (tmp_path / "mlflow" / "mlflow.db").exists(), "the UI reads the platform's own tracking store"
        other = _non_loopback_address()
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
    finally:
        stop_process_group(server, timeout=15)
