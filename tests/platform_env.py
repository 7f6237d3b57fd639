"""The environment of a platform a test builds for itself: local profile, its own data dir, nothing inherited."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_assets.settings import PROJECT_ROOT, Settings, load_settings


def feature_repo_module(name: str = "fraud_features_under_test"):
    """feature_repo/fraud_features.py loaded as a fresh module under `name` (what `feast apply` reads), without
    putting feature_repo/ on sys.path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "feature_repo" / "fraud_features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def local_settings(mp: pytest.MonkeyPatch, data_dir: Path, **env: str) -> Settings:
    """Point the platform at `data_dir` with the local profile and return its settings. A developer's own
    landing dir or MLflow server must never leak into a test, so those variables are removed; `env` adds
    more (e.g. loop policy overrides). The variables stay set for as long as `mp` is active."""
    mp.setenv("PLATFORM_DATA_DIR", str(data_dir))
    mp.delenv("PLATFORM_LANDING_DIR", raising=False)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.setenv("PLATFORM_PROFILE", "local")
    for name, value in env.items():
        mp.setenv(name, value)
    return load_settings()


def run_demo(data_dir: Path, days: int, monitor_days: int = 3, **env: str) -> tuple[dict[str, str], object]:
    """`python -m platform_assets.tools.demo` into `data_dir`, with its own Dagster instance (our
    deploy/local/dagster.yaml) and nothing of the caller's platform settings: what a newcomer has after
    `make demo`, its last day yesterday (as `make demo`, so relative dates in the docs find their days).
    It monitors `monitor_days` days (the demo's own default, 14, costs a minute more and no test needs it).
    Returns (the environment it ran with, the finished process)."""
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    from platform_assets.settings import PROJECT_ROOT

    home = data_dir / "dagster"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "deploy" / "local" / "dagster.yaml").read_text())
    # MLflow's set_tracking_uri/set_registry_uri export MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI: an earlier world of
    # the same test process must not leak its registry into this one.
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PLATFORM_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    environment.update({"PLATFORM_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home), "PLATFORM_PROFILE": "local",
                        "DO_NOT_TRACK": "1", "MLFLOW_ENABLE_TELEMETRY": "false", "DAGSTER_DISABLE_TELEMETRY": "1",
                        **env})
    last_day = datetime.now(UTC).date() - timedelta(days=1)
    out = subprocess.run(
        [sys.executable, "-m", "platform_assets.tools.demo", "--days", str(days), "--end", last_day.isoformat(),
         "--customers", "1000", "--merchants", "120", "--transactions-per-day", "800", "--scenario", "none",
         "--monitor-days", str(monitor_days)],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False,
    )
    logs = sorted((data_dir / "logs").glob("demo-*.log"))
    log_tail = logs[-1].read_text()[-5000:] if logs else ""
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:] + log_tail
    return environment, out
