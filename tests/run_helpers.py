"""Runs launched as the daemon launches them (through a real code server), for the crash-recovery tests."""

from __future__ import annotations

import re
import time

import dagster as dg


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def launch(instance, request, remote_repo, job_name: str, tags: dict | None = None,
           asset_selection=None) -> str:
    from dagster._core.test_utils import create_run_for_test

    job = remote_repo.get_full_job(job_name)
    run = create_run_for_test(instance, job_name=job_name, remote_job_origin=job.get_remote_origin(),
                              job_code_origin=job.get_python_origin(), tags=tags,
                              asset_selection=asset_selection)
    instance.launch_run(run.run_id, request)
    return run.run_id


def worker_pid(instance, run_id: str) -> int | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        match = re.match(r"Started process for run \(pid: (\d+)\)", entry.dagster_event.message or "")
        if match:
            return int(match.group(1))
    return None


def status(instance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def step_started(instance, run_id: str, step_key: str) -> bool:
    return any(e.dagster_event.step_key == step_key
               for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START))
