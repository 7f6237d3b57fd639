"""The whole graph, materialized on the real stack, judged by its outcomes.

Two worlds are simulated: a stationary one (`none`) and one whose amounts jump 60% two weeks before the end
(`amount_inflation`). Both run ingestion -> dbt -> Feast -> XGBoost/MLflow -> Evidently through Dagster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from platform_assets.automation.sensors import retrain_on_drift
from platform_assets.definitions import build_definitions, build_resources
from platform_assets.lib import names
from platform_assets.lib.exports import query
from platform_assets.lib.training_sets import TrainingSetManifest
from platform_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def _warehouse(platform) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(platform.settings.warehouse_path), read_only=True)


def test_every_asset_materialized(clean_platform):
    assert clean_platform.run.success
    defs = build_definitions(clean_platform.settings)
    live = {names.SERVED_PREDICTIONS, names.SERVED_TRAFFIC_REPORT}  # need the scoring service's traffic
    for key in defs.resolve_asset_graph().materializable_asset_keys - live:
        assert clean_platform.instance.get_latest_materialization_event(key) is not None, key


def test_ingestion_quarantines_bad_rows_and_keeps_good_ones(clean_platform):
    meta = clean_platform.metadata("raw_transactions")
    assert meta["rows_quarantined"] > 0, "the simulator injects malformed rows; none were caught"
    assert meta["rows_read"] == meta["dagster/row_count"] + meta["rows_quarantined"]
    with _warehouse(clean_platform) as con:
        raw = con.execute("SELECT count(*), count(DISTINCT transaction_id) FROM raw.transactions").fetchone()
        quarantined = con.execute("SELECT count(*) FROM raw.quarantine WHERE source = 'transactions'").fetchone()[0]
        days = con.execute("SELECT count(DISTINCT partition_date) FROM raw.transactions").fetchone()[0]
    assert raw[0] == raw[1] == meta["dagster/row_count"]
    assert quarantined == meta["rows_quarantined"]
    assert days == (clean_platform.last_day - clean_platform.first_day).days + 1


def test_marts_reconcile_with_raw(clean_platform):
    exports = clean_platform.settings.exports_dir
    with _warehouse(clean_platform) as con:
        raw_tx = con.execute("SELECT count(*) FROM raw.transactions").fetchone()[0]
        raw_customers = con.execute("SELECT count(*) FROM raw.customers").fetchone()[0]
        raw_customer_days = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT customer_id, CAST(event_ts AS DATE) FROM raw.transactions)"
        ).fetchone()[0]
        raw_fraud = con.execute(
            "SELECT count(DISTINCT c.transaction_id) FROM raw.chargebacks c "
            "JOIN raw.transactions t USING (transaction_id) WHERE c.reason = 'fraud'"
        ).fetchone()[0]
    counts = query(
        exports,
        "SELECT (SELECT count(*) FROM {tx}) AS tx, (SELECT count(*) FROM {lab}) AS lab, "
        "(SELECT sum(is_fraud) FROM {lab}) AS fraud, (SELECT count(*) FROM {cust}) AS cust, "
        "(SELECT count(*) FROM {cdf} WHERE cust_txn_count_1d > 0) AS cust_days",
        tx="fct_transactions", lab="fct_transaction_labels", cust="dim_customers", cdf="fct_customer_daily_features",
    ).iloc[0]
    assert counts.tx == raw_tx and counts.lab == raw_tx
    assert clean_platform.metadata("fct_transactions")["dagster/row_count"] == raw_tx
    assert counts.fraud == raw_fraud > 0
    assert counts.cust == raw_customers
    # the customer mart has a row per day from the first activity on; those with a transaction are the active days
    assert counts.cust_days == raw_customer_days


def test_online_features_equal_latest_mart_row(clean_platform):
    resources = build_resources(clean_platform.settings)
    store = resources["feast"].store()
    latest = query(
        clean_platform.settings.exports_dir,
        "SELECT * FROM {cdf} ORDER BY event_timestamp DESC, cust_txn_count_7d DESC, customer_id LIMIT 1",
        cdf="fct_customer_daily_features",
    ).iloc[0]
    view = store.get_feature_view("customer_daily_features")
    names = [f.name for f in view.features]
    online = store.get_online_features(
        features=[f"customer_daily_features:{n}" for n in names],
        entity_rows=[{"customer_id": latest.customer_id}],
    ).to_dict()
    for name in names:
        assert online[name][0] == pytest.approx(latest[name]), name


def test_notebook_entry_points_serve_features_and_the_champion(clean_platform):
    from platform_assets.tools.notebook import champion_model, feature_store

    store = feature_store(clean_platform.settings)
    row = query(clean_platform.settings.exports_dir, "SELECT * FROM {tx} LIMIT 1", tx="fct_transactions").iloc[0]
    vector = store.get_online_features(
        features=store.get_feature_service("fraud_detector_v1"),
        entity_rows=[{"customer_id": row.customer_id, "merchant_id": row.merchant_id}],
    ).to_dict()
    assert {"cust_txn_count_7d", "merch_txn_count_7d"} <= set(vector)
    model = champion_model(clean_platform.settings)
    assert "amount" in model.get_booster().feature_names


def test_training_set_is_point_in_time_and_matured(clean_platform):
    manifest = TrainingSetManifest.read(clean_platform.settings.data_dir / "training_sets" / "latest.json")
    frame = pd.read_parquet(manifest.path)
    assert len(frame) == manifest.rows and frame["transaction_id"].is_unique
    # No row younger than the label-maturity window (21 days) before the as-of time.
    assert frame["event_timestamp"].max() < pd.Timestamp(manifest.as_of) - pd.Timedelta(days=21)
    # Spot-check the point-in-time join: each row carries the customer's figures of the day before, never its own.
    marts = query(clean_platform.settings.exports_dir, "SELECT * FROM {cdf}", cdf="fct_customer_daily_features")
    row = frame.dropna(subset=["cust_txn_count_7d"]).iloc[len(frame) // 2]
    visible = marts[(marts.customer_id == row.customer_id) & (marts.event_timestamp <= row.event_timestamp)]
    expected = visible.sort_values("event_timestamp").iloc[-1]
    assert expected.event_timestamp.date() <= row.event_timestamp.date()
    assert row.cust_txn_count_7d == expected.cust_txn_count_7d


def test_champion_loads_from_registry_and_scores(clean_platform):
    resources = build_resources(clean_platform.settings)
    mlflow_resource = resources["mlflow_tracking"]
    model = mlflow_resource.load_version(mlflow_resource.champion_version().version)
    manifest = TrainingSetManifest.read(clean_platform.settings.data_dir / "training_sets" / "latest.json")
    holdout = pd.read_parquet(manifest.path).query("split == 'holdout'")
    scores = model.predict_proba(holdout[manifest.feature_columns])[:, 1]
    assert np.all((scores >= 0) & (scores <= 1))
    from sklearn.metrics import average_precision_score

    base_rate = holdout["is_fraud"].mean()
    assert average_precision_score(holdout["is_fraud"], scores) > 5 * base_rate
    meta = clean_platform.metadata("fraud_model")
    assert meta["alias"] == "champion" and meta["holdout_pr_auc"] > 5 * base_rate
    client = mlflow_resource.client()
    version = client.get_model_version_by_alias(mlflow_resource.model_name, "champion")
    assert version.tags["training_set_id"] == manifest.snapshot_id


def test_mlflow_shows_a_machine_learning_experiment_its_datasets_and_descriptions(clean_platform):
    """What a data scientist opening MLflow expects: a machine-learning experiment (not GenAI), the training set
    among the run's input datasets, and a registered model and versions that say what they are."""
    mlflow_resource = build_resources(clean_platform.settings)["mlflow_tracking"]
    client = mlflow_resource.client()
    manifest = TrainingSetManifest.read(clean_platform.settings.data_dir / "training_sets" / "latest.json")
    meta = clean_platform.metadata("fraud_model")
    run = client.get_run(meta["mlflow_run_id"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == clean_platform.settings.mlflow_experiment
    assert experiment.tags[names.MLFLOW_EXPERIMENT_KIND_TAG] == "custom_model_development"

    inputs = {{t.key: t.value for t in i.tags}["mlflow.data.context"]: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "holdout"}
    for split, rows, positives in (("train", manifest.rows - manifest.holdout_rows,
                                    manifest.positives - manifest.holdout_positives),
                                   ("holdout", manifest.holdout_rows, manifest.holdout_positives)):
        dataset, tags = inputs[split].dataset, {t.key: t.value for t in inputs[split].tags}
        assert dataset.name == manifest.snapshot_id and dataset.source_type == "local"
        assert json.loads(dataset.source)["uri"] == manifest.path
        columns = {c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
        assert {*manifest.feature_columns, manifest.label_column, "split"} <= columns
        assert (int(tags["rows"]), int(tags["positives"])) == (rows, positives)
        assert tags["content_hash"] == manifest.content_hash
    assert inputs["train"].dataset.digest != inputs["holdout"].dataset.digest

    model = client.get_registered_model(mlflow_resource.model_name)
    assert "XGBoost fraud classifier" in model.description and "`champion`" in model.description
    version = client.get_model_version(mlflow_resource.model_name, meta["model_version"])
    assert f"training set `{manifest.snapshot_id}`" in version.description
    assert f"PR AUC {meta['holdout_pr_auc']:.4f}" in version.description
    assert f"**{meta['alias']}**: {meta['promotion_reason']}" in version.description
    assert run.data.tags["mlflow.note.content"] == version.description  # the run page's description

    # Dagit links the MLflow UI's own pages of this run and version (their HTTP counterpart: tests/e2e/test_mlflow_ui)
    base = clean_platform.settings.mlflow_ui_url
    assert meta["mlflow_run"] == (f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
                                  "?workflowType=machine_learning")
    assert meta["mlflow_model_version"] == (f"{base}/#/models/{mlflow_resource.model_name}/versions/"
                                            f"{meta['model_version']}?workflowType=machine_learning")
    event = clean_platform.instance.get_latest_materialization_event(names.FRAUD_MODEL)
    assert isinstance(event.asset_materialization.metadata["mlflow_run"], dg.UrlMetadataValue)


def _check(platform, key: dg.AssetCheckKey) -> dg.AssetCheckEvaluation:
    """The newest day's evaluation of a check, as Dagster stored it (what the asset's Checks tab shows)."""
    from dagster._core.event_api import PartitionKeyFilter

    records = platform.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=platform.last_day.isoformat()))
    assert key in records, f"{key.to_user_string()} was never evaluated for {platform.last_day}"
    return records[key].event.dagster_event.event_specific_data


def test_drift_report_flags_amount_inflation_and_not_none(clean_platform, drifted_platform):
    clean = clean_platform.metadata("feature_drift_report")
    drifted = drifted_platform.metadata("feature_drift_report")
    # The verdict is the asset check of the day: passed on the quiet world, failed (a WARN finding) on the drift.
    key = dg.AssetCheckKey(names.FEATURE_DRIFT_REPORT, names.FEATURE_DRIFT_CHECK)
    clean_check, drifted_check = _check(clean_platform, key), _check(drifted_platform, key)
    assert clean_check.passed, clean["drifted_columns"]
    assert not drifted_check.passed and drifted_check.severity == dg.AssetCheckSeverity.WARN
    assert drifted_check.metadata["drift_share"].value == drifted["drift_share"]
    assert drifted_check.metadata["drift_share"].value >= drifted_check.metadata["drift_share_threshold"].value
    assert drifted_check.metadata["drifted_columns"].value == drifted["drifted_columns"]
    assert "amount" in drifted_check.metadata["drifted_columns"].value
    assert drifted_check.metadata["verdict"].value == "drift" and clean_check.metadata["verdict"].value == "no_drift"
    # Nothing asks the quiet world's model for a retrain: every retrain check of its last day passed.
    assert all(_check(clean_platform, k).passed for k in names.RETRAIN_CHECKS)
    assert "amount" in drifted["drifted_columns"]
    assert drifted["drift_share"] > clean["drift_share"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "e2e-drift.json").write_text(json.dumps({
        name: {k: meta[k] for k in ("drift_share", "drifted_columns", "current_rows", "reference_rows")}
        for name, meta in (("none", clean), ("amount_inflation", drifted))
    }, indent=2))
    for meta in (clean, drifted):
        with open(meta["report_path"], encoding="utf-8") as f:
            html = f.read()
        assert "Share of Drifted Columns" in html and "Value Drift for column amount" in html


def _evaluate(sensor, platform, cursor=None) -> tuple[list, dg.SensorEvaluationContext]:
    """One sensor tick against the platform's instance: its run requests or skip reason, and the context (with
    its new cursor)."""
    defs = build_definitions(platform.settings)
    context = dg.build_sensor_context(
        instance=platform.instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    result = sensor(context)
    return [*(result.run_requests or []), *([result.skip_reason] if result.skip_reason else [])], context


def test_retrain_sensor_fires_once_per_drift_event(drifted_platform):
    results, context = _evaluate(retrain_on_drift, drifted_platform)
    run_requests = [r for r in results if isinstance(r, dg.RunRequest)]
    assert len(run_requests) == 1
    run_key = run_requests[0].run_key
    assert run_key == f"drift-retrain:{drifted_platform.last_day.isoformat()}"
    assert run_requests[0].run_config["ops"]["training_set"]["config"]["as_of"].startswith(
        drifted_platform.last_day.isoformat())

    # Nothing new materialized: the advanced cursor yields nothing.
    again, _ = _evaluate(retrain_on_drift, drifted_platform, cursor=context.cursor)
    assert not any(isinstance(r, dg.RunRequest) for r in again)

    # Re-checking the same window (e.g. after the retrain) is the same drift event, inside the cooldown: no
    # request. A sensor that lost its cursor asks again, with the same run key, which Dagster never launches twice.
    defs = build_definitions(drifted_platform.settings)
    dg.materialize(
        list(defs.assets), selection=dg.AssetSelection.assets("feature_drift_report"),
        instance=drifted_platform.instance, resources=defs.resources,
        partition_key=drifted_platform.last_day.isoformat(),
    )
    repeat, _ = _evaluate(retrain_on_drift, drifted_platform, cursor=context.cursor)
    assert not any(isinstance(r, dg.RunRequest) for r in repeat)
    fresh, _ = _evaluate(retrain_on_drift, drifted_platform)
    assert [r.run_key for r in fresh if isinstance(r, dg.RunRequest)] == [run_key]


def test_retrain_sensor_skips_clean_report(clean_platform):
    results, _ = _evaluate(retrain_on_drift, clean_platform)
    assert results and all(isinstance(r, dg.SkipReason) for r in results)



def _cli(args: list[str], cwd, data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLATFORM_DATA_DIR": str(data_dir), "DO_NOT_TRACK": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_dbt_build_works_standalone_and_is_idempotent(clean_platform, tmp_path):
    """`dbt build` from dbt_project/ with its own profiles.yml, on the platform's warehouse: same row counts. Its
    artifacts go to a temporary target path: the project's own manifest is what other tests load meanwhile."""
    before = query(clean_platform.settings.exports_dir, "SELECT count(*) AS n FROM {tx}", tx="fct_transactions").n[0]
    out = _cli([str(BIN / "dbt"), "build", "--profiles-dir", ".", "--target-path", str(tmp_path / "target")],
               PROJECT_ROOT / "dbt_project",
               clean_platform.settings.data_dir)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "ERROR=0" in out.stdout
    after = query(clean_platform.settings.exports_dir, "SELECT count(*) AS n FROM {tx}", tx="fct_transactions").n[0]
    assert after == before


def test_feast_apply_works_from_the_cli(clean_platform, tmp_path):
    """`feast apply` in feature_repo/ against a fresh data directory creates the same views the asset did."""
    out = _cli([str(BIN / "feast"), "apply"], PROJECT_ROOT / "feature_repo", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    listed = _cli([str(BIN / "feast"), "feature-views", "list"], PROJECT_ROOT / "feature_repo", tmp_path)
    assert "customer_daily_features" in listed.stdout and "merchant_daily_features" in listed.stdout
    assert (tmp_path / "feast" / "registry.db").exists()


def test_daemon_launches_exactly_one_retrain_per_drift_event(drifted_platform, monkeypatch):
    """The real sensor daemon over the real workspace.yaml: the drifted report launches one retrain run, which
    trains, gates and re-checks drift for the same window; the next tick sees that report and launches nothing."""
    from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._daemon.daemon import get_default_daemon_logger
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from dagster._daemon.sensor import execute_sensor_iteration
    from dagster._time import get_current_datetime

    monkeypatch.setenv("PLATFORM_DATA_DIR", str(drifted_platform.settings.data_dir))
    instance = drifted_platform.instance
    logger = get_default_daemon_logger("SensorDaemon")
    sensor_runs = dg.RunsFilter(tags={"dagster/sensor_name": "retrain_on_drift"})
    versions_before = int(drifted_platform.metadata("fraud_model")["model_version"])
    target = WorkspaceFileTarget(paths=[str(PROJECT_ROOT / "workspace.yaml")])
    with create_test_daemon_workspace_context(target, instance) as workspace:
        start = get_current_datetime()

        def tick(at):
            with freeze_time(at):
                list(execute_sensor_iteration(workspace, logger, None, None))

        tick(start)
        runs = instance.get_runs(filters=sensor_runs)
        assert len(runs) == 1
        assert runs[0].tags["dagster/run_key"] == f"drift-retrain:{drifted_platform.last_day.isoformat()}"
        # The model's page says why it is due: the daemon reported fraud_model's due check with the tick.
        due = _due_check(instance)
        assert not due.passed and due.metadata["drift_partition"].value == drifted_platform.last_day.isoformat()
        assert due.metadata["drift_check"].value.endswith(
            (names.FEATURE_DRIFT_CHECK, names.PREDICTION_DRIFT_CHECK, names.FRAUD_RECALL_CHECK))
        assert due.metadata["run_key"].value == runs[0].tags["dagster/run_key"]
        # The run queue's daemon hands it to the run launcher, which runs it in a process of its own.
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        assert instance.get_run_by_id(runs[0].run_id).status != dg.DagsterRunStatus.QUEUED
        deadline = time.monotonic() + 300
        while not instance.get_run_by_id(runs[0].run_id).is_finished and time.monotonic() < deadline:
            time.sleep(2)
        assert instance.get_run_by_id(runs[0].run_id).status == dg.DagsterRunStatus.SUCCESS
        # The retrain run re-checked the model right after training it, from the cursor the daemon saved.
        due_record = _due_record(instance)
        assert due_record.run_id == runs[0].run_id and due_record.status.value == "SUCCEEDED"
        assert _due_check(instance).description.startswith("retrained")

        # The retrain re-materialized the drift report for the same window: a new event for the sensor to read,
        # the same drift event for the platform.
        tick(start + timedelta(minutes=2))
        assert len(instance.get_runs(filters=sensor_runs)) == 1
    assert int(drifted_platform.metadata("fraud_model")["model_version"]) == versions_before + 1


def _due_record(instance):
    """fraud_model's due check, as last evaluated (a retrain run plans it as soon as the run is created)."""
    key = dg.AssetCheckKey(names.FRAUD_MODEL, names.RETRAIN_DUE_CHECK)
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
    # newest first; a record still PLANNED by a queued or running run has no result yet
    return next(r for r in history if r.status.value in {"SUCCEEDED", "FAILED"})


def _due_check(instance) -> dg.AssetCheckEvaluation:
    return _due_record(instance).event.dagster_event.event_specific_data


def _train(platform, webhook_url: str, config: dict) -> dict:
    from platform_assets.resources import Notifier

    defs = build_definitions(platform.settings)
    result = dg.materialize(
        list(defs.assets), selection=dg.AssetSelection.assets("fraud_model"), instance=platform.instance,
        resources={**defs.resources, "notifier": Notifier(webhook_url=webhook_url)},
        run_config={"ops": {"fraud_model": {"config": config}}},
    )
    assert result.success
    return platform.metadata("fraud_model")


def test_every_prediction_walks_back_to_the_training_set_of_its_model(clean_platform):
    """One query: prediction -> model version -> training-set snapshot rows (and the feature service)."""
    data = clean_platform.settings.data_dir
    con = duckdb.connect()
    rows = con.execute(
        """
        SELECT p.transaction_id, p.model_version, p.feature_service, p.training_set_id,
               count(t.transaction_id) AS training_rows
        FROM read_parquet($predictions) AS p
        JOIN read_parquet($training_sets, filename = true) AS t
          ON t.filename = $dir || '/' || p.training_set_id || '.parquet'
        GROUP BY ALL
        """,
        {"predictions": str(data / "predictions" / "*.parquet"),
         "training_sets": str(data / "training_sets" / "*.parquet"), "dir": str(data / "training_sets")},
    ).df()
    scored = con.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(data / "predictions" / "*.parquet")})
    assert len(rows) == scored.fetchone()[0] > 0  # every prediction found its training set
    manifest = TrainingSetManifest.read(data / "training_sets" / f"{rows.training_set_id.iloc[0]}.json")
    assert (rows.training_rows == manifest.rows).all()
    assert (rows.feature_service == manifest.feature_service).all()
    champion = build_resources(clean_platform.settings)["mlflow_tracking"].champion_version()
    assert set(rows.model_version) == {str(champion.version)}
    assert champion.tags["training_set_id"] == manifest.snapshot_id


def test_monitoring_assets_keep_numeric_figures_per_day(clean_platform):
    day = clean_platform.last_day.isoformat()
    for key, figure in (("feature_drift_report", "drift_share"), ("prediction_drift_report", "score_drift"),
                        ("data_quality_summary", "max_missing_share")):
        event = clean_platform.instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event.asset_materialization.partition == day
        assert isinstance(event.asset_materialization.metadata[figure], dg.FloatMetadataValue), (key, figure)
    quality = clean_platform.metadata("data_quality_summary")
    assert quality["dagster/row_count"] > 500 and quality["duplicate_transaction_ids"] == 0
    assert quality["scores_out_of_range"] == 0
    performance = clean_platform.metadata("model_performance")
    assert performance["verdict"] in {"insufficient_data", "no_degraded"}  # labels of scored days not matured


def test_gate_refuses_a_deliberately_worse_model_and_records_why(clean_platform, webhook):
    url, received = webhook
    mlflow_tracking = build_resources(clean_platform.settings)["mlflow_tracking"]
    champion_before = mlflow_tracking.champion_version().version
    # Two stumps on a tenth of the columns: a model no fraud team should get.
    meta = _train(clean_platform, url, {"n_estimators": 2, "max_depth": 1, "colsample_bytree": 0.1,
                                        "early_stopping_rounds": 1})
    assert meta["promoted"] is False and meta["alias"] == "challenger"
    assert "does not beat champion" in meta["promotion_reason"]
    assert meta["holdout_pr_auc"] < meta["champion_pr_auc_on_same_holdout"]
    assert mlflow_tracking.champion_version().version == champion_before
    client = mlflow_tracking.client()
    refused = client.get_model_version(mlflow_tracking.model_name, meta["model_version"])
    assert refused.tags["promotion_decision"] == "challenger"
    assert refused.tags["promotion_reason"] == meta["promotion_reason"]
    assert float(refused.tags["gate_champion_holdout_pr_auc"]) > float(refused.tags["gate_challenger_holdout_pr_auc"])
    run = client.get_run(meta["mlflow_run_id"])
    assert run.data.tags["promotion_decision"] == "challenger"
    assert [m["kind"] for m in received] == ["promotion_refused"]
    assert meta["model_version"] in received[0]["message"]
    assert f"**challenger**: {meta['promotion_reason']}" in refused.description
    assert f"Champion v{champion_before} on the same holdout" in refused.description


def test_rollback_restores_the_previous_champion_in_one_step(clean_platform, webhook):
    url, received = webhook
    mlflow_tracking = build_resources(clean_platform.settings)["mlflow_tracking"]
    previous = mlflow_tracking.champion_version().version
    # Force a promotion (a negative margin lets an equal model through), then take it back.
    meta = _train(clean_platform, url, {"min_pr_auc_improvement": -1.0, "max_latest_regression": 1.0})
    assert meta["promoted"] is True and mlflow_tracking.champion_version().version == int(meta["model_version"])
    from platform_assets.automation.jobs import rollback_champion_job
    from platform_assets.resources import Notifier

    defs = build_definitions(clean_platform.settings)
    job = dg.Definitions(
        jobs=[rollback_champion_job], resources={**defs.resources, "notifier": Notifier(webhook_url=url)}
    ).resolve_job_def("rollback_champion")
    result = job.execute_in_process(
        run_config={"ops": {"rollback_champion_op": {"config": {"reason": "test: the new model misbehaves"}}}},
        instance=clean_platform.instance,
    )
    assert result.success
    assert mlflow_tracking.champion_version().version == previous
    client = mlflow_tracking.client()
    rolled_back = client.get_model_version(mlflow_tracking.model_name, meta["model_version"])
    assert rolled_back.tags["promotion_decision"] == "rolled_back"
    assert "the new model misbehaves" in rolled_back.tags["promotion_reason"]
    # The descriptions keep the gate's decision and end with what changed since.
    assert "**champion**: " in rolled_back.description
    assert rolled_back.description.endswith("**rolled_back**: rolled back: test: the new model misbehaves")
    restored = client.get_model_version(mlflow_tracking.model_name, previous)
    assert restored.description.endswith(f"restored by rollback of v{meta['model_version']}: test: the new model "
                                         "misbehaves")
    assert [m["kind"] for m in received] == ["promotion", "rollback"]
    # One step only: the restored champion replaced nobody, so there is nothing further back.
    with pytest.raises(ValueError, match="nothing to roll back to"):
        mlflow_tracking.rollback_champion("again")
