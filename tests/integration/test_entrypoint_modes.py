"""The entrypoint modes deploy/compose.yaml and deploy/k8s/ run, started for real (no Docker engine here: the
entrypoint runs on this machine as it would in the image, every server on 127.0.0.1), and the image's
HEALTHCHECK (deploy/healthcheck.py) judged on each: healthy once the mode's process answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from process_helpers import free_port, stop_process_group

from platform_assets.settings import PROJECT_ROOT

ENTRYPOINT = PROJECT_ROOT / "deploy" / "entrypoint.sh"
HEALTHCHECK = PROJECT_ROOT / "deploy" / "healthcheck.py"
REDIS_HOST = os.environ.get("PLATFORM_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("PLATFORM_TEST_REDIS_PORT", "6379"))
REDIS_PASSWORD = os.environ.get("PLATFORM_TEST_REDIS_PASSWORD", "")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
            "PLATFORM_HOME": str(PROJECT_ROOT), "PLATFORM_DATA_DIR": str(tmp_path / "data"),
            "DAGSTER_HOME": str(tmp_path / "dagster"), **extra}


def _start(mode: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    # TMPDIR per process: the mode file the healthcheck reads is the container's own.
    return subprocess.Popen([str(ENTRYPOINT), mode], cwd=env["TMPDIR"], env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _healthy(env: dict[str, str]) -> bool:
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, check=False,
                          timeout=60).returncode == 0


def _wait_healthy(proc: subprocess.Popen, env: dict[str, str], log: Path, seconds: float = 150) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        if _healthy(env):
            return
        time.sleep(1)
    pytest.fail(f"not healthy in {seconds:.0f} s: {log.read_text()[-3000:]}")


def _tmp(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def test_code_server_serves_the_location_to_a_webserver_over_grpc(tmp_path):
    """compose's code-server and webserver: the webserver loads platform_assets from the gRPC server only."""
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {grpc_port}\n"
                         "      location_name: platform_assets\n")
    code_env = _env(tmp_path, TMPDIR=str(_tmp(tmp_path, "code")), PLATFORM_CODE_SERVER_HOST="127.0.0.1",
                    PLATFORM_CODE_SERVER_PORT=str(grpc_port))
    web_env = _env(tmp_path, TMPDIR=str(_tmp(tmp_path, "web")), DAGSTER_WORKSPACE=str(workspace),
                   PLATFORM_WEBSERVER_HOST="127.0.0.1", PLATFORM_WEBSERVER_PORT=str(web_port))
    assert not _healthy(code_env)  # nothing listens yet: the check can fail
    code = _start("code-server", code_env, tmp_path / "code.log")
    web = None
    try:
        _wait_healthy(code, code_env, tmp_path / "code.log")
        web = _start("webserver", web_env, tmp_path / "web.log")
        _wait_healthy(web, web_env, tmp_path / "web.log")
        query = b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}'
        request = urllib.request.Request(f"http://127.0.0.1:{web_port}/graphql", data=query,
                                         headers={"Content-Type": "application/json"})
        answer = urllib.request.urlopen(request, timeout=30).read().decode()
        assert '"name": "platform_assets"' in answer.replace('":"', '": "') and "LOADED" in answer, answer
        assert (tmp_path / "dagster" / "dagster.yaml").exists()  # the profile's instance file, copied in
    finally:
        if web is not None:
            stop_process_group(web, timeout=30)
        stop_process_group(code, timeout=30)


def test_dask_scheduler_and_worker_modes_form_a_cluster(tmp_path):
    port, dashboard = free_port(), free_port()
    common = {"PLATFORM_DASK_HOST": "127.0.0.1", "PLATFORM_DASK_PORT": str(port),
              "PLATFORM_DASK_DASHBOARD_PORT": str(dashboard), "PLATFORM_DASK_SCHEDULER": f"tcp://127.0.0.1:{port}",
              "PLATFORM_DASK_WORKER_HOST": "127.0.0.1", "PLATFORM_DASK_THREADS": "1",
              "PLATFORM_DASK_MEMORY_LIMIT": "1GiB"}
    scheduler_env = _env(tmp_path, TMPDIR=str(_tmp(tmp_path, "scheduler")), **common)
    worker_env = _env(tmp_path, TMPDIR=str(_tmp(tmp_path, "worker")), **common)
    scheduler = _start("dask-scheduler", scheduler_env, tmp_path / "scheduler.log")
    worker = None
    try:
        _wait_healthy(scheduler, scheduler_env, tmp_path / "scheduler.log")
        assert not _healthy(worker_env)  # the scheduler lists no worker of this host yet
        worker = _start("dask-worker", worker_env, tmp_path / "worker.log")
        _wait_healthy(worker, worker_env, tmp_path / "worker.log")
        from distributed import Client

        with Client(common["PLATFORM_DASK_SCHEDULER"], timeout=10) as client:
            assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
    finally:
        if worker is not None:
            stop_process_group(worker, timeout=30)
        stop_process_group(scheduler, timeout=30)


