"""A sensor daemon killed mid-tick and restarted still launches exactly one retrain per drift event.

Modelled on Dagster's own `dagster_tests/daemon_sensor_tests/test_sensor_failure_recovery.py`: the real sensor
daemon iteration runs in a spawned process with a debug crash flag that SIGKILLs it at a chosen point of the
tick (tick created, run created, run launched); a fresh process then resumes. The drift verdicts are
check evaluations of real runs (per partition) in a real instance; the code location is the platform's own
`Definitions`.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from platform_assets.lib import names
from platform_assets.monitoring.checks import check_spec, verdict_check
from platform_assets.settings import PROJECT_ROOT

spawn = multiprocessing.get_context("spawn")
SENSOR = "retrain_on_drift"


def _daemon_tick(instance_ref, at: datetime, crash_flags) -> None:
    """One sensor-daemon iteration at frozen time `at`, in its own process (so SIGKILL kills only it)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.daemon import get_default_daemon_logger
    from dagster._daemon.sensor import execute_sensor_iteration

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="platform_assets.definitions",
                             attribute="defs", working_directory=str(PROJECT_ROOT)),
        location_name="platform_assets",
    )
    with (
        dg.DagsterInstance.from_ref(instance_ref) as instance,
        freeze_time(at),
        create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as workspace,
    ):
        list(execute_sensor_iteration(workspace, get_default_daemon_logger("SensorDaemon"), None, None,
                                      debug_crash_flags=crash_flags))


def _run_tick(instance, at, crash_flags=None) -> int:
    process = spawn.Process(target=_daemon_tick, args=[instance.get_ref(), at, crash_flags])
    process.start()
    process.join(timeout=180)
    return process.exitcode


DRIFTED: set[str] = set()


@dg.asset(key=names.FEATURE_DRIFT_REPORT, partitions_def=dg.DailyPartitionsDefinition(start_date="2026-03-01"),
          check_specs=[check_spec(names.FEATURE_DRIFT_REPORT, dg.DailyPartitionsDefinition(start_date="2026-03-01"))])
def _drift_report(context):
    """A stand-in for the report, with the platform's own check spec and result: drift on the DRIFTED days."""
    drifted = context.partition_key in DRIFTED
    return dg.MaterializeResult(check_results=[verdict_check(
        names.FEATURE_DRIFT_REPORT, True, drifted, "drift" if drifted else "no_drift", "stand-in",
        {"drift_share": 0.3 if drifted else 0.05})])


def _report_drift(instance, day: str, drifted: bool) -> None:
    """A day's verdict as a run of the report records it: its drift check, evaluated for the partition."""
    (DRIFTED.add if drifted else DRIFTED.discard)(day)
    assert dg.materialize([_drift_report], instance=instance, partition_key=day).success


def _retrain_runs(instance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": SENSOR})))


@pytest.mark.slow
@pytest.mark.parametrize("crash_location", ["RUN_CREATED", "RUN_LAUNCHED"])
def test_killed_mid_tick_the_daemon_still_launches_exactly_one_retrain(tmp_path, monkeypatch, crash_location):
    from dagster._core.scheduler.instigation import TickStatus

    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "data"))  # read by the spawned code location
    monkeypatch.setenv("PLATFORM_PROFILE", "local")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    start = datetime(2026, 3, 11, 2, tzinfo=UTC)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        _report_drift(instance, "2026-03-09", False)
        _report_drift(instance, "2026-03-10", True)

        # The daemon is killed at the crash point of the tick that should request the retrain.
        exit_code = _run_tick(instance, start, {SENSOR: {crash_location: signal.SIGKILL}})
        assert exit_code == -signal.SIGKILL
        runs_after_crash = _retrain_runs(instance)
        assert len(runs_after_crash) == (0 if crash_location == "TICK_CREATED" else 1)

        # Restarted, it resumes (or retries) the tick: exactly one run, keyed by the drift event.
        assert _run_tick(instance, start + timedelta(seconds=61)) == 0
        runs = _retrain_runs(instance)
        assert len(runs) == 1
        assert runs[0].tags["dagster/run_key"] == "drift-retrain:2026-03-10"
        assert runs[0].tags["drift_as_of"] == "2026-03-10"

        # The same drift reported again (a re-run of the report), and a later tick: still one run.
        _report_drift(instance, "2026-03-10", True)
        _report_drift(instance, "2026-03-11", True)
        assert _run_tick(instance, start + timedelta(seconds=122)) == 0
        assert len(_retrain_runs(instance)) == 1
        sensor_state = next(s for s in instance.all_instigator_state() if s.name == SENSOR)
        ticks = instance.get_ticks(sensor_state.instigator_origin_id, sensor_state.selector_id)
        assert ticks[0].status == TickStatus.SKIPPED
