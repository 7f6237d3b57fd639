"""The starter notebook and the README's notebook snippet run as written against a materialized platform: the
notebook in a real Jupyter kernel, the snippet in a fresh Python process."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from platform_assets.resources.profile import build_resources
from platform_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e
NOTEBOOK = PROJECT_ROOT / "notebooks" / "feature_store_starter.ipynb"
EXECUTED = PROJECT_ROOT / "test-artifacts" / "notebook" / NOTEBOOK.name
REASON = re.compile(r"  reason: (\w+) = (\S+) \(contribution ([+-]\d+\.\d+)\)")


def _champion(platform):
    return build_resources(platform.settings)["mlflow_tracking"].champion_version()


def test_starter_notebook_runs_and_shows_what_it_promises(clean_platform, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # The kernel inherits this environment: it reads the test platform, not the developer's data.
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(clean_platform.settings.data_dir))
    monkeypatch.setenv("PLATFORM_PROFILE", "local")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(PROJECT_ROOT)}}).execute()
    EXECUTED.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, EXECUTED)  # what a reader of the notebook sees, plot included
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    printed = "".join(output.get("text", "") for output in outputs if output.get("output_type") == "stream")
    champion = _champion(clean_platform)
    service = champion.tags["feature_service"]

    assert f"data dir: {clean_platform.settings.data_dir}" in printed
    assert f"the champion reads feature service: {service}" in printed
    assert ("feature views: ['customer_daily_features', 'customer_merchant_features', 'customer_recent_transactions', "
            "'merchant_daily_features']" in printed)
    assert "on-demand feature views: ['transaction_features', 'velocity_features']" in printed
    assert "feature service fraud_detector_v2: ['customer_daily_features', 'merchant_daily_features', " \
           "'transaction_features']" in printed
    assert "feature service fraud_detector_v3: ['customer_daily_features', 'merchant_daily_features', " \
           "'transaction_features', 'velocity_features']" in printed
    assert re.search(r"cust_txn_count_7d = \d+", printed), printed
    assert re.search(r"amount_to_cust_avg_30d = \d+\.\d+", printed), printed
    assert "stale values: 0" in printed
    rows = int(re.search(r"historical frame: (\d+) rows x (\d+) columns", printed).group(1))
    assert rows > 1000
    plotted = re.search(r"plotted amount_to_cust_avg_30d: (\d+) values, median ([\d.]+) -> (\S+)", printed)
    assert plotted and int(plotted.group(1)) > 0.8 * rows and os.path.getsize(plotted.group(3)) > 5_000
    # The distribution is shown inline, not only saved: a PNG in the notebook's own outputs.
    images = [output["data"]["image/png"] for output in outputs
              if output.get("output_type") == "display_data" and "image/png" in output.get("data", {})]
    assert len(images) == 1 and len(images[0]) > 5_000

    # The scored example: the champion's answer, from fresh features, with its three reasons.
    scored = re.search(r"fraud_detector v(\d+) \((\w+)\): score (\d\.\d+) -> (approve|review), "
                       r"stale features: (\d+)", printed)
    assert scored, printed
    assert scored.group(1) == str(champion.version) and scored.group(2) == service
    assert 0.0 <= float(scored.group(3)) <= 1.0 and scored.group(5) == "0"
    reasons = REASON.findall(printed)
    assert len(reasons) == 3 and len({feature for feature, _, _ in reasons}) == 3
    assert all(float(contribution) != 0.0 for _, _, contribution in reasons)


def _readme_snippet() -> str:
    """The README's notebook block (the ```python block that starts from `champion_feature_service`)."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    blocks = [block for block in blocks if "champion_feature_service" in block]
    assert len(blocks) == 1, "the README's notebook snippet is gone or duplicated"
    return blocks[0]


def test_readme_notebook_snippet_runs_as_written(clean_platform):
    """Executed unchanged, in a process that only has PLATFORM_DATA_DIR set, as the README says."""
    env = {**os.environ, "PLATFORM_DATA_DIR": str(clean_platform.settings.data_dir), "PLATFORM_PROFILE": "local"}
    out = subprocess.run([sys.executable, "-c", _readme_snippet()], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout
    service = _champion(clean_platform).tags["feature_service"]
    assert re.fullmatch(rf"{service} \[\d+\]", lines[0]), lines[0]  # the champion's service, online values
    answer = re.fullmatch(r"(\S+) (approve|review) \{'feature': '(\w+)', 'value': .*, 'contribution': (\S+)\}",
                          lines[1])
    assert answer, lines[1]
    assert 0.0 <= float(answer.group(1)) <= 1.0 and float(answer.group(4)) != 0.0
