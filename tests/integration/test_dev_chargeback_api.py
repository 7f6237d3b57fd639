"""`make dev` starts the simulated chargeback API when the platform reads chargebacks from it (tools/dev.py), and
leaves it alone otherwise: the daily schedule's raw_chargebacks needs it as much as the demo did."""

from __future__ import annotations

import json
import urllib.request
from datetime import date

import pytest
from process_helpers import free_port

from platform_assets.settings import load_settings, write_sources_file
from platform_assets.simulator import SimulationConfig
from platform_assets.simulator.chargeback_api import stop_service, write_chargeback_api_data
from platform_assets.tools.dev import _start_simulated_chargeback_api

pytestmark = pytest.mark.integration
CONFIG = SimulationConfig(start_date=date(2026, 5, 1), days=3, n_customers=50, n_merchants=10,
                          transactions_per_day=100, fraud_rate=0.1, max_label_delay_days=1)


def test_the_simulated_api_starts_only_in_api_mode_with_its_data(tmp_path):
    port = free_port()
    env = {"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_CHARGEBACK_API_PORT": str(port)}
    assert _start_simulated_chargeback_api(load_settings(env)) is None  # files mode
    write_sources_file(tmp_path, {"chargebacks": "api"}, CONFIG.start_date)
    assert _start_simulated_chargeback_api(load_settings(env)) is None  # no data written yet
    settings = load_settings(env)
    write_chargeback_api_data(CONFIG, settings.sources_dir)
    process = _start_simulated_chargeback_api(settings)
    try:
        assert process is not None
        with urllib.request.urlopen(f"{settings.chargeback_api_url}/v1/chargebacks?limit=500", timeout=5) as answer:
            served = json.load(answer)["data"]
        expected = sum(1 for _ in settings.chargeback_api_data_path.open())
        assert len(served) == expected > 0
        # A second launcher finds the port taken and starts nothing.
        assert _start_simulated_chargeback_api(settings) is None
    finally:
        if process is not None:
            stop_service(process)
    assert process.poll() is not None