def test_mlflow_server_mode_proxies_artifacts_so_clients_need_no_path(tmp_path):
    """`mlflow-server`: the client logs over HTTP only; the file lands in the server's artifacts destination."""
    port = free_port()
    destination = tmp_path / "artifacts"
    env = _env(tmp_path, TMPDIR=str(_tmp(tmp_path, "mlflow")), PLATFORM_MLFLOW_HOST="127.0.0.1",
               PLATFORM_MLFLOW_PORT=str(port), MLFLOW_BACKEND_STORE_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
               MLFLOW_ARTIFACTS_DESTINATION=destination.as_uri(),
               PLATFORM_MLFLOW_ALLOWED_HOSTS=f"127.0.0.1:{port},127.0.0.1")
    server = _start("mlflow-server", env, tmp_path / "mlflow.log")
    try:
        _wait_healthy(server, env, tmp_path / "mlflow.log")
        client_code = (
            "import mlflow\n"
            f"mlflow.set_tracking_uri('http://127.0.0.1:{port}')\n"
            "mlflow.set_experiment('deploy_modes')\n"
            "with mlflow.start_run() as run:\n"
            "    mlflow.log_text('proxied', 'note.txt')\n"
            "print(run.info.artifact_uri)\n"
        )
        out = subprocess.run([sys.executable, "-c", client_code], capture_output=True, text=True, check=False,
                             timeout=120, cwd=_tmp(tmp_path, "client"),
                             env={**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"})
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip().splitlines()[-1].startswith("mlflow-artifacts:")
        assert [p.read_text() for p in destination.rglob("note.txt")] == ["proxied"]
    finally:
        stop_process_group(server, timeout=30)


def test_celery_worker_mode_answers_its_healthcheck_ping(tmp_path):
    """`celery-worker` on the real Redis, under a key prefix of its own (deleted afterwards)."""
    import redis

    prefix = f"platform_test_{uuid.uuid4().hex[:10]}:"
    auth = f":{REDIS_PASSWORD}@" if REDIS_PASSWORD else ""
    url = f"redis://{auth}{REDIS_HOST}:{REDIS_PORT}/0"
    env = _env(tmp_path, TMPDIR=str(_tmp(tmp_path, "celery")), PLATFORM_PROFILE="production",
               PLATFORM_CELERY_BROKER_URL=url, PLATFORM_CELERY_BACKEND_URL=url, PLATFORM_CELERY_KEY_PREFIX=prefix,
               PLATFORM_CELERY_CONCURRENCY="1")
    worker = _start("celery-worker", env, tmp_path / "celery.log")
    try:
        _wait_healthy(worker, env, tmp_path / "celery.log", seconds=120)
        assert f"platform@{os.uname().nodename}" in (tmp_path / "celery.log").read_text()
    finally:
        stop_process_group(worker, timeout=30)
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password=REDIS_PASSWORD or None)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def test_daemon_mode_is_healthy_once_it_heartbeats(tmp_path):
    """`daemon` alone (compose's daemon container): its healthcheck is `dagster-daemon liveness-check` on the
    instance, which fails before the first heartbeat and passes after."""
    env = _env(tmp_path, TMPDIR=str(_tmp(tmp_path, "daemon")))
    env.pop("PLATFORM_PROFILE", None)
    (tmp_path / "daemon" / "platform-mode").write_text("daemon")
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text((PROJECT_ROOT / "deploy" / "local" / "dagster.yaml").read_text())
    assert not _healthy(env)  # no heartbeat in this instance yet
    daemon = _start("daemon", env, tmp_path / "daemon.log")
    try:
        _wait_healthy(daemon, env, tmp_path / "daemon.log", seconds=120)
    finally:
        stop_process_group(daemon, timeout=30)
