"""The platform used through Dagit, the way a person does it, in a real headless Chromium.

UI actions covered (in this order, on one webserver + daemon over the demo platform):
1. open the global asset lineage, see every stage's group, expand all groups;
2. open each group's lineage and see every asset of the group as a node (expected list from the Definitions);
3. select an asset's node in its group's graph (`raw_merchants`: a cheap one, the suite's time is counted),
   click "Materialize selected", follow the "Launched run" toast to the run page and watch the run reach Success;
4. open the drift report asset's page, show its drift picture (metadata markdown), click the `report` link and
   land on that day's snapshot in the Evidently UI (started by our own command), which shows the asset's verdict;
5. open the model asset's page, see its MLflow run and model version as links to the MLflow UI, and the holdout
   charts (ROC, PR, calibration, feature importance);
6. open the drift report's and the model's Checks tabs: the day's `no_feature_drift` with its figures, and
   `fraud_model_not_due_for_retrain` as the retrain sensor (run by the daemon) reported it;
7. launch a run with dagster-graphql's DagsterGraphQLClient and find it on the Runs page.
Every step leaves a screenshot under test-artifacts/browser/.
"""

from __future__ import annotations

import base64
import re
import time
from collections import defaultdict

import dagster as dg
import pytest

from platform_assets.definitions import defs as load_defs

pytestmark = pytest.mark.browser

DRIFT_REPORT = "feature_drift_report"
MODEL = "fraud_model"
MATERIALIZED_FROM_THE_UI = "raw_merchants"
RUN_TIMEOUT_MS = 480_000  # an upper bound: ~30 s on an idle 2-core machine
CODE_LOCATION = "platform_assets"


def _display_name(key: dg.AssetKey) -> str:
    """The graph labels a node with the last part of its key (the seed reference/merchant_category_codes too)."""
    return key.path[-1]


def expected_groups() -> dict[str, list[str]]:
    """Group -> asset names, from the Definitions Dagit loads: new assets are expected without editing this test."""
    graph = load_defs().resolve_asset_graph()
    groups: dict[str, list[str]] = defaultdict(list)
    for key in graph.materializable_asset_keys:
        groups[graph.get(key).group_name].append(_display_name(key))
    return {group: sorted(names) for group, names in sorted(groups.items())}


def _group_of(name: str) -> str:
    return next(group for group, names in expected_groups().items() if name in names)


NODE_NAMES = "[class*=AssetNode_assetName], [class*=AssetNode_minimalName]"


def _node(page, name: str):
    """An asset's node in a lineage graph (not the link to an asset of another group)."""
    # A large group is drawn zoomed out, where Dagit renders minimal nodes (AssetNode_minimalName).
    return page.locator(NODE_NAMES).filter(has_text=re.compile(f"^{re.escape(name)}$"))


def _shows(text: str, name: str) -> bool:
    """Dagit middle-truncates long names in the graph ("int_customer_mer…ily_activity")."""
    text = text.strip()
    for ellipsis in ("\u2026", "..."):
        if ellipsis in text:
            left, _, right = text.partition(ellipsis)
            return len(left) + len(right) < len(name) and name.startswith(left) and name.endswith(right)
    return text == name


