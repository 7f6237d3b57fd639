"""The Evidently UI as `make evidently` starts it (python -m platform_assets.monitoring.workspace), for tests."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from process_helpers import stop_process_group

from platform_assets.settings import PROJECT_ROOT


def start_evidently_ui(env: dict[str, str], log: Path, timeout: float = 120) -> subprocess.Popen:
    """Our command, in a session of its own (stop it with process_helpers.stop_process_group), on the host and
    port `env` sets (PLATFORM_EVIDENTLY_HOST/PORT); returns once the UI answers /api/version."""
    port = env["PLATFORM_EVIDENTLY_PORT"]
    log.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "platform_assets.monitoring.workspace"], cwd=PROJECT_ROOT,
                               env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"evidently ui exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.5)
    stop_process_group(process)
    pytest.fail(f"evidently ui did not answer on port {port} in {timeout:.0f}s:\n{log.read_text()[-3000:]}")
