"""The production profile on the real servers: PostgreSQL and Redis, as CI and this machine run them.

Everything is selected by configuration only (PLATFORM_PROFILE=production and the variables docs/production.md
lists): the Feast SQL registry and the MLflow tracking/registry live in PostgreSQL, Feast's online store in Redis,
the Dagster instance is `deploy/production/dagster.yaml` on PostgreSQL, and jobs run on the Celery executor with
Redis as broker and result backend, executed by a real `celery worker` process.

Each run of this module creates its own databases (`platform_test_<id>_{dagster,feast,mlflow}`), its own Feast
project (`fraud_platform_t<id>`, which suffixes its Redis keys) and its own Celery key prefix, and removes them all
at the end. The servers default to 127.0.0.1:5432 (user postgres) and 127.0.0.1:6379; PLATFORM_TEST_PG_HOST,
_PG_PORT, _PG_USER, _PG_PASSWORD, PLATFORM_TEST_REDIS_HOST, _REDIS_PORT and _REDIS_PASSWORD point elsewhere. If a
server cannot be reached the tests fail (they are never skipped): CI provides both.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from feature_marts import write_feature_marts
from mlflow_server import mlflow_server
from process_helpers import stop_process_group
from s3_server import s3_server
from server_cleanup import delete_keys, drop_databases

from platform_assets.settings import PROJECT_ROOT, Settings, load_settings

pytestmark = pytest.mark.production

DEPLOY_DIR = PROJECT_ROOT / "deploy" / "production"
PG_HOST = os.environ.get("PLATFORM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PLATFORM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PLATFORM_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("PLATFORM_TEST_PG_PASSWORD", "")
REDIS_HOST = os.environ.get("PLATFORM_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("PLATFORM_TEST_REDIS_PORT", "6379"))
REDIS_PASSWORD = os.environ.get("PLATFORM_TEST_REDIS_PASSWORD", "")

MART_START = datetime(2026, 3, 1, tzinfo=UTC)
MART_DAYS = 5
CUSTOMERS = [f"C{i:04d}" for i in range(40)]
MERCHANTS = [f"M{i:03d}" for i in range(8)]
WORKER_READY_SECONDS = 60
JOB_SECONDS = 180


def _pg_connect(dbname: str = "postgres", **kwargs):
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD or None, dbname=dbname, connect_timeout=5,
        **kwargs,
    )


def _redis():
    import redis

    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password=REDIS_PASSWORD or None, socket_connect_timeout=5)


def _sqlalchemy_url(db: str) -> str:
    auth = quote(PG_USER) + (f":{quote(PG_PASSWORD, safe='')}" if PG_PASSWORD else "")
    return f"postgresql+psycopg://{auth}@{PG_HOST}:{PG_PORT}/{db}"


@dataclass
class Production:
    uid: str
    settings: Settings
    databases: dict[str, str]
    env: dict[str, str]
    root: Path
    s3: object  # tests/s3_server.S3Server
    mlflow: object  # tests/mlflow_server.MlflowServer

    @property
    def feast_project(self) -> str:
        return self.settings.feast_project

    @property
    def celery_prefix(self) -> str:
        return self.settings.celery_key_prefix


def _check_servers() -> None:
    try:
        with _pg_connect() as con:
            con.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_USER}@{PG_HOST}:{PG_PORT} ({exc}). The production-profile tests "
            "need a running server (CI provides one); set PLATFORM_TEST_PG_* to point at yours.",
            pytrace=False,
        )
    try:
        _redis().ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(
            f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc}). The production-profile tests need a "
            "running server (CI provides one); set PLATFORM_TEST_REDIS_* to point at yours.",
            pytrace=False,
        )


def _cleanup(databases: dict[str, str], feast_project: str, celery_prefix: str) -> None:
    # Feast's Redis keys end with the project name; Celery's (queues, bindings, results) start with the prefix.
    delete_keys(_redis(), [f"*{feast_project}", f"{celery_prefix}*"])
    drop_databases(_pg_connect, databases.values())


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Iterator[Production]:
    """Fresh databases, Feast project and Celery prefix, an S3 API server (compute logs) and a real `mlflow server`
    (its registry in the run's PostgreSQL database, artifacts proxied to S3), and the production environment set in
    this process."""
    _check_servers()
    uid = uuid.uuid4().hex[:10]
    databases = {kind: f"platform_test_{uid}_{kind}" for kind in ("dagster", "feast", "mlflow")}
    root = tmp_path_factory.mktemp("production")
    with _pg_connect(autocommit=True) as con:
        for name in databases.values():
            con.execute(f'CREATE DATABASE "{name}"')
    try:
        with s3_server(root / "s3.log") as s3, mlflow_server(
                s3, root / "mlflow.log", backend_store_uri=_sqlalchemy_url(databases["mlflow"])) as server:
            yield from _production_env(uid, databases, root, s3, server)
    finally:
        _cleanup(databases, f"fraud_platform_t{uid}", f"platform_test_{uid}:")


def _production_env(uid, databases, root, s3, server) -> Iterator[Production]:
    logs_bucket = s3.create_bucket(f"dagster-logs-{uid}").removeprefix("s3://")
    redis_auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""
    celery_url = f"redis://{redis_auth}{REDIS_HOST}:{REDIS_PORT}/0"
    env = {
        "PLATFORM_PROFILE": "production",
        "PLATFORM_DATA_DIR": str(root / "data"),
        "PLATFORM_FEAST_PROJECT": f"fraud_platform_t{uid}",
        "PLATFORM_FEAST_REGISTRY_URL": _sqlalchemy_url(databases["feast"]),
        "PLATFORM_REDIS_URL": f"{REDIS_HOST}:{REDIS_PORT}" + (f",password={REDIS_PASSWORD}" if REDIS_PASSWORD else ""),
        # The MLflow server: no PLATFORM_MLFLOW_ARTIFACTS, the server proxies artifacts to its S3 destination.
        **server.env(),
        "PLATFORM_DAGSTER_PG_HOST": PG_HOST,
        "PLATFORM_DAGSTER_PG_PORT": str(PG_PORT),
        "PLATFORM_DAGSTER_PG_USER": PG_USER,
        "PLATFORM_DAGSTER_PG_PASSWORD": PG_PASSWORD,
        "PLATFORM_DAGSTER_PG_DB": databases["dagster"],
        "PLATFORM_DAGSTER_STORAGE": str(root / "dagster" / "storage"),
        "PLATFORM_DAGSTER_COMPUTE_LOGS_BUCKET": logs_bucket,
        "PLATFORM_DAGSTER_COMPUTE_LOGS_PREFIX": f"compute-logs-{uid}",
        **s3.env(),
        "PLATFORM_CELERY_BROKER_URL": celery_url,
        "PLATFORM_CELERY_BACKEND_URL": celery_url,
        "PLATFORM_CELERY_KEY_PREFIX": f"platform_test_{uid}:",
        "DAGSTER_HOME": str(DEPLOY_DIR),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        for key in ("PLATFORM_LANDING_DIR", "PLATFORM_MLFLOW_ARTIFACTS", "PLATFORM_SHARED_STORE_URL"):
            mp.delenv(key, raising=False)
        settings = load_settings()
        yield Production(uid, settings, databases, env, root, s3, server)


@pytest.fixture(scope="module")
def instance(production) -> Iterator[dg.DagsterInstance]:
    """The instance of deploy/production/dagster.yaml, on this run's fresh PostgreSQL database."""
    inst = dg.DagsterInstance.from_config(str(DEPLOY_DIR))
    try:
        yield inst
    finally:
        inst.dispose()


@pytest.fixture(scope="module")
def feature_marts(production) -> dict[str, pd.DataFrame]:
    """The dbt feature marts Feast reads, as parquet exports of the documented schema (small and synthetic)."""
    return write_feature_marts(production.settings.feature_repo_dir, production.settings.exports_dir, CUSTOMERS,
                               MERCHANTS, 11, MART_START, MART_DAYS)


@pytest.fixture(scope="module")
def feast_run(production, instance, feature_marts) -> dg.ExecuteInProcessResult:
    """`feast_feature_views` + `feast_online_store`, materialized with the production resources and instance."""
    from platform_assets.definitions import build_resources
    from platform_assets.features.assets import feast_feature_views, feast_online_store

    return dg.materialize(
        [feast_feature_views, feast_online_store],
        resources=build_resources(production.settings),
        instance=instance,
    )


# --- Dagster instance -------------------------------------------------------------------------------------------


def test_instance_file_takes_every_connection_parameter_from_the_environment():
    config = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text())
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    assert set(postgres_db) == {"hostname", "port", "username", "password", "db_name"}
    for field, value in postgres_db.items():
        assert isinstance(value, dict) and set(value) == {"env"}, f"{field} must be {{env: VAR}}, got {value!r}"
    assert set(config["local_artifact_storage"]["config"]["base_dir"]) == {"env"}
    # Compute logs on S3: bucket and prefix by {env: ...}; endpoint, region and keys are boto3's AWS_* variables.
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    for field in ("bucket", "prefix"):
        assert set(config["compute_logs"]["config"][field]) == {"env"}, field
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_instance_is_postgres_with_queue_pools_monitoring_and_retries(production, instance):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert instance.run_storage.postgres_url.endswith(f"/{production.databases['dagster']}")
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 1
    assert concurrency.run_queue_config.max_concurrent_runs == 4
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds == 7200
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 10
    assert type(instance.run_launcher).__name__ == "HealthCheckingRunLauncher"
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
    assert instance.compute_log_manager._s3_bucket == production.env["PLATFORM_DAGSTER_COMPUTE_LOGS_BUCKET"]
    assert instance.storage_directory().startswith(production.env["PLATFORM_DAGSTER_STORAGE"])


