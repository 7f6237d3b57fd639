"""The Definitions load quickly, describe one connected lineage graph, and validate with Dagster's own CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import deque
from datetime import UTC
from itertools import pairwise

import dagster as dg
import pytest

from platform_assets.definitions import defs as load_defs
from platform_assets.settings import PROJECT_ROOT

defs = load_defs()  # what the UI gets from workspace.yaml (`@dg.definitions`): the active profile's
STAGES = {"ingestion", "warehouse", "features", "training", "scoring", "serving", "monitoring"}
RAW = ["raw_customers", "raw_merchants", "raw_transactions", "raw_chargebacks"]


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def test_every_asset_has_a_stage_group_and_kinds(graph):
    groups = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assert node.group_name in STAGES, f"{key} is in group {node.group_name!r}"
        assert node.kinds, f"{key} has no kinds"
        groups.add(node.group_name)
    assert groups == STAGES


def test_kinds_name_the_technology_of_each_stage(graph):
    kinds_by_group: dict[str, set[str]] = {}
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        kinds_by_group.setdefault(node.group_name, set()).update(node.kinds)
    assert {"duckdb"} <= kinds_by_group["ingestion"]
    assert {"dbt", "duckdb"} <= kinds_by_group["warehouse"]
    assert {"feast"} <= kinds_by_group["features"]
    assert {"xgboost", "mlflow"} <= kinds_by_group["training"]
    assert {"evidently"} <= kinds_by_group["monitoring"]
    assert {"fastapi", "mlflow", "duckdb"} <= kinds_by_group["serving"]


def _downstream(graph, start: dg.AssetKey) -> set[dg.AssetKey]:
    seen, queue = set(), deque([start])
    while queue:
        for child in graph.get(queue.popleft()).child_keys:
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


@pytest.mark.parametrize("raw", RAW)
def test_each_raw_asset_reaches_the_drift_report(graph, raw):
    reached = _downstream(graph, dg.AssetKey(raw))
    assert {dg.AssetKey("fraud_model"), dg.AssetKey("feature_drift_report")} <= reached


def test_lineage_passes_through_every_stage(graph):
    path = ["raw_transactions", "stg_transactions", "fct_customer_daily_features", "feast_feature_views",
            "training_set", "fraud_model", "feature_drift_report"]
    for upstream, downstream in pairwise(path):
        assert dg.AssetKey(downstream) in _downstream(graph, dg.AssetKey(upstream)), (upstream, downstream)


def test_the_live_model_and_its_traffic_are_in_the_graph(graph):
    assert dg.AssetKey("served_predictions") in _downstream(graph, dg.AssetKey("fraud_model"))
    assert dg.AssetKey("deployed_model") in _downstream(graph, dg.AssetKey("raw_transactions"))
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey("served_predictions")}
    assert checks == {"served_features_match_point_in_time"}


@pytest.mark.parametrize("entity", ["customers", "merchants"])
def test_snapshots_are_warehouse_assets_between_raw_and_the_features(graph, entity):
    """The history of customers and merchants is rebuilt with the unpartitioned dbt models (every warehouse build
    snapshots), downstream of its raw table and upstream of the dims and the daily feature marts."""
    snapshot = dg.AssetKey(["snapshots", f"{entity}_snapshot"])
    node = graph.get(snapshot)
    assert (node.group_name, node.partitions_def, node.tags.get("layer")) == ("warehouse", None, "snapshots")
    assert dg.AssetKey(f"raw_{entity}") in node.parent_keys
    assert {dg.AssetKey(f"dim_{entity}"), dg.AssetKey(f"fct_{entity[:-1]}_daily_features")} <= _downstream(
        graph, snapshot)


def test_dbt_tests_are_blocking_asset_checks(graph):
    checks = [graph.get_check_spec(k) for k in graph.asset_check_keys]
    dbt_checks = [c for c in checks if c.asset_key.path[0].startswith(("stg_", "fct_", "dim_", "int_"))]
    assert len(dbt_checks) >= 40
    assert sum(c.blocking for c in dbt_checks) >= 40


def test_monitoring_verdicts_are_partitioned_checks_and_the_model_has_its_due_check(graph):
    """The verdicts are asset checks of their daily partitions (the retrain sensor reads nothing else), and
    fraud_model carries the check that says whether, and why, it is due for a retrain."""
    from platform_assets.lib import names

    checks = {k: graph.get_check_spec(k) for k in graph.asset_check_keys}
    for key in (*names.RETRAIN_CHECKS, dg.AssetCheckKey(names.SERVED_TRAFFIC_REPORT, names.SERVED_SCORE_DRIFT_CHECK)):
        spec = checks[key]
        assert spec.partitions_def == graph.get(key.asset_key).partitions_def is not None, key
        assert not spec.blocking, key  # a finding about the world, not a broken pipeline
    assert {k.name for k in checks if k.asset_key == names.FRAUD_MODEL} == {names.RETRAIN_DUE_CHECK}
    retrain = defs.resolve_job_def(names.RETRAIN_JOB)
    assert "fraud_model_fraud_model_not_due_for_retrain" in retrain.graph.node_dict  # re-checked after training


def test_reports_are_due_by_the_morning_and_the_model_has_a_maximum_age(graph):
    from datetime import timedelta

    from platform_assets.lib import names
    from platform_assets.settings import load_settings

    settings = load_settings()
    for key in (names.FEATURE_DRIFT_REPORT, names.PREDICTION_DRIFT_REPORT, names.MODEL_PERFORMANCE,
                names.DATA_QUALITY_SUMMARY):
        policy = graph.get(key).freshness_policy
        assert type(policy).__name__ == "CronFreshnessPolicy", key
        assert policy.deadline_cron == f"0 {settings.report_due_hour} * * *" and policy.timezone == "UTC"
        assert policy.lower_bound_delta == timedelta(hours=settings.report_due_hour)
    model = graph.get(names.FRAUD_MODEL).freshness_policy
    assert type(model).__name__ == "TimeWindowFreshnessPolicy"
    assert model.fail_window.to_timedelta() == timedelta(days=settings.model_max_age_days)
    for key in (names.TRAINING_SET, names.FRAUD_MODEL, names.DAILY_PREDICTIONS, names.FEATURE_DRIFT_REPORT,
                names.PREDICTION_DRIFT_REPORT, names.MODEL_PERFORMANCE, names.SERVED_TRAFFIC_REPORT):
        assert graph.get(key).code_version, key


def test_automation_is_defined():
    assert {j.name for j in defs.jobs} >= {"daily_ingestion", "retrain_fraud_model"}
    assert [s.name for s in defs.schedules] == ["daily_ingestion_schedule"]
    assert {s.name for s in defs.sensors} >= {"retrain_on_drift", "refresh_after_ingestion"}


HEAVY = ("feast", "xgboost", "mlflow", "evidently", "sklearn", "matplotlib", "pandas", "pyarrow", "numpy")


def test_loading_definitions_imports_no_heavy_library():
    """The UI, the daemon, every run worker and every step process load the Definitions: Feast, xgboost, MLflow,
    Evidently, pandas and pyarrow load only inside the asset that needs them (docs/benchmarks.md has the time)."""
    code = (
        "import json, sys; from platform_assets.definitions import defs; defs(); "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.slow
def test_dagster_definitions_validate_cli(tmp_path):
    """`dagster definitions validate` on workspace.yaml, with an instance made from our dagster.yaml."""
    shutil.copy(PROJECT_ROOT / "deploy" / "local" / "dagster.yaml", tmp_path / "dagster.yaml")
    dagster = PROJECT_ROOT / ".venv" / "bin" / "dagster"
    exe = str(dagster) if dagster.exists() else "dagster"
    out = subprocess.run(
        [exe, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Validation successful" in out.stdout + out.stderr


def test_daily_schedule_asks_for_the_day_that_just_ended():
    from datetime import date, datetime, time, timedelta

    from platform_assets.definitions import build_definitions
    from platform_assets.settings import load_settings

    # Pinned: unpinned, the partitions start on the landing zone's first day (a developer's data/ may hold a demo's).
    pinned = build_definitions(load_settings({**os.environ, "PLATFORM_PARTITION_START": "2026-01-01"}))
    day = date(2026, 3, 14)
    schedule = pinned.get_schedule_def("daily_ingestion_schedule")
    morning = datetime.combine(day + timedelta(days=1), time(1), UTC)
    context = dg.build_schedule_context(scheduled_execution_time=morning)
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == [day.isoformat()]
    assert schedule.job_name == "daily_ingestion"


def test_loading_the_definitions_warns_nothing():
    """Every process of the platform loads the Definitions: a warning there prints in every run worker, code
    server and demo. Known library warnings are silenced at their source (lib/known_warnings.py); anything else
    fails here."""
    code = ("from platform_assets.definitions import build_definitions\n"
            "from platform_assets.settings import load_settings\n"
            "d = build_definitions(load_settings())\n"
            "d.resolve_asset_graph()\n"
            "[d.resolve_job_def(j.name) for j in d.jobs]\n")
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-W", "error::UserWarning", "-c", code],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Warning" not in out.stderr, out.stderr[-3000:]


LIVE_SOURCES = {"PLATFORM_MASTER_DATA_SOURCE": "database", "PLATFORM_CHARGEBACKS_SOURCE": "api",
                "PLATFORM_TRANSACTIONS_SOURCE": "stream"}


def test_live_sources_replace_their_file_assets_under_the_same_keys(tmp_path):
    """The source systems' assets stand where the file assets stood: same keys, same group, same blocking check,
    kinds naming the source; the stream adds its observable source and its sensor, the landing sensor goes."""
    from platform_assets.definitions import build_definitions
    from platform_assets.lib import names
    from platform_assets.settings import load_settings

    live = build_definitions(load_settings({"PLATFORM_DATA_DIR": str(tmp_path), **LIVE_SOURCES}))
    graph = live.resolve_asset_graph()
    kinds = {key: graph.get(dg.AssetKey(key)).kinds for key in RAW}
    assert {"dlt", "sqlite", "duckdb"} <= kinds["raw_customers"] and {"dlt"} <= kinds["raw_merchants"]
    assert {"api", "duckdb"} <= kinds["raw_chargebacks"] and {"sqlite", "duckdb"} <= kinds["raw_transactions"]
    for key in RAW:
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == "ingestion"
        assert live.get_assets_def(key).op.pool == names.DUCKDB_WRITER_POOL
        assert dg.AssetCheckKey(dg.AssetKey(key), names.QUARANTINE_CHECK) in node.check_keys
    assert names.TRANSACTION_STREAM in graph.get(names.RAW_TRANSACTIONS).parent_keys
    sensors = {s.name for s in live.sensors}
    assert names.STREAM_SENSOR in sensors and "landing_files_sensor" not in sensors
    # The graph downstream is the files mode's, asset for asset.
    assert graph.get_all_asset_keys() - {names.TRANSACTION_STREAM} == defs.resolve_asset_graph().get_all_asset_keys()


def test_live_source_definitions_load_without_their_clients_and_warn_nothing(tmp_path):
    """dlt, SQLAlchemy, httpx and redis are imported by the runs that use them, never when the UI loads the
    code; and the live assets add no warning to every process."""
    code = ("import sys\n"
            "from platform_assets.definitions import build_definitions\n"
            "from platform_assets.settings import load_settings\n"
            "d = build_definitions(load_settings())\n"
            "d.resolve_asset_graph()\n"
            "[d.resolve_job_def(j.name) for j in d.jobs]\n"
            "print(sorted(m for m in ('dlt', 'sqlalchemy', 'httpx', 'redis', 'pandas') if m in sys.modules))\n")
    env = {**os.environ, "PLATFORM_DATA_DIR": str(tmp_path), **LIVE_SOURCES}
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-W", "error::UserWarning", "-c", code],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Warning" not in out.stderr, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
