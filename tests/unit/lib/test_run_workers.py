"""Run-worker liveness from recorded pids: a pid reused by a later process, a zombie and a missing process are
dead; orphaned step processes are stopped. Fake /proc trees, plus real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from platform_assets.lib.run_workers import RecordedProcess, assess, is_alive, process_state, stop

TICKS = os.sysconf("SC_CLK_TCK")


def _fake_proc(tmp_path, pid: int, state: str, started_after_boot: float, boot: int = 1_700_000_000):
    (tmp_path / "stat").write_text(f"cpu  1 2 3\nbtime {boot}\n")
    (tmp_path / str(pid)).mkdir()
    fields = [state] + ["0"] * 18 + [str(int(started_after_boot * TICKS))] + ["0"] * 10
    (tmp_path / str(pid) / "stat").write_text(f"{pid} (python3 -m dagster (x)) " + " ".join(fields) + "\n")
    return boot + started_after_boot


def test_a_process_that_started_before_its_event_is_alive(tmp_path):
    started = _fake_proc(tmp_path, 4242, "S", 100.0)
    assert process_state(4242, tmp_path) == ("S", started)
    assert is_alive(RecordedProcess(4242, started + 0.5), tmp_path)


def test_a_pid_reused_by_a_later_process_is_dead(tmp_path):
    started = _fake_proc(tmp_path, 4242, "S", 100.0)
    assert not is_alive(RecordedProcess(4242, started - 60), tmp_path)


def test_a_zombie_and_a_missing_process_are_dead(tmp_path):
    started = _fake_proc(tmp_path, 4242, "Z", 100.0)
    assert not is_alive(RecordedProcess(4242, started + 1), tmp_path)
    assert not is_alive(RecordedProcess(4343, started + 1), tmp_path)


def test_assess_without_a_recorded_worker_knows_nothing():
    health = assess(None, [RecordedProcess(7, 0.0, "step")], alive=lambda p: False)
    assert health.worker_alive is None and not health.dead and not health.orphaned


def test_assess_a_live_worker_and_a_dead_one():
    worker, step = RecordedProcess(10, 0.0), RecordedProcess(11, 1.0, "raw_transactions")
    assert assess(worker, [step], alive=lambda p: True).worker_alive
    dead = assess(worker, [step], alive=lambda p: False)
    assert dead.dead and not dead.orphaned
    orphaned = assess(worker, [step], alive=lambda p: p.pid == 11)
    assert orphaned.orphaned and orphaned.live_steps == (step,) and not orphaned.dead


def test_real_processes_alive_then_dead_and_stop_kills_an_orphan():
    child = subprocess.Popen([sys.executable, "-c", ("import signal, time; signal.signal(signal.SIGTERM, "
                              "signal.SIG_IGN); print('up', flush=True); time.sleep(60)")], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"up\n"
        recorded = RecordedProcess(child.pid, time.time(), "step")
        assert is_alive(recorded)
        assert not is_alive(RecordedProcess(child.pid, time.time() - 3600)), "a pid older than its process"
        started = time.monotonic()
        # It ignores SIGTERM: stop() must fall back to SIGKILL after the grace period.
        survivors = stop([recorded], grace_seconds=0.5,
                         alive=lambda p: child.poll() is None and is_alive(p))
        assert survivors == () and child.wait(5) == -9
        assert time.monotonic() - started < 5
        assert not is_alive(recorded)
    finally:
        child.kill()
        child.wait()