def test_materialization_through_the_production_instance_is_stored_in_postgres(production, feast_run):
    assert feast_run.success
    with _pg_connect(production.databases["dagster"]) as con:
        status = con.execute("SELECT status FROM runs WHERE run_id = %s", (feast_run.run_id,)).fetchone()
        materialized = con.execute(
            "SELECT DISTINCT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (feast_run.run_id,),
        ).fetchall()
    assert status == ("SUCCESS",)
    assert {dg.AssetKey.from_db_string(k).path[0] for (k,) in materialized} == {"feast_feature_views", "feast_online_store"}
    # A second instance loaded from the same file sees the run: the state is in the server, not in this process.
    with dg.DagsterInstance.from_config(str(DEPLOY_DIR)) as other:
        assert other.get_run_by_id(feast_run.run_id).is_success
        event = other.get_latest_materialization_event(dg.AssetKey("feast_online_store"))
        assert event.asset_materialization.metadata["online_store"].value == "redis"


# --- Feast: SQL registry in PostgreSQL, online store in Redis --------------------------------------------------


def test_feast_registry_lives_in_postgres(production, feast_run):
    assert feast_run.success
    project = production.feast_project
    with _pg_connect(production.databases["feast"]) as con:
        tables = {t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
        views = {v for (v,) in con.execute(
            "SELECT feature_view_name FROM feature_views WHERE project_id = %s", (project,)).fetchall()}
        entities = {e for (e,) in con.execute(
            "SELECT entity_name FROM entities WHERE project_id = %s", (project,)).fetchall()}
        services = {s for (s,) in con.execute(
            "SELECT feature_service_name FROM feature_services WHERE project_id = %s", (project,)).fetchall()}
    assert {"projects", "entities", "feature_views", "feature_services", "data_sources"} <= tables
    assert views == {"customer_daily_features", "merchant_daily_features", "customer_merchant_features",
                     "customer_recent_transactions"}
    assert entities - {"__dummy"} == {"customer", "merchant"}  # Feast adds its own __dummy entity
    assert services == {"fraud_detector_v1", "fraud_detector_v2", "fraud_detector_v3"}
    assert not (production.settings.data_dir / "feast").exists(), "no local registry or online store file"


def test_online_features_are_served_from_redis(production, feast_run, feature_marts):
    from platform_assets.definitions import build_resources

    assert feast_run.success
    # A fresh store object: it reads the registry back from PostgreSQL and the values from Redis.
    feast = build_resources(production.settings)["feast"].process_config_and_initialize()
    store = feast.store()
    assert store.project == production.feast_project
    assert store.config.online_store.type == "redis" and store.config.registry.registry_type == "sql"
    customers = feature_marts["fct_customer_daily_features"]
    merchants = feature_marts["fct_merchant_daily_features"]
    rows = [{"customer_id": CUSTOMERS[i], "merchant_id": MERCHANTS[i % len(MERCHANTS)]} for i in (0, 7, 39)]
    online = store.get_online_features(features=store.get_feature_service("fraud_detector_v1"),
                                       entity_rows=rows).to_dict()
    for i, row in enumerate(rows):
        latest_c = customers[customers.customer_id == row["customer_id"]].sort_values("event_timestamp").iloc[-1]
        latest_m = merchants[merchants.merchant_id == row["merchant_id"]].sort_values("event_timestamp").iloc[-1]
        for name in ("cust_txn_count_7d", "cust_amount_avg_30d", "cust_night_txn_share_7d"):
            assert online[name][i] == pytest.approx(latest_c[name]), (row, name)
        for name in ("merch_txn_count_7d", "merch_amount_avg_7d", "merch_category_code"):
            assert online[name][i] == pytest.approx(latest_m[name]), (row, name)
    keys = list(_redis().scan_iter(match=f"*{production.feast_project}".encode(), count=1000))
    # one Redis hash per entity key of this run's project: customers, merchants and customer x merchant pairs
    assert len(keys) == len(CUSTOMERS) + len(MERCHANTS) + len(CUSTOMERS)


def test_scoring_service_reads_from_redis_what_the_offline_join_gives(production, feast_run, feature_marts):
    """The scoring service's feature reader on the production profile (Feast's Redis `online_read`, the TTL
    guard, the registry's on-demand UDF) against Feast's offline point-in-time join at the same instants, the
    pair of a served transaction included, and a customer never seen."""
    from platform_assets.definitions import build_resources
    from platform_assets.lib.training_sets import join_features
    from platform_assets.serving.features import OnlineFeatureReader

    assert feast_run.success
    store = build_resources(production.settings)["feast"].process_config_and_initialize().store()
    sys.path.insert(0, str(production.settings.feature_repo_dir))
    try:
        from fraud_features import MERCHANT_FEATURES, TRANSACTION_FEATURES, V2_CUSTOMER
    finally:
        sys.path.pop(0)
    features = ["amount", "is_online", "is_night", *V2_CUSTOMER, *MERCHANT_FEATURES, *TRANSACTION_FEATURES]
    reader = OnlineFeatureReader(store, "fraud_detector_v2", features)
    assert not hasattr(reader.online_store, "read_values")  # Feast's own Redis store, through online_read
    latest = feature_marts["fct_customer_daily_features"].event_timestamp.max()
    at = [latest + timedelta(hours=h) for h in (2, 30)] + [latest + timedelta(days=45)]  # the last: past the TTL
    rows = [{"transaction_id": f"t{i}", "customer_id": c, "merchant_id": MERCHANTS[CUSTOMERS.index(c) % len(MERCHANTS)]
             if c in CUSTOMERS else MERCHANTS[0], "amount": 25.0 + i, "channel": "online",
             "event_ts": at[i % len(at)].to_pydatetime()}
            for i, c in enumerate([CUSTOMERS[0], CUSTOMERS[7], CUSTOMERS[39], "C-NEVER-SEEN", CUSTOMERS[3]])]
    served = reader.read(rows)
    entity_rows = pd.DataFrame({
        "transaction_id": [r["transaction_id"] for r in rows], "customer_id": [r["customer_id"] for r in rows],
        "merchant_id": [r["merchant_id"] for r in rows], "event_timestamp": [r["event_ts"] for r in rows],
        "amount": [r["amount"] for r in rows],
        "transaction_epoch": [int(r["event_ts"].timestamp() + 0.5) for r in rows],
    })
    offline = join_features(store, entity_rows, "fraud_detector_v2").set_index("transaction_id")
    for i, row in enumerate(rows):
        for j, name in enumerate(features):
            if name in ("is_online", "is_night"):
                continue
            expected = offline.loc[row["transaction_id"], name]
            got = served.matrix[i, j]
            if pd.isna(expected):
                assert np.isnan(got), (row, name, got)
            else:
                assert got == pytest.approx(float(expected), rel=1e-12), (row, name, got, expected)
    assert served.unknown_customer == [False, False, False, True, False]
    assert served.stale[2] and not served.stale[0] and not served.stale[1]  # 45 days on: every window stale


# --- MLflow: an mlflow server, registry in PostgreSQL, artifacts proxied to S3 ----------------------------------


def test_mlflow_server_registers_and_loads_by_alias_with_artifacts_in_s3(production):
    import xgboost as xgb

    from platform_assets.definitions import build_resources
    from platform_assets.lib.names import CHAMPION

    configured = build_resources(production.settings)["mlflow_tracking"]
    # The URI may carry a password: the resource holds the variable's name, resolved at run time.
    assert isinstance(configured.tracking_uri, dg.EnvVar)
    assert configured.artifact_location in ("", None), "with a server, the server chooses the artifact location"
    resource = configured.process_config_and_initialize()
    assert resource.tracking_uri == production.mlflow.url
    rng = np.random.default_rng(3)
    features = pd.DataFrame(rng.random((300, 4)), columns=["a", "b", "c", "d"])
    labels = (features["a"] + 0.2 * rng.random(300) > 0.6).astype(int)
    model = xgb.XGBClassifier(n_estimators=8, max_depth=2, n_jobs=1).fit(features, labels)
    with pytest.MonkeyPatch.context() as mp:
        # The client holds no S3 credentials and no endpoint: everything goes through the server.
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(key)
        mlflow = resource.setup()
        with mlflow.start_run():
            info = mlflow.xgboost.log_model(
                model, name="model", registered_model_name=resource.model_name, pip_requirements=["xgboost"]
            )
        client = resource.client()
        client.set_registered_model_alias(resource.model_name, CHAMPION, info.registered_model_version)
        loaded = mlflow.xgboost.load_model(resource.model_uri(CHAMPION))
        by_version = resource.load_version(info.registered_model_version)  # how scoring and serving load it
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))
    np.testing.assert_allclose(by_version.predict_proba(features), model.predict_proba(features))
    version = client.get_model_version_by_alias(resource.model_name, CHAMPION)
    assert int(version.version) == int(info.registered_model_version)

    with _pg_connect(production.databases["mlflow"]) as con:
        aliases = con.execute("SELECT name, alias, version FROM registered_model_aliases").fetchall()
        experiment = con.execute(
            "SELECT artifact_location FROM experiments WHERE name = %s", (production.settings.mlflow_experiment,)
        ).fetchone()
    assert aliases == [(resource.model_name, CHAMPION, int(info.registered_model_version))]
    assert experiment[0].startswith("mlflow-artifacts:/"), experiment
    listed = production.s3.client().list_objects_v2(Bucket=production.mlflow.bucket, Prefix="mlflow/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith("model.ubj") for k in keys), f"no model file in s3://{production.mlflow.bucket}: {keys}"
    assert not (production.root / "data" / "mlflow").exists(), "nothing of MLflow on the client's disk"


# --- The shared store: a training set written and read back -------------------------------------------------


def test_training_set_is_written_and_read_back_through_the_shared_store(production, tmp_path):
    """With PLATFORM_SHARED_STORE_URL the profile's storage resource hands out S3 paths: the snapshot, its manifest
    and latest.json are objects in the bucket, and training's reader gets the same rows back."""
    import dataclasses

    from platform_assets.definitions import build_resources
    from platform_assets.features.training_set_builder import BuiltTrainingSet, save_snapshot
    from platform_assets.lib.training_sets import latest_manifest, read_split

    bucket = production.s3.create_bucket(f"shared-{production.uid}")
    settings = dataclasses.replace(production.settings, shared_store_url=f"{bucket}/platform")
    storage = build_resources(settings)["storage"]
    frame = pd.DataFrame({"transaction_id": ["t1", "t2", "t3"], "amount": [1.0, 2.0, 3.0], "is_fraud": [0, 1, 0],
                          "split": ["train", "train", "holdout"]})
    local = tmp_path / ".snapshot.parquet.tmp"
    frame.to_parquet(local, index=False)
    fields = {"snapshot_id": "s1", "feature_service": "fraud_detector_v1", "feature_columns": ["amount"],
              "label_column": "is_fraud", "window_start": "2026-03-01T00:00:00+00:00",
              "window_end": "2026-03-04T00:00:00+00:00", "as_of": "2026-03-10T00:00:00+00:00",
              "holdout_start": "2026-03-03T00:00:00+00:00", "rows": 3, "positives": 1, "holdout_rows": 1,
              "holdout_positives": 0}
    save_snapshot(BuiltTrainingSet(local, fields, 0.0, 1), storage.training_sets_dir())
    keys = sorted(o["Key"] for o in production.s3.client().list_objects_v2(
        Bucket=bucket.removeprefix("s3://"), Prefix="platform/training_sets/")["Contents"])
    assert keys == ["platform/training_sets/latest.json", "platform/training_sets/s1.json",
                    "platform/training_sets/s1.parquet"]
    manifest = latest_manifest(storage.training_sets_dir())
    assert manifest.path == f"{bucket}/platform/training_sets/s1.parquet"
    assert read_split(manifest.path, "train")["transaction_id"].tolist() == ["t1", "t2"]


# --- Celery: the production executor, with a real worker ------------------------------------------------------


def test_production_profile_selects_the_celery_executor(production):
    from platform_assets.definitions import build_definitions

    defs = build_definitions(production.settings)
    for job in ("daily_ingestion", "refresh_warehouse_and_features", "retrain_fraud_model"):
        assert defs.resolve_job_def(job).executor_def.name == "celery", job
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "celery"
    local = build_definitions(load_settings({**production.env, "PLATFORM_PROFILE": "local"}))
    assert local.resolve_job_def("daily_ingestion").executor_def.name != "celery"


def _start_worker(production: Production, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(DEPLOY_DIR), os.environ.get("PYTHONPATH")])),
           "PYTHONWARNINGS": "ignore"}
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the caller
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--loglevel=INFO",
         "--concurrency=2", "--without-gossip", "--without-mingle", f"--hostname=platform-test-{production.uid}@%h"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    worker.log_file = log
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the Celery worker exited ({worker.returncode}):\n{log_path.read_text()[-3000:]}")
        if b" ready." in log_path.read_bytes():
            return worker
        time.sleep(0.5)
    _stop_worker(worker)
    pytest.fail(f"the Celery worker was not ready in {WORKER_READY_SECONDS}s:\n{log_path.read_text()[-3000:]}")


