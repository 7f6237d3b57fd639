"""The environment of a platform a test builds for itself: local profile, its own data dir, nothing inherited."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_assets.settings import Settings, load_settings


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
