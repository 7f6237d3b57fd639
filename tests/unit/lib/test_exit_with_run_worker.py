"""A step process dies, with the processes it started, when its run worker is killed (lib/run_workers)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time

from platform_assets.lib.run_workers import exit_with_run_worker

spawn = multiprocessing.get_context("spawn")


def _step(queue) -> None:
    assert exit_with_run_worker(poll_seconds=0.1)
    dbt = subprocess.Popen(["sleep", "60"])  # stands for the `dbt build` a step starts
    queue.put((os.getpid(), dbt.pid))
    time.sleep(60)


def _run_worker(queue) -> None:
    step = spawn.Process(target=_step, args=(queue,))
    step.start()
    step.join()


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_the_run_worker_takes_its_step_and_the_steps_children_down():
    queue = spawn.Queue()
    worker = spawn.Process(target=_run_worker, args=(queue,))
    worker.start()
    step, dbt = queue.get(timeout=60)
    assert _alive(step) and _alive(dbt)
    os.kill(worker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (_alive(step) or _alive(dbt)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(step) and not _alive(dbt)
    worker.join(5)


def test_outside_a_multiprocessing_child_no_watcher_starts():
    assert exit_with_run_worker() is False