def _stop_worker(worker: subprocess.Popen) -> None:
    """Stop the worker we started and its pool processes (its own process group), by id."""
    stop_process_group(worker)
    worker.log_file.close()


@pytest.mark.slow
def test_job_runs_on_a_celery_worker(production, instance):
    from platform_assets.simulator import SimulationConfig, write_landing_zone

    day = date(2026, 3, 2)
    write_landing_zone(
        SimulationConfig(start_date=day - timedelta(days=1), days=2, n_customers=60, n_merchants=10,
                         transactions_per_day=120),
        production.settings.landing_dir,
    )
    worker_log = production.root / "celery-worker.log"
    worker = _start_worker(production, worker_log)
    try:
        # The way a run worker executes a run: the job's own executor (Celery, from the profile) ships each step
        # to the broker; the instance is DAGSTER_HOME=deploy/production.
        run = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "platform_assets.definitions", "-a", "defs",
             "-j", "daily_ingestion", "--tags", json.dumps({"dagster/partition": day.isoformat()})],
            cwd=PROJECT_ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"}, capture_output=True, text=True,
            timeout=JOB_SECONDS, check=False,
        )
    finally:
        _stop_worker(worker)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}\nworker:\n{worker_log.read_text()[-3000:]}"

    runs = instance.get_runs(filters=dg.RunsFilter(job_name="daily_ingestion"))
    assert len(runs) == 1 and runs[0].is_success and runs[0].tags["dagster/partition"] == day.isoformat()
    records = instance.all_logs(runs[0].run_id)
    worker_events = [r for r in records if r.dagster_event and r.dagster_event.is_engine_event
                     and "in celery worker" in (r.dagster_event.message or "")]
    hosts = {r.dagster_event.engine_event_data.metadata["Celery worker"].value for r in worker_events}
    ingestion_steps = {"raw_customers", "raw_merchants", "raw_transactions", "raw_chargebacks", "landed_files"}
    assert {r.step_key for r in worker_events} == ingestion_steps
    assert all(h.startswith(f"platform-test-{production.uid}@") for h in hosts), hosts

    # Every step is in the duckdb_writer pool (limit 1): the worker had two processes, yet they never overlapped.
    spans = {}
    for r in records:
        if r.dagster_event and r.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
            spans.setdefault(r.step_key, {})[r.dagster_event.event_type_value] = r.timestamp
    ordered = sorted(spans.values(), key=lambda s: s["STEP_START"])
    assert len(ordered) == len(ingestion_steps)
    assert all(a["STEP_SUCCESS"] <= b["STEP_START"] for a, b in itertools.pairwise(ordered))

    import duckdb

    with duckdb.connect(str(production.settings.warehouse_path), read_only=True) as con:
        loaded = con.execute(
            "SELECT count(*), min(partition_date), max(partition_date) FROM raw.transactions"
        ).fetchone()
    assert loaded[0] > 0 and loaded[1] == loaded[2] == day
    logs = production.s3.client().list_objects_v2(Bucket=production.env["PLATFORM_DAGSTER_COMPUTE_LOGS_BUCKET"],
                                                  Prefix=production.env["PLATFORM_DAGSTER_COMPUTE_LOGS_PREFIX"] + "/")
    keys = [o["Key"] for o in logs.get("Contents", [])]
    assert any(k.endswith((".out", ".err")) for k in keys), f"no compute logs in the S3 bucket: {keys}"
