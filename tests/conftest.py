"""Shared fixtures. Integration tests run the real stack on a temporary data directory and Dagster instance."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from platform_env import local_settings

from platform_assets.settings import PROJECT_ROOT, Settings

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

# A small world that still has signal: ~800 transactions a day, 1% fraud, for 30 days of warm-up, ~2 weeks of
# training, a week of holdout, 21 days of label maturity; the drift starts 2 weeks before the end.
E2E_START = date(2026, 3, 1)
E2E_DAYS = 70
E2E_SCENARIO_START_DAY = 56


# Worlds that several test modules share: every test that uses one runs in the same xdist worker, so each world
# is built once per `make test`, not once per worker.
# test_end_to_end reads the clean and the drifted world side by side: both belong to one group.
SHARED_WORLDS = {"clean_platform": "clean_world", "drifted_platform": "clean_world", "demo_platform": "demo_world"}
LANES = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the groups into node-id suffixes
def pytest_collection_modifyitems(config, items):
    """Lanes follow the folders (`tests/unit`, `tests/integration`, `tests/e2e` get the marker of their name), and
    each test gets an xdist group: the shared world it reads, else its module (module-scoped fixtures such as the
    production profile's servers are then set up once); a test may set its own group (a closed-loop world)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(PROJECT_ROOT / "tests").parts
        if parts[0] in LANES:
            item.add_marker(getattr(pytest.mark, parts[0]))
        if item.get_closest_marker("xdist_group"):
            continue
        world = next((group for fixture, group in SHARED_WORLDS.items() if fixture in item.fixturenames), None)
        item.add_marker(pytest.mark.xdist_group(world or item.module.__name__))


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The definitions need dbt's manifest; build it once per session the way `make prepare` does."""
    manifest = PROJECT_ROOT / "dbt_project" / "target" / "manifest.json"
    if not manifest.exists():
        subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), "parse", "--profiles-dir", ".", "--quiet"],
            cwd=PROJECT_ROOT / "dbt_project",
            check=True,
        )
    return manifest


@dataclass
class PlatformUnderTest:
    settings: Settings
    instance: dg.DagsterInstance
    run: object  # platform_assets.tools.demo.PlatformRun
    first_day: date
    last_day: date

    def metadata(self, key: str) -> dict:
        event = self.instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None, f"{key} was never materialized"
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


# Customers of the stationary world who go quiet that many days before its end: the window features must drain.
IDLE_TAILS = (1, 6, 7, 8, 29, 30, 31)


def _platform(tmp_path_factory, scenario: str, idle_tails: tuple[int, ...] = ()) -> Iterator[PlatformUnderTest]:
    from platform_assets.simulator import SimulationConfig, write_landing_zone
    from platform_assets.tools.demo import materialize_platform

    data_dir = tmp_path_factory.mktemp(f"platform-{scenario}")
    with pytest.MonkeyPatch.context() as mp:
        settings = local_settings(mp, data_dir)
        config = SimulationConfig(
            start_date=E2E_START,
            days=E2E_DAYS,
            n_customers=1_000,
            n_merchants=120,
            transactions_per_day=800,
            scenario=scenario,
            scenario_start_day=E2E_SCENARIO_START_DAY,
            malformed_rate=0.002,
            idle_tails=idle_tails,
        )
        write_landing_zone(config, settings.landing_dir)
        (data_dir / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(data_dir / "dagster")) as instance:
            run = materialize_platform(settings, config.start_date, config.end_date, instance)
            yield PlatformUnderTest(settings, instance, run, config.start_date, config.end_date)


@pytest.fixture(scope="session")
def clean_platform(tmp_path_factory) -> Iterator[PlatformUnderTest]:
    """Shared by every module that reads the stationary world (built once per session)."""
    yield from _platform(tmp_path_factory, "none", IDLE_TAILS)


@pytest.fixture(scope="module")
def drifted_platform(tmp_path_factory) -> Iterator[PlatformUnderTest]:
    yield from _platform(tmp_path_factory, "amount_inflation")


@pytest.fixture
def day_range():
    def _range(start: date, days: int) -> list[date]:
        return [start + timedelta(days=i) for i in range(days)]

    return _range


@dataclass
class DemoPlatform:
    """A platform built by `python -m platform_assets.tools.demo` in a temporary data directory, with its own Dagster
    instance (our deploy/local/dagster.yaml in DAGSTER_HOME): what a newcomer has after `make demo`."""

    data_dir: Path
    dagster_home: Path
    env: dict[str, str]
    first_day: date
    last_day: date
    demo_output: str


@pytest.fixture(scope="session")
def demo_platform(tmp_path_factory) -> DemoPlatform:
    """Shared by the browser tests and the docs-command tests (which run after them and may change it)."""
    from platform_env import run_demo
    from process_helpers import free_port

    data_dir = tmp_path_factory.mktemp("demo-platform")
    # Its report links name an Evidently UI on a port of its own (tests/e2e/browser starts that UI).
    port = free_port()
    env, out = run_demo(data_dir, E2E_DAYS, PLATFORM_EVIDENTLY_PORT=str(port),
                        PLATFORM_EVIDENTLY_URL=f"http://127.0.0.1:{port}")
    last_day = datetime.now(UTC).date() - timedelta(days=1)
    home = data_dir / "dagster"
    return DemoPlatform(data_dir, home, env, last_day - timedelta(days=E2E_DAYS - 1), last_day, out.stdout)


@pytest.fixture
def webhook():
    """A local HTTP server (127.0.0.1) collecting the platform's webhook notifications: (url, received)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({**body, "headers": {"Idempotency-Key": self.headers.get("Idempotency-Key")}})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
