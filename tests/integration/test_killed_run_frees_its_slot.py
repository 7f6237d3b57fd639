"""A run killed with `kill -9` while it holds the duckdb_writer slot is marked failed and frees the slot, and the
run waiting for that slot proceeds, within the bound deploy/local/dagster.yaml states.

Real processes throughout: the instance is deploy/local/dagster.yaml in a temporary DAGSTER_HOME (our launcher,
pools of limit 1, run monitoring), runs are launched through a real code server (`dagster api execute_run`
workers, multiprocess executor, so the killed worker leaves an orphaned step process behind), and the run
monitoring daemon's own iterations run at the configured poll interval, as `dagster-daemon` would run them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from run_helpers import launch as _launch
from run_helpers import status as _status
from run_helpers import wait as _wait
from run_helpers import worker_pid as _worker_pid

from platform_assets.lib.run_launcher import HealthCheckingRunLauncher, free_stuck_slots, stuck_slots
from platform_assets.lib.run_workers import RecordedProcess, is_alive
from platform_assets.settings import PROJECT_ROOT

POOL = "duckdb_writer"
BOUND_SECONDS = 30  # deploy/local/dagster.yaml: "the next writer starts within ~30 s"
JOBS = '''
import os, time
from pathlib import Path
import dagster as dg

HERE = Path(__file__).parent


@dg.op(pool="duckdb_writer")
def hold_slot():
    (HERE / "holder.pid").write_text(str(os.getpid()))
    time.sleep(600)


@dg.op(pool="duckdb_writer")
def write_next():
    (HERE / "next.done").write_text(str(time.time()))


@dg.job
def hold():
    hold_slot()


@dg.job
def next_writer():
    write_next()


defs = dg.Definitions(jobs=[hold, next_writer])
'''


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    return home


@pytest.mark.slow
def test_a_killed_run_frees_its_slot_and_the_next_run_proceeds(tmp_path, home):
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import PythonFileTarget
    from dagster._daemon.daemon import get_default_daemon_logger

    (tmp_path / "jobs.py").write_text(JOBS)
    target = PythonFileTarget(python_file=str(tmp_path / "jobs.py"), attribute=None,
                              working_directory=str(tmp_path), location_name="slots")
    logger = get_default_daemon_logger("MonitoringDaemon")
    with dg.DagsterInstance.from_config(str(home)) as instance, \
            create_test_daemon_workspace_context(target, instance) as context:
        assert isinstance(instance.run_launcher, HealthCheckingRunLauncher)
        request = context.create_request_context()
        location = request.get_code_location("slots")
        repo = next(iter(location.get_repositories().values()))

        held = _launch(instance, request, repo, "hold")
        step_pid = int(_wait(lambda: (tmp_path / "holder.pid").exists() and (tmp_path / "holder.pid").read_text(),
                             120, "the hold_slot step to start"))
        seen_at = time.time()
        try:
            _kill_and_recover(instance, context, request, repo, logger, tmp_path, held, step_pid)
        finally:
            for pid in (step_pid, _worker_pid(instance, held)):
                if pid and is_alive(RecordedProcess(pid, seen_at)):  # only what this test started
                    os.kill(pid, signal.SIGKILL)


def _kill_and_recover(instance, context, request, repo, logger, tmp_path, held: str, step_pid: int) -> None:
    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
    from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

    poll = instance.run_monitoring_poll_interval_seconds
    claimed = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    assert [s.run_id for s in claimed] == [held]
    waiting = _launch(instance, request, repo, "next_writer")
    _wait(lambda: any(p.run_id == waiting for p in instance.event_log_storage.get_concurrency_info(POOL)
                      .pending_steps), 120, "the next run to wait for the slot")
    # Healthy: the monitoring daemon leaves the holding run alone.
    list(execute_run_monitoring_iteration(context, logger))
    assert _status(instance, held) == dg.DagsterRunStatus.STARTED

    worker = _worker_pid(instance, held)
    assert worker and worker != step_pid
    # The code server that spawned the worker goes too (as when `dagster dev`'s process group is killed): while it
    # lives it marks its own dead worker's run failed, but it never stops the orphaned step. With it gone, only
    # the launcher's health check can tell.
    code_server = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert "grpc" in Path(f"/proc/{code_server}/cmdline").read_text()
    os.kill(code_server, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    _wait(lambda: not is_alive(RecordedProcess(worker, time.time())), 10, "the worker to die")
    assert is_alive(RecordedProcess(step_pid, time.time())), "the step process outlives its worker"
    assert [s.run_id for s in stuck_slots(instance)] == [held], "make doctor sees the stuck slot"

    # The daemon, at its configured cadence, until the waiting run has finished.
    timings, next_poll = {}, killed_at
    while _status(instance, waiting) not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
        assert time.monotonic() - killed_at < 120, f"no recovery after 120 s ({timings})"
        if time.monotonic() >= next_poll:
            list(execute_run_monitoring_iteration(context, logger))
            list(execute_concurrency_slots_iteration(context, logger))
            next_poll += poll
        if "failed" not in timings and _status(instance, held) == dg.DagsterRunStatus.FAILURE:
            timings["failed"] = time.monotonic() - killed_at
        claimed = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        if "freed" not in timings and held not in [s.run_id for s in claimed]:
            timings["freed"] = time.monotonic() - killed_at
        time.sleep(0.2)
    timings["next_run_done"] = time.monotonic() - killed_at
    print(f"\nafter kill -9 (poll {poll} s): " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))

    assert _status(instance, waiting) == dg.DagsterRunStatus.SUCCESS
    assert (tmp_path / "next.done").exists()
    assert _status(instance, held) == dg.DagsterRunStatus.FAILURE
    messages = [e.dagster_event.message or "" for e in instance.all_logs(held) if e.dagster_event]
    assert any("no longer exists" in m and "stopped its orphaned step processes" in m for m in messages), messages
    assert not is_alive(RecordedProcess(step_pid, time.time())), "the orphaned step was stopped"
    assert timings["next_run_done"] < BOUND_SECONDS, timings
    assert stuck_slots(instance) == []


def test_doctor_reports_then_frees_stuck_slots(tmp_path, home):
    from dagster._core.events import EngineEventData
    from dagster._core.test_utils import create_run_for_test

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 2)
        dead = create_run_for_test(instance, job_name="ingest", status=dg.DagsterRunStatus.STARTED)
        instance.report_engine_event(f"Started process for run (pid: {gone.pid}).", dead,
                                     EngineEventData.in_process(gone.pid))
        ended = create_run_for_test(instance, job_name="dbt", status=dg.DagsterRunStatus.CANCELED)
        alive = create_run_for_test(instance, job_name="live", status=dg.DagsterRunStatus.STARTED)
        instance.report_engine_event(f"Started process for run (pid: {os.getpid()}).", alive,
                                     EngineEventData.in_process(os.getpid()))
        for run in (dead, ended):
            assert storage.claim_concurrency_slot(POOL, run.run_id, "step").is_claimed
        assert not storage.claim_concurrency_slot(POOL, alive.run_id, "step").is_claimed

    env = {**os.environ, "PLATFORM_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(home)}

    def doctor(*args):
        out = subprocess.run([sys.executable, "-m", "platform_assets.tools.doctor", *args], cwd=PROJECT_ROOT,
                             env=env, capture_output=True, text=True, timeout=120, check=False)
        assert "Traceback" not in out.stderr, out.stderr
        return next(line for line in out.stdout.splitlines() if "pool slots:" in line)

    line = doctor()
    assert line.startswith("FIX  pool slots:") and "make free-slots" in line, line
    assert f"run {dead.run_id[:8]}, a STARTED run whose worker pid {gone.pid}" in line
    assert f"run {ended.run_id[:8]}, a run that ended (CANCELED)" in line and alive.run_id[:8] not in line

    line = doctor("--free-stuck-slots")
    assert line.startswith("ok   pool slots:") and f"run {dead.run_id[:8]} marked failed" in line, line
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        claimed = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        assert claimed == [] or all(s.run_id == alive.run_id for s in claimed)
        assert instance.event_log_storage.claim_concurrency_slot(POOL, alive.run_id, "step").is_claimed
        assert free_stuck_slots(instance) == []
    assert doctor().startswith("ok   pool slots:")
