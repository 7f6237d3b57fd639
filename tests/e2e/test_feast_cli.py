"""Feast's own CLI in feature_repo/ on the demo's world, with nothing exported, as a newcomer runs it after `make demo`.

`feature_store.yaml` names its stores under `${PLATFORM_DATA_DIR}`; with the variable unset the `feast` CLI must
find the project's data directory (`../data` seen from the repository, like dbt's profile), with it set that
directory. The default case runs in a copy of the repository's layout (`<tmp>/feature_repo` next to
`<tmp>/data`, the demo's data directory), never in this checkout's own data/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from process_helpers import free_port, stop_process_group

from platform_assets.settings import PROJECT_ROOT

FEAST = PROJECT_ROOT / ".venv" / "bin" / "feast"
FEATURE_VIEWS = ("customer_daily_features", "merchant_daily_features", "customer_merchant_features",
                 "customer_recent_transactions", "velocity_features",
                 "transaction_features")


def newcomer_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any platform or MLflow setting: what a shell has after `make demo`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PLATFORM_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "FEAST_"))}
    return {**env, "DO_NOT_TRACK": "1", **extra}


@pytest.fixture
def project_layout(demo_platform, tmp_path) -> Path:
    """`<tmp>/feature_repo` (the repository's files) beside `<tmp>/data` (the demo's data directory)."""
    repo = tmp_path / "feature_repo"
    repo.mkdir()
    for name in ("feature_store.yaml", "fraud_features.py"):
        shutil.copy(PROJECT_ROOT / "feature_repo" / name, repo / name)
    (tmp_path / "data").symlink_to(demo_platform.data_dir, target_is_directory=True)
    return repo


def feast(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run([str(FEAST), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
                         check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


@pytest.mark.parametrize("how", ["default data dir", "PLATFORM_DATA_DIR"])
def test_feast_lists_the_registry_from_feature_repo(how, demo_platform, project_layout):
    if how == "default data dir":
        cwd, env = project_layout, newcomer_env()
    else:
        cwd, env = PROJECT_ROOT / "feature_repo", newcomer_env(PLATFORM_DATA_DIR=str(demo_platform.data_dir))

    views = feast(["feature-views", "list"], cwd, env)
    rows = {line.split()[0]: line for line in views.splitlines()[1:] if line.strip()}
    assert set(rows) == set(FEATURE_VIEWS)
    assert "AVAILABLE_ONLINE" in rows["customer_daily_features"]  # materialized by the demo
    entities = feast(["entities", "list"], cwd, env)
    assert {line.split()[0] for line in entities.splitlines()[1:] if line.strip()} == {"customer", "merchant"}
    # Nothing was created where an unresolved ${PLATFORM_DATA_DIR} would have pointed.
    assert not any("PLATFORM_DATA_DIR" in p.name for p in cwd.iterdir())


def test_feast_ui_serves_the_demo_registry(project_layout, tmp_path):
    port = free_port()
    log = tmp_path / "feast-ui.log"
    server = subprocess.Popen([str(FEAST), "ui", "--host", "127.0.0.1", "--port", str(port)], cwd=project_layout,
                              env=newcomer_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    pytest.fail(f"feast ui exited ({server.returncode}):\n{log.read_text()[-4000:]}")
                try:
                    page = client.get("/")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"feast ui did not answer within 120 s:\n{log.read_text()[-4000:]}")
                    time.sleep(0.5)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "<title>Feast" in page.text  # the UI's own single-page app

            listed = client.get("/projects-list.json")
            assert listed.status_code == 200
            assert [p["id"] for p in listed.json()["projects"]] == ["fraud_platform"]
            projects = client.get("/api/v1/projects")
            assert projects.status_code == 200
            assert [p["spec"]["name"] for p in projects.json()["projects"]] == ["fraud_platform"]
            views = client.get("/api/v1/feature_views", params={"project": "fraud_platform"})
            assert views.status_code == 200
            assert {v["spec"]["name"] for v in views.json()["featureViews"]} == set(FEATURE_VIEWS)
    finally:
        stop_process_group(server)