def _wait_for_nodes(page, names: list[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        texts = page.locator(NODE_NAMES).all_inner_texts()
        missing = [n for n in names if not any(_shows(t, n) for t in texts)]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not shown in the graph: {missing}; shown: {sorted(texts)}")
        page.wait_for_timeout(500)


def _wait_for_run_result(page) -> str:
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    status.wait_for(timeout=RUN_TIMEOUT_MS)
    return status.inner_text()


def test_lineage_graph_shows_every_group_and_asset(page, dagit, screenshot):
    groups = expected_groups()
    assert {"ingestion", "warehouse", "features", "training", "monitoring"} <= set(groups)

    page.goto(f"{dagit.url}/asset-groups")
    for group in groups:
        # Collapsed, each group is one node of the global graph.
        page.locator("svg").get_by_text(group, exact=True).first.wait_for()
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(1_500)  # the layout animates to its new size
    screenshot(page, "01-global-lineage-expanded")

    for group, names in groups.items():
        page.goto(f"{dagit.url}/locations/{CODE_LOCATION}/asset-groups/{group}/lineage")
        _wait_for_nodes(page, names)
        # Let the nodes' status (latest materialization, checks) load before the picture.
        page.wait_for_function("() => !document.body.innerText.includes('Loading')", timeout=20_000)
        screenshot(page, f"02-group-{group}")
        assert page.locator(NODE_NAMES).count() >= len(names)


def test_materialize_from_the_graph_and_watch_the_run_succeed(page, dagit, screenshot):
    from dagster_graphql import DagsterGraphQLClient

    asset = MATERIALIZED_FROM_THE_UI
    page.goto(f"{dagit.url}/locations/{CODE_LOCATION}/asset-groups/{_group_of(asset)}/lineage")
    _node(page, asset).first.click()
    materialize = page.get_by_role("button", name=re.compile("Materialize selected"))
    materialize.wait_for()
    screenshot(page, f"03-{asset}-selected")
    materialize.click()

    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))
    toast.wait_for()
    short_id = toast.inner_text().split()[-1]
    page.get_by_role("link", name="View", exact=True).click()
    page.wait_for_url(re.compile(rf"/runs/{short_id}[0-9a-f-]*"))
    run_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    assert run_id.startswith(short_id)

    result = _wait_for_run_result(page)
    if result == "Success":
        page.get_by_text("RUN_SUCCESS").first.wait_for()
    screenshot(page, "04-run-success")
    assert result == "Success", f"run {run_id} ended {result}; see 04-run-success.png and the daemon log"
    status = DagsterGraphQLClient("127.0.0.1", port_number=dagit.port).get_run_status(run_id)
    assert status == dg.DagsterRunStatus.SUCCESS
    assert page.get_by_text(asset).count() >= 1


def _show_markdown_pictures(page, row: str):
    """Click [Show Markdown] on a metadata row and return the dialog's pictures, once they have loaded."""
    page.locator("tr", has_text=row).get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog")
    pictures = dialog.locator("img[src^='data:image/png;base64,']")
    pictures.first.wait_for()
    for i in range(pictures.count()):
        src = pictures.nth(i).get_attribute("src")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
        assert pictures.nth(i).evaluate("img => img.complete && img.naturalWidth > 100"), f"{row} picture {i}"
    return dialog, pictures


def _metadata_value(page, key: str) -> str:
    """The value Dagit shows for metadata entry `key` of the latest materialization (a row: key, the
    materialization's time, value)."""
    rows = page.locator("tr", has_text=key)
    rows.first.wait_for()
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        if cells.first.inner_text().strip() == key:
            return cells.last.inner_text().strip()
    raise AssertionError(f"no metadata row {key!r}")


def test_drift_report_link_and_picture_from_the_asset_metadata(page, dagit, evidently_ui, screenshot):
    page.goto(f"{dagit.url}/assets/{DRIFT_REPORT}")
    dialog, pictures = _show_markdown_pictures(page, "drift_summary")
    assert pictures.count() == 1
    screenshot(page, "05-drift-summary-picture")
    dialog.get_by_role("button", name="Close").click()

    verdict = _metadata_value(page, "verdict")
    threshold = float(_metadata_value(page, "drift_share_threshold"))
    assert verdict in {"drift", "no_drift"}, verdict
    # The same verdict the instance recorded (what the retrain sensor reads).
    instance = dg.DagsterInstance.from_config(str(dagit.platform.dagster_home))
    recorded = instance.get_latest_materialization_event(dg.AssetKey(DRIFT_REPORT)).asset_materialization.metadata
    assert recorded["verdict"].value == verdict and recorded["drift_share_threshold"].value == threshold

    # The `report` link is the day's snapshot in the Evidently UI: a person clicks it and lands there.
    link = page.locator(f"a[href^='{evidently_ui}/projects/']").first
    href = link.get_attribute("href")
    assert href == recorded["report"].value and re.fullmatch(rf"{evidently_ui}/projects/[0-9a-f-]+/reports/[0-9a-f-]+",
                                                              href), href
    with page.context.expect_page() as opened:
        link.click()
    report = opened.value
    report.wait_for_load_state()
    assert report.url == href
    headline = "Dataset Drift is detected" if verdict == "drift" else "Dataset Drift is NOT detected"
    sentence = rf"^{headline}\. Dataset drift detection threshold is {re.escape(str(threshold))}$"
    report.get_by_text(re.compile(sentence)).first.wait_for(timeout=60_000)
    report.get_by_text("Share of Drifted Columns").first.wait_for()
    screenshot(report, "06-evidently-drift-report")
    # The UI's list of the project's reports: this snapshot, with the asset's verdict in its metadata.
    report.get_by_role("link", name="Reports").first.click()
    snapshot_id = href.rsplit("/", 1)[-1]
    row = report.locator("tr", has_text=snapshot_id)
    row.wait_for()
    assert re.search(rf'"verdict"\s*:\s*"{verdict}"', row.inner_text()), row.inner_text()
    screenshot(report, "06b-evidently-reports-list")
    report.close()


