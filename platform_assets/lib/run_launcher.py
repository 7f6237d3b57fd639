"""The local run launcher: Dagster's DefaultRunLauncher plus a run-worker health check, and stuck pool slots.

With the DefaultRunLauncher, run monitoring cannot tell a crashed run from a slow one: a run whose worker was
killed (`kill -9`, the OOM killer, a reboot) stays STARTED and keeps its `duckdb_writer` slot until
`max_runtime_seconds` (2 h), while the next writer waits "blocked by limit for pool duckdb_writer". This launcher
answers the monitoring daemon's `check_run_worker_health` from the pids the run recorded in its own events (the
worker's "Started process for run (pid: N)", the multiprocess executor's "Executing step ... in subprocess"),
checked against this machine's processes (`platform_assets.lib.run_workers`, which guards against pid reuse).
The daemon then marks the run failed, and `free_slots_after_run_end_seconds` later frees its slots
(deploy/local/dagster.yaml states the bound). Runs this launcher started on another host (tag below) are
never judged: their pids mean nothing here.

A worker can die while step processes it spawned live on (the multiprocess executor's children are not killed
with their parent). Those orphans are stopped (SIGTERM, then SIGKILL) before the run is reported failed, rather
than reported RUNNING until they exit: the run is lost either way (its orchestrating process is gone, nothing
will run its later steps or free its slots), an orphan may hold the DuckDB write lock, and freeing the pool slot
while it still writes would let the next writer (or the run's retry) collide with it. DuckDB survives the kill
(its write-ahead log is replayed on the next open).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus

from platform_assets.lib.run_workers import RecordedProcess, WorkerHealth, assess, stop

HOST_TAG = "platform/run_worker_host"


def recorded_processes(instance: dg.DagsterInstance, run_id: str) -> tuple[RecordedProcess | None,
                                                                            list[RecordedProcess]]:
    """(the run worker, the step workers) the run's events name. The worker is the latest run-level engine
    event with a pid: a resumed run names its new worker, and a run executed in-process (`dg.materialize`,
    `dagster job execute`) names its process through its executor's first event."""
    entries = instance.all_logs(
        run_id, of_type={dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.STEP_WORKER_STARTED})
    worker, steps = None, []
    for entry in entries:
        event = entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        pid = metadata.get("pid")
        try:
            pid = int(getattr(pid, "value", pid))
        except (TypeError, ValueError):
            continue
        if event.event_type == dg.DagsterEventType.STEP_WORKER_STARTED:
            steps.append(RecordedProcess(pid, entry.timestamp, event.step_key))
        elif event.step_key is None:
            worker = RecordedProcess(pid, entry.timestamp)
    return worker, steps


def judged_here(run: dg.DagsterRun) -> bool:
    host = run.tags.get(HOST_TAG)
    return host is None or host == socket.gethostname()


def worker_health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> WorkerHealth:
    if not judged_here(run):
        return WorkerHealth(None, None, ())
    return assess(*recorded_processes(instance, run.run_id))


def check_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CheckRunHealthResult:
    """RUNNING unless the worker is verifiably gone; orphaned step processes are stopped first (module doc)."""
    health = worker_health(instance, run)
    if health.worker_alive is None:
        return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid recorded (yet) on this host")
    if health.worker_alive:
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker {health.worker.describe()} is alive",
                                    run_worker_id=str(health.worker.pid))
    stopped = ""
    if health.orphaned:
        survivors = stop(health.live_steps)
        if survivors:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, "run worker gone; still stopping its orphaned step processes "
                + ", ".join(p.describe() for p in survivors), transient=True)
        stopped = "; stopped its orphaned step processes " + ", ".join(p.describe() for p in health.live_steps)
    return CheckRunHealthResult(
        WorkerStatus.FAILED, f"run worker {health.worker.describe()} no longer exists (killed?){stopped}",
        run_worker_id=str(health.worker.pid))


class HealthCheckingRunLauncher(dg.DefaultRunLauncher):
    """Launches exactly as DefaultRunLauncher does (through the code server), and tags the run with this host so
    the health check knows its pids are local."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def launch_run(self, context: LaunchRunContext) -> None:
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: socket.gethostname()})
        super().launch_run(context)

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return check_worker(self._instance, run)


# --- stuck pool slots (make doctor) --------------------------------------------------------------------------


@dataclass(frozen=True)
class StuckSlot:
    pool: str
    run_id: str
    step_key: str
    reason: str
    needs_failing: bool  # a STARTED run whose worker is gone: mark it failed before freeing

    def line(self) -> str:
        return f"pool {self.pool}: slot of step {self.step_key} held by run {self.run_id[:8]}, {self.reason}"


def stuck_slots(instance: dg.DagsterInstance) -> list[StuckSlot]:
    """Claimed pool slots whose run is gone, finished, or STARTED with its worker gone. Slots of a run that just
    ended are listed too: the daemon frees them after free_slots_after_run_end_seconds."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    found = []
    for pool in sorted(storage.get_concurrency_keys()):
        for slot in storage.get_concurrency_info(pool).claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            if run is None:
                found.append(StuckSlot(pool, slot.run_id, slot.step_key, "a run that no longer exists", False))
            elif run.is_finished:
                found.append(StuckSlot(pool, slot.run_id, slot.step_key, f"a run that ended ({run.status.value})",
                                       False))
            elif run.status == dg.DagsterRunStatus.STARTED:
                health = worker_health(instance, run)
                if health.worker_alive is False:
                    orphans = (f"; its orphaned step processes {', '.join(p.describe() for p in health.live_steps)}"
                               " still run and are stopped first" if health.orphaned else "")
                    found.append(StuckSlot(pool, slot.run_id, slot.step_key,
                                           f"a STARTED run whose worker {health.worker.describe()} is gone{orphans}",
                                           True))
    return found


def free_stuck_slots(instance: dg.DagsterInstance) -> list[str]:
    """Mark each dead STARTED run failed, then free its slots; what was done, one line each."""
    done, freed = [], set()
    for slot in stuck_slots(instance):
        if slot.run_id in freed:
            continue
        if slot.needs_failing:
            run = instance.get_run_by_id(slot.run_id)
            result = check_worker(instance, run)
            if result.status != WorkerStatus.FAILED:
                done.append(f"run {slot.run_id[:8]} left alone: {result.msg}")
                continue
            instance.report_run_failed(run, f"Marked failed by `make doctor --free-stuck-slots`: {result.msg}")
            done.append(f"run {slot.run_id[:8]} marked failed ({result.msg})")
        instance.event_log_storage.free_concurrency_slots_for_run(slot.run_id)
        freed.add(slot.run_id)
        done.append(f"freed the pool slots of run {slot.run_id[:8]} ({slot.reason})")
    return done


__all__ = ["HOST_TAG", "HealthCheckingRunLauncher", "StuckSlot", "check_worker", "free_stuck_slots",
           "recorded_processes", "stuck_slots"]
