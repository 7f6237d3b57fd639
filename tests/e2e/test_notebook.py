"""The starter notebook runs top to bottom against a materialized platform, in a real Jupyter kernel."""

from __future__ import annotations

import os
import re

import pytest

from platform_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e
NOTEBOOK = PROJECT_ROOT / "notebooks" / "feature_store_starter.ipynb"


def test_starter_notebook_runs_and_prints_what_it_promises(clean_platform, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # The kernel inherits this environment: it reads the test platform, not the developer's data.
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(clean_platform.settings.data_dir))
    monkeypatch.setenv("PLATFORM_PROFILE", "local")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(PROJECT_ROOT)}}).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", []) if output.get("output_type") == "stream"
    )
    assert f"data dir: {clean_platform.settings.data_dir}" in printed
    assert ("feature views: ['customer_daily_features', 'customer_merchant_features', 'merchant_daily_features']"
            in printed)
    assert "on-demand feature views: ['transaction_features']" in printed
    assert "feature service fraud_detector_v2: ['customer_daily_features', 'merchant_daily_features', " \
           "'transaction_features']" in printed
    assert re.search(r"cust_txn_count_7d = \d+", printed), printed
    assert re.search(r"amount_to_cust_avg_30d = \d+\.\d+", printed), printed
    assert "stale values: 0" in printed
    rows = int(re.search(r"historical frame: (\d+) rows x (\d+) columns", printed).group(1))
    assert rows > 1000
    plotted = re.search(r"plotted amount_to_cust_avg_30d: (\d+) values, median ([\d.]+) -> (\S+)", printed)
    assert plotted and int(plotted.group(1)) > 0.8 * rows and os.path.getsize(plotted.group(3)) > 5_000