def test_model_charts_are_shown_on_the_model_asset(page, dagit, screenshot):
    page.goto(f"{dagit.url}/assets/{MODEL}")
    # The MLflow run and version are links to the MLflow UI's own pages (PLATFORM_MLFLOW_UI_URL, default make mlflow)
    run_link = page.locator("a[href*='/#/experiments/'][href*='/runs/']").first
    run_link.wait_for()
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/#/experiments/\d+/runs/[0-9a-f]{32}\?workflowType=machine_learning",
                        run_link.get_attribute("href")), run_link.get_attribute("href")
    version_link = page.locator("a[href*='/#/models/fraud_detector/versions/']").first
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/#/models/fraud_detector/versions/\d+\?workflowType=machine_learning",
                        version_link.get_attribute("href")), version_link.get_attribute("href")
    dialog, pictures = _show_markdown_pictures(page, "holdout_charts")
    assert pictures.count() == 4, "ROC, PR, calibration and feature importance"
    for title in ("roc_curve", "pr_curve", "calibration", "feature_importance"):
        assert dialog.get_by_text(title, exact=True).count() == 1, title
    screenshot(page, "07-model-holdout-charts")


def test_the_checks_tabs_show_the_drift_verdict_and_whether_the_model_is_due(page, dagit, screenshot):
    """The demo platform of the tests is a quiet world (`--scenario none`): the drift report's Checks tab shows the
    day's passed `no_feature_drift` with its figures, and the model's Checks tab shows the check the retrain sensor
    keeps, reported by the daemon's tick: not due. (The failing path, which names the failed check, partition and
    figures, is asserted on a drifted world through the instance: tests/e2e/test_end_to_end.py.)"""
    day = dagit.platform.last_day.isoformat()
    page.goto(f"{dagit.url}/assets/{DRIFT_REPORT}?view=checks&checkDetail=no_feature_drift")
    page.get_by_text(re.compile(r"^\d+/\d+ inputs drifted \(share ")).first.wait_for()
    assert page.get_by_text(day, exact=True).count() >= 1, "the check's partition"
    assert page.get_by_text("drift_share_threshold", exact=True).count() >= 1
    screenshot(page, "08-drift-report-checks")

    deadline = time.monotonic() + 240  # the sensor ticks every 60 s, once the daemon has loaded the code
    while True:
        page.goto(f"{dagit.url}/assets/{MODEL}?view=checks&checkDetail=fraud_model_not_due_for_retrain")
        page.get_by_text("fraud_model_not_due_for_retrain").first.wait_for()
        page.wait_for_timeout(2_000)
        if page.get_by_text(re.compile(r"^(not due|due for retrain|retrained): ")).count():
            break
        assert time.monotonic() < deadline, f"no due verdict on {MODEL}'s checks page"
        page.wait_for_timeout(10_000)
    assert page.get_by_text(re.compile(r"^not due: no retrain check")).count() == 1
    screenshot(page, "09-model-due-check")


def test_graphql_client_launches_a_run(page, dagit, screenshot):
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=dagit.port)
    run_id = client.submit_job_execution(
        "__ASSET_JOB", repository_location_name=CODE_LOCATION, asset_selection=[dg.AssetKey("raw_customers")],
        tags={"launched_by": "graphql-test"},
    )
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    status = client.get_run_status(run_id)
    while status not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(2)
        status = client.get_run_status(run_id)
    assert status == dg.DagsterRunStatus.SUCCESS

    page.goto(f"{dagit.url}/runs")
    page.get_by_role("link", name=run_id[:8]).first.wait_for()
    screenshot(page, "10-runs-list")
