"""`make dev` for real: our launcher (platform_assets/tools/dev.py) around `dagster dev` on a free loopback port and a
temporary PLATFORM_DATA_DIR / DAGSTER_HOME. It refuses a busy port or a second daemon on the same DAGSTER_HOME at
once, and SIGTERM or SIGINT (to the launcher, or through make) leaves none of the processes it started after 10 s:
webserver, daemon, code servers and a run worker, counted with psutil, not with the launcher's own bookkeeping."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from process_helpers import free_port
from run_helpers import wait

from platform_assets.settings import PROJECT_ROOT
from platform_assets.tools import dev

STOP_WITHIN = 10.0
BOOT_TIMEOUT = 240.0  # `dagster dev` loads the code location twice; minutes on a 2-core machine running the suite


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PLATFORM_", "DAGSTER_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "MAKE", "MFLAGS"))}
    env.update({"PLATFORM_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home"),
                "PLATFORM_PROFILE": "local", "DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1"})
    return env


def _launcher(port: int, env: dict[str, str], log: Path | None = None, *args: str) -> subprocess.Popen:
    out = log.open("w") if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "platform_assets.tools.dev", "--port", str(port), *args],
                            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE,
                            text=True, start_new_session=True)


def _wait_for_server(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=3) as answer:
                if b"dagster_webserver_version" in answer.read():
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"no /server_info on {port} after {BOOT_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def _tree(root: int) -> dict[int, str]:
    """pid -> command line of `root`, its descendants and every process of its group (psutil's view)."""
    found = {}
    try:
        top = psutil.Process(root)
        for proc in [top, *top.children(recursive=True)]:
            found[proc.pid] = " ".join(proc.cmdline())[:160]
    except psutil.NoSuchProcess:
        pass
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getpgid(proc.pid) in {root, *found}:
                found[proc.pid] = " ".join(proc.info["cmdline"] or [])[:160]
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def _alive(pids) -> dict[int, str]:
    alive = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive[pid] = " ".join(proc.cmdline())[:160]
        except psutil.NoSuchProcess:
            continue
    return alive


def _stop_and_time(signal_to, pid: int, sig: int, tree: dict[int, str], proc: subprocess.Popen) -> float:
    started = time.monotonic()
    signal_to(pid, sig)
    while _alive(tree) and time.monotonic() - started < 30:
        proc.poll()
        time.sleep(0.1)
    seconds = time.monotonic() - started
    left = _alive(tree)
    if left:  # leave nothing behind for the rest of the suite, then fail
        for straggler in left:
            _sigkill(straggler)
    assert not left, f"still running {seconds:.1f} s after {signal.Signals(sig).name}: {left}"
    return seconds


def _sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    """Cleanup only, of the group this test started, by its id."""
    for pid in _alive(_tree(proc.pid)):
        _sigkill(pid)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


def _launch_run(port: int) -> str:
    """Materialize raw_merchants the way the UI's button does (the implicit asset job): a run worker starts. The
    webserver answers before it has loaded the code location, so wait for that first."""
    loaded = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"""
    wait(lambda: any(e["name"] == "platform_assets" and e["loadStatus"] == "LOADED"
                          for e in _graphql(port, loaded)["workspaceOrError"].get("locationEntries", [])),
              BOOT_TIMEOUT, "loaded code location")
    mutation = """mutation Launch($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
        ... on InvalidSubsetError { message } } }"""
    checks = """query Checks($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
        assetChecksOrError { ... on AssetChecks { checks { name jobNames } } } } } }"""
    node = _graphql(port, checks, {"key": {"path": ["raw_merchants"]}})["assetNodeOrError"]
    params = {"executionMetadata": {"tags": []}, "runConfigData": {},
              "selector": {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__",
                           "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["raw_merchants"]}],
                           "assetCheckSelection": [
                               {"assetKey": {"path": ["raw_merchants"]}, "name": c["name"]}
                               for c in node["assetChecksOrError"]["checks"]
                               if not c["jobNames"] or "__ASSET_JOB" in c["jobNames"]]}}
    answer = _graphql(port, mutation, {"p": params})["launchPipelineExecution"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


# ------------------------------------------------------------------------------------------ refusals, no Dagster


def test_a_busy_port_is_refused_at_once_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = _launcher(port, _environment(tmp_path))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == dev.EXIT_PORT_IN_USE, (out, err)
    assert time.monotonic() - started < 15
    assert err.strip().splitlines() == [(f"make dev: 127.0.0.1:{port} is already in use (another `make dev`?): "
                                        f"stop it, or choose another port: make dev PORT={port + 1}")]
    assert not (tmp_path / "home" / dev.LOCK_NAME).exists(), "refused before taking the DAGSTER_HOME lock"


def test_the_home_lock_refuses_a_second_launcher_and_a_killed_holder_leaves_it_free(tmp_path):
    env = _environment(tmp_path)
    home = tmp_path / "home"
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from pathlib import Path; from platform_assets.tools import dev; "
         "dev.acquire_lock(Path(sys.argv[1]), '127.0.0.1', 1); print('locked', flush=True); time.sleep(300)"),
         str(home)], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = _launcher(free_port(), env)
        out, err = refused.communicate(timeout=60)
        assert refused.returncode == dev.EXIT_ALREADY_RUNNING, (out, err)
        assert err.strip().splitlines() == [
            (f"make dev: another `make dev` (pid {holder.pid}, http://127.0.0.1:1) already runs on "
            f"DAGSTER_HOME={home}: stop it first (Ctrl-C in its terminal), or give this one its own DAGSTER_HOME")]
    finally:
        holder.kill()  # SIGKILL: no cleanup of its own can run
        holder.wait(timeout=10)
    fd = dev.check_can_start("127.0.0.1", free_port(), home)
    os.close(fd)


# ------------------------------------------------------------------------------------- dagster dev for real


@pytest.mark.slow
def test_sigterm_stops_webserver_daemon_code_servers_and_a_run_within_10s(tmp_path):
    env = _environment(tmp_path)
    home = tmp_path / "home"
    port, log = free_port(), tmp_path / "dev.log"
    first = _launcher(port, env, log)
    try:
        _wait_for_server(port, first, log)
        # The daemon's heartbeat is what refuses a daemon started some other way
        assert wait(lambda: dev.live_daemon_heartbeat(home) is not None, 120, "daemon heartbeat")

        # A second `make dev`, same port: refused at once, the first untouched
        started = time.monotonic()
        second = _launcher(port, env)
        _, err = second.communicate(timeout=60)
        assert second.returncode == dev.EXIT_PORT_IN_USE and "is already in use" in err
        assert time.monotonic() - started < 15
        # Another port, same DAGSTER_HOME: refused too (one daemon per instance)
        third = _launcher(free_port(), env)
        _, err = third.communicate(timeout=120)
        assert third.returncode == dev.EXIT_ALREADY_RUNNING and f"(pid {first.pid}, " in err, err
        assert first.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=10) as answer:
            assert b"dagster_webserver_version" in answer.read()

        # A run in flight: its run worker (started by the code server, loading the Definitions, then the step's
        # process) is among what must go. The run fails on its own after some seconds (no landing file): the
        # signal goes as soon as the worker is seen.
        before = _tree(first.pid)
        _launch_run(port)

        def _with_worker():
            now = _tree(first.pid)
            return now if set(now) - set(before) else None

        tree = wait(_with_worker, 180, "run worker")
        # the code server starts a run worker as a multiprocessing child (spawn)
        assert any("spawn_main" in tree[pid] for pid in set(tree) - set(before)), tree
        kinds = " ".join(tree.values())
        for part in ("dagster_webserver", "dagster._daemon", "code-server", "dagster api grpc"):
            assert part in kinds, f"{part} not among {tree}"
        seconds = _stop_and_time(os.kill, first.pid, signal.SIGTERM, tree, first)
        assert seconds <= STOP_WITHIN, f"took {seconds:.1f} s"
        assert first.wait(timeout=10) == 0
        assert "make dev: SIGTERM received: stopped in" in log.read_text()
    finally:
        _kill_group(first)
    # Stopped cleanly: the next `make dev` is not refused by the heartbeats of the daemon just stopped
    os.close(dev.check_can_start("127.0.0.1", port, home))


def _make_dev(tmp_path: Path, sigint_ignored: bool = False) -> tuple[subprocess.Popen, int, Path]:
    """`make dev` on a free port; `sigint_ignored` starts it as a script's background job is started (`make dev &`
    in a non-interactive shell): with SIGINT ignored, which plain `dagster dev` inherited and then ignored SIGTERM."""
    port, log = free_port(), tmp_path / "make-dev.log"
    make = f"exec make --no-print-directory dev PORT={port}"
    proc = subprocess.Popen(["bash", "-c", f"trap '' INT; {make}" if sigint_ignored else make], cwd=PROJECT_ROOT,
                            env=_environment(tmp_path), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    _wait_for_server(port, proc, log)
    return proc, port, log


def _ignores(pid: int, sig: int) -> bool:
    mask = re.search(r"^SigIgn:\s*([0-9a-f]+)$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE).group(1)
    return bool(int(mask, 16) & (1 << (sig - 1)))


@pytest.mark.slow
def test_ctrl_c_on_make_dev_stops_everything_within_10s(tmp_path):
    """Ctrl-C in a terminal is SIGINT to the foreground process group: make and the launcher both get it."""
    make, _, log = _make_dev(tmp_path)
    try:
        tree = _tree(make.pid)
        assert any("dagster._daemon" in c for c in tree.values()), tree
        seconds = _stop_and_time(os.killpg, make.pid, signal.SIGINT, tree, make)
        assert seconds <= STOP_WITHIN, f"took {seconds:.1f} s"
        make.wait(timeout=10)
        assert "make dev: SIGINT received: stopped in" in log.read_text()
    finally:
        _kill_group(make)


@pytest.mark.slow
def test_sigterm_to_make_reaches_the_launcher_and_stops_everything_within_10s(tmp_path):
    """`kill <make's pid>` (a process manager, an IDE's stop button), make started as `make dev &` from a script:
    make passes SIGTERM to its child, and the launcher's `dagster dev` does not ignore it."""
    make, _, log = _make_dev(tmp_path, sigint_ignored=True)
    try:
        tree = _tree(make.pid)
        assert any("dagster_webserver" in c for c in tree.values()), tree
        assert _ignores(make.pid, signal.SIGINT)
        dagster_dev = next(pid for pid, c in tree.items() if "-m dagster dev" in c)
        assert not _ignores(dagster_dev, signal.SIGINT), "dagster dev would map SIGTERM onto an ignored SIGINT"
        seconds = _stop_and_time(os.kill, make.pid, signal.SIGTERM, tree, make)
        assert seconds <= STOP_WITHIN, f"took {seconds:.1f} s"
        assert make.wait(timeout=10) != 0  # make reports the signal it was stopped by
        assert "make dev: SIGTERM received: stopped in" in log.read_text()
    finally:
        _kill_group(make)
