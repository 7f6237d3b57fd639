"""The MLflow UI that `make mlflow` serves, over the platform's own tracking store, reached through the links Dagit
shows on `fraud_model`: the API behind each linked page answers for that run and version, the served UI bundle
declares the routes we link, and a headless Chromium opens them in MLflow's machine-learning view."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from urllib.parse import quote, urlsplit

import pytest
from process_helpers import free_port, stop_process_group

from platform_assets.lib import names
from platform_assets.settings import PROJECT_ROOT

# `make mlflow` takes 15-70 s to answer on a busy 2-core machine.
pytestmark = pytest.mark.slow
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
RUN_ROUTE = re.compile(r"/experiments/(\d+)/runs/(\w+)\?workflowType=machine_learning")
VERSION_ROUTE = re.compile(r"/models/([^/]+)/versions/(\d+)\?workflowType=machine_learning")


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else body


@pytest.fixture(scope="module")
def mlflow_ui(clean_platform) -> str:
    """`make mlflow` on a free loopback port over the clean world's store: its base URL."""
    port = free_port()
    env = {**os.environ, "PLATFORM_DATA_DIR": str(clean_platform.settings.data_dir)}
    server = subprocess.Popen(["make", "--no-print-directory", "mlflow", f"MLFLOW_PORT={port}"], cwd=PROJECT_ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, "make mlflow exited"
            try:
                _get(f"{base}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "the MLflow UI did not answer on 127.0.0.1"
                time.sleep(0.5)
        yield base
    finally:
        stop_process_group(server, timeout=15)


def _linked(clean_platform, mlflow_ui: str) -> dict:
    """The links on the newest `fraud_model` materialization, parsed, and the same pages on the test's server."""
    meta = clean_platform.metadata("fraud_model")
    base = clean_platform.settings.mlflow_ui_url
    run, version = urlsplit(meta["mlflow_run"]), urlsplit(meta["mlflow_model_version"])
    assert meta["mlflow_run"].startswith(f"{base}/#/") and meta["mlflow_model_version"].startswith(f"{base}/#/")
    experiment_id, run_id = RUN_ROUTE.fullmatch(run.fragment).groups()
    model_name, number = VERSION_ROUTE.fullmatch(version.fragment).groups()
    return {"meta": meta, "experiment_id": experiment_id, "run_id": run_id, "model_name": model_name,
            "version": number, "run_page": f"{mlflow_ui}/#{run.fragment}",
            "version_page": f"{mlflow_ui}/#{version.fragment}"}


def test_dagit_links_name_the_run_and_version_the_mlflow_ui_serves(clean_platform, mlflow_ui):
    linked = _linked(clean_platform, mlflow_ui)
    meta = linked["meta"]
    assert linked["run_id"] == meta["mlflow_run_id"] and linked["version"] == meta["model_version"]
    # The hash routes are resolved in the browser; these are the API calls behind the two pages.
    run = _get(f"{mlflow_ui}/api/2.0/mlflow/runs/get?run_id={linked['run_id']}")["run"]
    assert run["info"]["experiment_id"] == linked["experiment_id"] and run["info"]["status"] == "FINISHED"
    snapshot = meta[names.TAG_TRAINING_SET_ID]
    contexts = {next(t["value"] for t in i["tags"] if t["key"] == "mlflow.data.context"): i["dataset"]["name"]
                for i in run["inputs"]["dataset_inputs"]}
    assert contexts == {"train": snapshot, "holdout": snapshot}
    experiment = _get(f"{mlflow_ui}/api/2.0/mlflow/experiments/get?experiment_id={linked['experiment_id']}")
    tags = {t["key"]: t["value"] for t in experiment["experiment"]["tags"]}
    assert tags[names.MLFLOW_EXPERIMENT_KIND_TAG] == "custom_model_development"
    version = _get(f"{mlflow_ui}/api/2.0/mlflow/model-versions/get?name={linked['model_name']}"
                   f"&version={linked['version']}")["model_version"]
    assert version["run_id"] == linked["run_id"] and f"training set `{snapshot}`" in version["description"]
    # The UI this server ships declares the routes and the view parameter the links use.
    index = _get(f"{mlflow_ui}/")
    bundle = _get(mlflow_ui + "/" + re.search(r'src="\.?/?(static-files/static/js/main\.[0-9a-f]+\.js)"',
                                               index).group(1))
    for declared in ('"/experiments/:experimentId/runs/:runUuid"', '"/models/:modelName/versions/:version"',
                     '"workflowType"', 'MACHINE_LEARNING="machine_learning"'):
        assert declared in bundle, declared
    assert quote(clean_platform.settings.model_name, safe="") == linked["model_name"]


@pytest.mark.browser
def test_the_linked_pages_open_in_the_machine_learning_view(clean_platform, mlflow_ui, browser):
    """What a person clicking the links in Dagit sees: the run with its training set, the version's description,
    in MLflow's machine-learning view (a fresh browser otherwise opens MLflow 3.17 in its GenAI view)."""
    linked = _linked(clean_platform, mlflow_ui)
    meta = linked["meta"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(linked["run_page"])
        page.get_by_text("Model registry").first.wait_for()  # the machine-learning sidebar; GenAI has none
        page.get_by_text(meta[names.TAG_TRAINING_SET_ID]).first.wait_for()  # the run's input datasets
        page.get_by_text(linked["run_id"]).first.wait_for()
        assert page.get_by_text("Observability").count() == 0  # a GenAI-view sidebar section
        page.screenshot(path=str(ARTIFACTS / "mlflow-run.png"))
        page.goto(linked["version_page"])
        page.get_by_text(f"Version {linked['version']}").first.wait_for()
        page.get_by_text(meta["promotion_reason"], exact=False).first.wait_for()  # the version's description
        page.screenshot(path=str(ARTIFACTS / "mlflow-model-version.png"))
    finally:
        context.close()
