"""The image's HEALTHCHECK: what the entrypoint's mode runs answers (deploy/entrypoint.sh writes the mode to
$TMPDIR/platform-mode): the webserver (no mode), the scoring service (`serve`), the Evidently UI, the gRPC code
server, the daemon's heartbeat, a Celery worker's ping, the velocity consumer's heartbeat file, MLflow or the Dask
scheduler. Exits non-zero (an exception) when it does not."""

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

tmp = Path(tempfile.gettempdir())
marker = tmp / "platform-mode"
mode = marker.read_text().strip() if marker.exists() else ""
if not mode and (tmp / "platform-serve").exists():  # images older than the mode file
    mode = "serve"
elif not mode and (tmp / "platform-evidently").exists():
    mode = "evidently"


def get(url: str) -> None:
    urllib.request.urlopen(url, timeout=4)


def run(*argv: str, **env: str) -> None:
    subprocess.run(argv, check=True, timeout=25, stdout=subprocess.DEVNULL, env={**os.environ, **env})


if mode == "serve":
    get(f"http://127.0.0.1:{os.environ.get('PLATFORM_SERVING_PORT', '8000')}/healthz")
elif mode == "evidently":
    get(f"http://127.0.0.1:{os.environ.get('PLATFORM_EVIDENTLY_PORT', '8001')}/")
elif mode == "code-server":
    run("dagster", "api", "grpc-health-check", "-p", os.environ.get("PLATFORM_CODE_SERVER_PORT", "4000"))
elif mode == "daemon":
    run("dagster-daemon", "liveness-check")
elif mode == "celery-worker":
    config = Path(os.environ.get("PLATFORM_HOME", "/opt/platform")) / "deploy" / "production"
    run("celery", "-A", "dagster_celery.app", "inspect", "ping", "-d", f"platform@{os.uname().nodename}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(config), os.environ.get("PYTHONPATH")])))
elif mode == "velocity-consumer":
    from platform_assets.lib.velocity_consumer import HEARTBEAT_FILE
    from platform_assets.settings import load_settings

    beat = load_settings().velocity_dir / HEARTBEAT_FILE
    assert time.time() - beat.stat().st_mtime < 60, f"{beat} is older than 60 s"
    json.loads(beat.read_text())
elif mode == "mlflow-server":
    get(f"http://127.0.0.1:{os.environ.get('PLATFORM_MLFLOW_PORT', '5000')}/health")
elif mode == "dask-scheduler":
    get(f"http://127.0.0.1:{os.environ.get('PLATFORM_DASK_DASHBOARD_PORT', '8787')}/health")
elif mode == "dask-worker":
    from distributed import Client

    with Client(os.environ["PLATFORM_DASK_SCHEDULER"], timeout=10) as client:
        names = {worker["name"] for worker in client.scheduler_info()["workers"].values()}
    assert os.uname().nodename in names, f"the scheduler does not list {os.uname().nodename}: {names}"
else:
    get(f"http://127.0.0.1:{os.environ.get('PLATFORM_WEBSERVER_PORT', '3000')}/server_info")
