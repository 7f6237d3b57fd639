"""Is a process a run recorded still alive? Pure: /proc and signals, no Dagster (the launcher and `make doctor`
read the pids from the run's events, `platform_assets.lib.run_launcher`).

A pid alone is not an identity: once a worker dies its pid may be handed to any new process. A process named by
an event existed when the event was written, so a live process with that pid that *started after* the event is
someone else. Linux gives a process's start time in /proc (clock ticks since boot, boot time in whole seconds,
hence the slack); a zombie (killed, not yet reaped by its parent) counts as dead. Without /proc (macOS) only
existence can be checked.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
START_TIME_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class RecordedProcess:
    pid: int
    recorded_at: float  # unix time of the event that named it
    step_key: str | None = None  # None: the run worker itself

    def describe(self) -> str:
        return f"pid {self.pid}" + (f" (step {self.step_key})" if self.step_key else " (run worker)")


def _boot_time(proc: Path) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_state(pid: int, proc: Path = PROC) -> tuple[str, float] | None:
    """(state letter, start time as unix time) of a live or zombie process, None if there is none."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after the last ")".
    fields = stat[stat.rindex(")") + 2:].split()
    state, start_ticks = fields[0], int(fields[19])
    return state, _boot_time(proc) + start_ticks / os.sysconf("SC_CLK_TCK")


def is_alive(process: RecordedProcess, proc: Path = PROC) -> bool:
    if not proc.is_dir():
        try:
            os.kill(process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state = process_state(process.pid, proc)
    if state is None:
        return False
    letter, started_at = state
    if letter in ("Z", "X"):
        return False
    return started_at <= process.recorded_at + START_TIME_SLACK_SECONDS


@dataclass(frozen=True)
class WorkerHealth:
    """What the recorded processes of a run say: `worker_alive` None when no worker pid is recorded yet."""

    worker: RecordedProcess | None
    worker_alive: bool | None
    live_steps: tuple[RecordedProcess, ...]

    @property
    def dead(self) -> bool:
        """The worker is gone and nothing of the run still runs."""
        return self.worker_alive is False and not self.live_steps

    @property
    def orphaned(self) -> bool:
        """The worker is gone but step processes it started still run (the multiprocess executor's children)."""
        return self.worker_alive is False and bool(self.live_steps)


def assess(
    worker: RecordedProcess | None, steps: Sequence[RecordedProcess],
    alive: Callable[[RecordedProcess], bool] = is_alive,
) -> WorkerHealth:
    if worker is None:
        return WorkerHealth(None, None, ())
    if alive(worker):
        return WorkerHealth(worker, True, ())
    return WorkerHealth(worker, False, tuple(s for s in steps if s.pid != worker.pid and alive(s)))


def stop(
    processes: Sequence[RecordedProcess], grace_seconds: float = 3.0,
    alive: Callable[[RecordedProcess], bool] = is_alive,
) -> tuple[RecordedProcess, ...]:
    """SIGTERM each (still verified) process, SIGKILL what is left after grace_seconds; returns the survivors."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        targets = [p for p in processes if p.pid not in (0, 1, os.getpid()) and alive(p)]
        for target in targets:
            try:
                os.kill(target.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and any(alive(p) for p in targets):
            time.sleep(0.1)
    return tuple(p for p in processes if alive(p))


__all__ = ["RecordedProcess", "WorkerHealth", "assess", "is_alive", "process_state", "stop"]


_guarded = False


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """Every live process below `pid` (children first found, then theirs), from /proc's parent pids."""
    parents: dict[int, list[int]] = {}
    for entry in proc.glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def exit_with_run_worker(poll_seconds: float = 0.5) -> bool:
    """In a step process of the multiprocess executor: die, with every process this one started (a `dbt build`),
    when the run worker that spawned it dies.

    Killing a run worker with `kill -9` does not kill its step processes. While Dagster's code server lives it marks
    the run failed itself, and run monitoring frees the run's pool slot seconds later, but the orphaned step goes on
    writing: the next writer then meets DuckDB's file lock, or two writers race on the same partition. A writer
    therefore calls this when it opens the warehouse; it starts one watcher thread per process (a no-op outside a
    multiprocessing child, e.g. in the run worker itself or in a test). Dying mid-transaction loses nothing:
    DuckDB rolls back what was not committed. Returns whether a watcher runs."""
    global _guarded
    import multiprocessing
    import threading

    if _guarded or multiprocessing.parent_process() is None:
        return _guarded
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        for child in reversed(descendants(os.getpid())):
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="exit-with-run-worker", daemon=True).start()
    _guarded = True
    return True
