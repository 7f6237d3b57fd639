"""Dagit for real: the webserver and the daemon on a free loopback port over the demo platform, and a headless
Chromium driven by Playwright. Screenshots and the servers' logs go to test-artifacts/browser/."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from process_helpers import stop_process_group

from platform_assets.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
BIN = PROJECT_ROOT / ".venv" / "bin"
CODE_LOCATION = "platform_assets"


@dataclass
class Dagit:
    url: str
    port: int
    platform: object  # tests.conftest.DemoPlatform


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # A session of its own, so stopping it also stops the code servers and run workers it started.
    return subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_code_location(url: str, webserver: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """The webserver answers before it has loaded our code location: wait for both."""
    query = b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if webserver.poll() is not None:
            pytest.fail(f"dagster-webserver exited ({webserver.returncode}):\n{log.read_text()[-3000:]}")
        try:
            request = urllib.request.Request(f"{url}/graphql", data=query,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read().decode()
            if re.search(rf'"name":\s*"{CODE_LOCATION}",\s*"loadStatus":\s*"LOADED"', body):
                return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"the webserver did not load {CODE_LOCATION} in {timeout:.0f}s:\n{log.read_text()[-3000:]}")


# Module scope: the servers stop as soon as the browser tests are done, not at the end of the session.
@pytest.fixture(scope="module")
def dagit(demo_platform) -> Iterator[Dagit]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(demo_platform.env)
    web_log, daemon_log = ARTIFACTS / "dagster-webserver.log", ARTIFACTS / "dagster-daemon.log"
    webserver = _start([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                       env, web_log)
    daemon = _start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, daemon_log)
    try:
        _wait_for_code_location(url, webserver, web_log)
        yield Dagit(url, port, demo_platform)
    finally:
        stop_process_group(webserver)
        stop_process_group(daemon)


@pytest.fixture(scope="module")
def evidently_ui(demo_platform) -> Iterator[str]:
    """The Evidently UI over the demo platform's workspace, started by our command (`make evidently`) on the port
    the demo's report links name; its URL."""
    from evidently_ui import start_evidently_ui

    process = start_evidently_ui(dict(demo_platform.env), ARTIFACTS / "evidently-ui.log")
    try:
        yield demo_platform.env["PLATFORM_EVIDENTLY_URL"]
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium); .ci/run does"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, dagit):
    # tall enough that the warehouse group (seed, staging, intermediate, marts) fits when zoomed to fit
    context = browser.new_context(viewport={"width": 1800, "height": 3200})
    context.set_default_timeout(30_000)
    page = context.new_page()
    # Dagit greets a new instance with a "Join the Dagster community" dialog over every page until someone
    # answers it; the answer is kept in DAGSTER_HOME/.nux. Answer it the way a person does.
    if not (dagit.platform.dagster_home / ".nux" / "nux.yaml").exists():
        page.goto(f"{dagit.url}/runs")
        page.get_by_role("button", name="Skip").click()
        page.get_by_text("Join the Dagster community").wait_for(state="hidden")
    yield page
    context.close()


@pytest.fixture
def screenshot():
    def _take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return _take


@pytest.fixture(scope="session", autouse=True)
def _clean_artifacts():
    # Every xdist worker that runs a browser module runs this, at about the same time: another worker's rmtree or
    # mkdir may come first (a FileExistsError here errored both MLflow UI tests in a clean-clone run).
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
