"""The Evidently UI (`make evidently`, our command) over a workspace our monitoring code wrote: the page a report
link in Dagit points at answers, and the UI's own API shows the report with the verdict and share we computed,
on the day's snapshot, replaced in place when the day is published again, and plotted by the dashboard."""

from __future__ import annotations

import os
import re
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest
import requests
from evidently_ui import start_evidently_ui
from process_helpers import free_port, stop_process_group

from platform_assets.lib.predictions import SCORE
from platform_assets.monitoring import workspace as ws
from platform_assets.monitoring.drift import drift_report

pytestmark = pytest.mark.slow

DAYS = (date(2026, 3, 9), date(2026, 3, 10))
THRESHOLD = 0.2
HEADLINE = re.compile(r"Dataset Drift is (NOT )?detected\. Dataset drift detection threshold is ([0-9.]+)")


def _frames(rng, shift: float, n: int = 1_500) -> pd.DataFrame:
    return pd.DataFrame({"amount": rng.normal(shift, 1, n), "hour": rng.normal(0, 1, n), "age": rng.normal(0, 1, n),
                         SCORE: rng.beta(1, 30 - 20 * shift, n)})


@pytest.fixture(scope="module")
def reports():
    """Day 1 drifts (amount and the score moved), day 2 is quiet: (feature, prediction) summaries per day."""
    rng = np.random.default_rng(11)
    reference = _frames(rng, 0.0)
    out = {}
    for day, shift in zip(DAYS, (1.0, 0.0), strict=True):
        current = _frames(rng, shift)
        out[day] = (drift_report(reference, current, ["amount", "hour", "age"], thresholds={},
                                 share_threshold=THRESHOLD),
                    drift_report(reference, current, [SCORE]))
    assert [out[d][0].dataset_drift for d in DAYS] == [True, False]
    return out


@pytest.fixture(scope="module")
def ui(tmp_path_factory, reports):
    data_dir = tmp_path_factory.mktemp("evidently-ui")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PLATFORM_DATA_DIR": str(data_dir), "PLATFORM_EVIDENTLY_HOST": "127.0.0.1",
           "PLATFORM_EVIDENTLY_PORT": str(port), "PLATFORM_EVIDENTLY_URL": url, "DO_NOT_TRACK": "1"}
    links = {}
    for day, (features, prediction) in reports.items():
        verdict = "drift" if features.dataset_drift else "no_drift"
        links[day] = ws.publish(data_dir / "evidently", url, ws.FEATURE_DRIFT, day, features.snapshot,
                                {"verdict": verdict})
        ws.publish(data_dir / "evidently", url, ws.PREDICTION_DRIFT, day, prediction.snapshot)
    process = start_evidently_ui(env, data_dir / "evidently-ui.log")
    try:
        yield url, data_dir / "evidently", links
    finally:
        stop_process_group(process)


def _headline(api: str, snapshot_id) -> tuple[bool, float]:
    body = requests.get(f"{api}/{snapshot_id}/data", timeout=30).text
    found = HEADLINE.search(body)
    assert found, body[:2000]
    return found[1] is None, float(found[2])


def test_the_linked_page_and_the_uis_api_show_our_verdict(ui, reports):
    url, _, links = ui
    api = f"{url}/api/projects/{ws.PROJECT_ID}"
    listed = {r["id"]: r for r in requests.get(f"{api}/reports", timeout=30).json()}
    assert len(listed) == 4  # two reports, two days
    for day in DAYS:
        features = reports[day][0]
        page = requests.get(links[day], timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "<div id=\"root\">" in page.text  # the UI's single-page app, which routes /projects/:id/reports/:id
        sid = links[day].rsplit("/", 1)[-1]
        assert listed[sid]["metadata"]["verdict"] == ("drift" if features.dataset_drift else "no_drift")
        assert listed[sid]["timestamp"].startswith(day.isoformat())
        assert _headline(api, sid) == (features.dataset_drift, THRESHOLD)


def test_republishing_a_day_replaces_it_in_the_running_ui(ui, reports):
    url, root, links = ui
    api = f"{url}/api/projects/{ws.PROJECT_ID}"
    day = DAYS[0]
    sid = links[day].rsplit("/", 1)[-1]
    assert _headline(api, sid) == (True, THRESHOLD)
    quiet = reports[DAYS[1]][0]
    assert ws.publish(root, url, ws.FEATURE_DRIFT, day, quiet.snapshot, {"verdict": "no_drift"}) == links[day]
    deadline = time.monotonic() + 30
    while _headline(api, sid)[0] and time.monotonic() < deadline:
        time.sleep(0.5)  # the UI's file watcher reloads the replaced file
    assert _headline(api, sid) == (False, THRESHOLD)
    listed = requests.get(f"{api}/reports", timeout=30).json()
    assert len(listed) == 4 and {r["id"]: r for r in listed}[sid]["metadata"]["verdict"] == "no_drift"
    # Put day 1 back for the dashboard test.
    ws.publish(root, url, ws.FEATURE_DRIFT, day, reports[day][0].snapshot, {"verdict": "drift"})
    deadline = time.monotonic() + 30
    while not _headline(api, sid)[0] and time.monotonic() < deadline:
        time.sleep(0.5)


def test_the_dashboard_plots_our_figures_day_by_day(ui, reports):
    url, _, _ = ui
    dashboard = requests.get(f"{url}/api/v2/dashboards/{ws.PROJECT_ID}", timeout=30).json()
    panels = {p["title"]: p for p in dashboard["panels"]}
    assert set(panels) == {"Share of drifted model inputs", "Drifted model inputs", "Score drift"}

    def series(title: str) -> list[float]:
        filters = [{k: v[k] for k in ("tags", "metadata", "metric", "metric_labels")} for v in panels[title]["values"]]
        response = requests.post(f"{url}/api/v2/snapshots/{ws.PROJECT_ID}/data_series_batch",
                                 json={"series_filter": filters}, timeout=30)
        response.raise_for_status()
        body = response.json()
        days = [s["timestamp"][:10] for s in body["sources"]]
        assert days == [d.isoformat() for d in DAYS], body
        # One series per panel value that has points: the first value's (the served-traffic line of the score
        # panel has no snapshot here).
        [first] = [one for one in body["series"] if one["filter_index"] == 0]
        return first["values"]

    assert series("Share of drifted model inputs") == pytest.approx([reports[d][0].drift_share for d in DAYS])
    assert series("Drifted model inputs") == [len(reports[d][0].drifted_columns) for d in DAYS]
    assert series("Score drift") == pytest.approx([reports[d][1].column_scores[SCORE] for d in DAYS])
