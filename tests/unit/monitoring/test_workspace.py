"""The Evidently workspace our monitoring writes, read back by Evidently's own `Workspace`."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from platform_assets.monitoring import workspace as ws
from platform_assets.monitoring.drift import drift_report

DAY = date(2026, 3, 10)
UI = "http://127.0.0.1:8001/"


@pytest.fixture(scope="module")
def reports():
    """A drifting and a quiet drift report of the same three columns (share 2/3 and 0, our threshold 0.2)."""
    rng = np.random.default_rng(3)
    n = 1_500
    reference = pd.DataFrame({c: rng.normal(0, 1, n) for c in ("a", "b", "c")})
    moved = pd.DataFrame({"a": rng.normal(1, 1, n), "b": rng.normal(1, 1, n), "c": rng.normal(0, 1, n)})
    quiet = pd.DataFrame({c: rng.normal(0, 1, n) for c in ("a", "b", "c")})
    kwargs = {"thresholds": {}, "share_threshold": 0.2}
    return drift_report(reference, moved, ["a", "b", "c"], **kwargs), drift_report(reference, quiet, ["a", "b", "c"],
                                                                                   **kwargs)


def test_one_snapshot_per_report_and_day_replaced_on_rematerialization(tmp_path, reports):
    from evidently.ui.workspace import Workspace

    drifting, quiet = reports
    assert (drifting.dataset_drift, quiet.dataset_drift) == (True, False)
    root = tmp_path / "evidently"
    url = ws.publish(root, UI, ws.FEATURE_DRIFT, DAY, drifting.snapshot, {"verdict": "drift"})
    sid = ws.snapshot_id(ws.FEATURE_DRIFT, DAY)
    assert url == f"http://127.0.0.1:8001/projects/{ws.PROJECT_ID}/reports/{sid}"

    # The same day again (a re-materialization, now quiet): the day's snapshot is replaced, the link unchanged.
    assert ws.publish(root, UI, ws.FEATURE_DRIFT, DAY, quiet.snapshot, {"verdict": "no_drift"}) == url
    ws.publish(root, UI, ws.PREDICTION_DRIFT, DAY, quiet.snapshot)
    ws.publish(root, UI, ws.FEATURE_DRIFT, date(2026, 3, 11), drifting.snapshot, {"verdict": "drift"})

    workspace = Workspace(str(root))
    [project] = workspace.list_projects()
    assert (project.id, project.name) == (ws.PROJECT_ID, ws.PROJECT_NAME)
    runs = workspace.list_runs(ws.PROJECT_ID)
    assert sorted(map(str, runs)) == sorted(str(ws.snapshot_id(r, d)) for r, d in [
        (ws.FEATURE_DRIFT, DAY), (ws.PREDICTION_DRIFT, DAY), (ws.FEATURE_DRIFT, date(2026, 3, 11))])
    stored = workspace.get_run(ws.PROJECT_ID, sid)
    assert stored.metadata["verdict"] == "no_drift" and stored.tags == [ws.FEATURE_DRIFT]
    assert stored.timestamp.date() == DAY and stored.name == f"feature_drift {DAY}"
    share = next(r for r in stored.metric_results.values() if hasattr(r, "share"))
    assert share.share.value == 0.0
    # Nothing is left beside the snapshots: no temporary file inside the workspace, none in the staging dir.
    assert sorted(p.name for p in (root / str(ws.PROJECT_ID)).iterdir()) == ["dashboard.json", "metadata.json",
                                                                              "snapshots"]
    assert not any((tmp_path / ".evidently-incoming").iterdir())


def test_the_dashboard_is_written_once_and_plots_our_figures(tmp_path, reports):
    from evidently.ui.workspace import Workspace

    root = tmp_path / "evidently"
    ws.ensure_project(root)
    dashboard = Workspace(str(root)).get_dashboard(ws.PROJECT_ID)
    titles = [p.title for p in dashboard.panels]
    assert titles == ["Share of drifted model inputs", "Drifted model inputs", "Score drift"]
    assert [tab.title for tab in dashboard.tabs] == ["Drift"] and dashboard.tabs[0].panels == [
        p.id for p in dashboard.panels]
    metrics = {p.title: (p.values[0].metric, p.values[0].tags, p.values[0].metric_labels) for p in dashboard.panels}
    assert metrics["Score drift"] == ("evidently:metric_v2:ValueDrift", [ws.PREDICTION_DRIFT],
                                      {"column": "fraud_score"})

    # A person's edit in the UI survives the next report: an existing dashboard is not rewritten.
    edited = dashboard.copy(update={"panels": dashboard.panels[:1]})
    Workspace(str(root)).save_dashboard(ws.PROJECT_ID, edited)
    ws.publish(root, UI, ws.FEATURE_DRIFT, DAY, reports[0].snapshot)
    assert [p.title for p in Workspace(str(root)).get_dashboard(ws.PROJECT_ID).panels] == titles[:1]


def test_retention_removes_a_reports_days_older_than_keep_days_only(tmp_path, reports):
    from datetime import timedelta

    from evidently.ui.workspace import Workspace

    root = tmp_path / "evidently"
    quiet = reports[1].snapshot
    days = [DAY - timedelta(days=back) for back in (40, 3, 2, 1, 0)]
    ws.publish(root, UI, ws.PREDICTION_DRIFT, days[0], quiet)  # another report: not this report's retention
    for day in days:
        ws.publish(root, UI, ws.FEATURE_DRIFT, day, quiet, keep_days=3)
    kept = {str(run) for run in Workspace(str(root)).list_runs(ws.PROJECT_ID)}
    assert kept == {str(ws.snapshot_id(ws.FEATURE_DRIFT, d)) for d in days[2:]} | {
        str(ws.snapshot_id(ws.PREDICTION_DRIFT, days[0]))}
