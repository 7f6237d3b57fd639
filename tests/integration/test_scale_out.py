"""The production profile on several machines, here: two Celery workers that share nothing but the servers.

Each worker has its own working directory, HOME, TMPDIR, PLATFORM_DATA_DIR and Dagster storage/compute-log
folders (distinct empty temporary folders, as on two machines); so has the process that runs each run (the "run
worker", `dagster job execute`'s part). What they share is what two machines would: PostgreSQL (Dagster's storage,
the Feast registry, MLflow's tracking, the DuckLake catalog, the system of record), Redis (the Celery broker, the
online store, the transaction stream), the S3 API server of tests/s3_server.py (the shared store), an
`mlflow server` serving the artifacts from that store, a `dask.distributed` cluster of 2 worker processes and the
chargeback API. The sources are the live ones (docs/sources.md): master data from the system-of-record database,
chargebacks from the API, transactions from the Redis stream; no landing folder exists.

The world is small (a few thousand transactions over a few days) and built once for the module; the assertions
share it. The oracle of every count is the simulator's own output (the transactions it sent), never our tables.
Everything the module creates (databases, Redis keys, bucket, processes) is removed at the end, on failure too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest

from platform_assets.lib import names
from platform_assets.settings import PROJECT_ROOT
from tests.process_helpers import free_port, stop_process_group
from tests.s3_server import s3_server
from tests.server_cleanup import delete_keys, drop_databases

pytestmark = [pytest.mark.production, pytest.mark.slow]

DEPLOY_DIR = PROJECT_ROOT / "deploy" / "production"
PG_HOST = os.environ.get("PLATFORM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PLATFORM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PLATFORM_TEST_PG_USER", "postgres")
REDIS_HOST = os.environ.get("PLATFORM_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("PLATFORM_TEST_REDIS_PORT", "6379"))

FIRST_DAY = date(2026, 3, 1)
GRAPH_DAYS = 10  # the whole graph runs over these
EXTRA_DAYS = 2  # fed afterwards: the concurrent and the killed ingestion load them
POLICY = {"PLATFORM_LABEL_MATURITY_DAYS": "2", "PLATFORM_WARMUP_DAYS": "2", "PLATFORM_HOLDOUT_DAYS": "3",
          "PLATFORM_DRIFT_WINDOW_DAYS": "3", "PLATFORM_DRIFT_MIN_ROWS": "50"}
RUN_SECONDS = 900
# Master data from the PostgreSQL system of record (the production way). True: from snapshot files in a folder of
# the test's instead, the only one the nodes would then share (how the test ran before the lake's default-database
# fix let dlt write into the lake).
MASTER_DATA_FROM_FILES = False

# A run as `dagster job execute` makes it (the job's own executor: Celery), but with an asset selection and tags,
# which that command cannot take: the run worker's part of a run launched by the daemon.
RUNNER = """
import json, sys
import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
spec = json.loads(sys.argv[1])
repo = ReconstructableRepository.for_module("platform_assets.definitions", "defs")
job = repo.get_reconstructable_job(spec["job"])
selection = [dg.AssetKey.from_user_string(k) for k in spec["assets"]] if spec.get("assets") else None
with dg.DagsterInstance.get() as instance:
    result = dg.execute_job(job, instance, tags=spec.get("tags") or None, asset_selection=selection,
                            raise_on_error=False)
    print(json.dumps({"run_id": result.run_id, "success": result.success}))
"""

# A dask.distributed cluster of 2 worker processes, as `dask scheduler` + `dask worker` on two machines would be.
DASK_CLUSTER = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                       scheduler_port=int(sys.argv[1]), dashboard_address=None)
print("ready", cluster.scheduler_address, flush=True)
while True:
    time.sleep(60)
"""


def _pg(dbname: str = "postgres", **kwargs):
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=5, **kwargs)


def _redis():
    import redis

    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=5)


def _sqlalchemy_url(db: str) -> str:
    return f"postgresql+psycopg://{quote(PG_USER)}@{PG_HOST}:{PG_PORT}/{db}"


@dataclass
class Node:
    """One machine's private folders: nothing here is seen by another node."""

    name: str
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.root / "home"), "TMPDIR": str(self.root / "tmp"),
                "PLATFORM_DATA_DIR": str(self.data_dir),
                "PLATFORM_DAGSTER_STORAGE": str(self.root / "dagster" / "storage"),
                "PLATFORM_DAGSTER_COMPUTE_LOGS": str(self.root / "dagster" / "compute_logs")}

    def make(self) -> Node:
        for sub in ("cwd", "home", "tmp", "data"):
            (self.root / sub).mkdir(parents=True)
        return self

    def files(self) -> list[Path]:
        return sorted(p.relative_to(self.root) for p in self.root.rglob("*") if p.is_file())


@dataclass
class Worker:
    node: Node
    hostname: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class World:
    uid: str
    root: Path
    env: dict[str, str]  # shared by every node: servers and the shared store, no folder
    bucket: str
    s3: object
    databases: dict[str, str]
    config: object
    workers: list[Worker] = field(default_factory=list)
    runs: dict[str, dict] = field(default_factory=dict)  # stage -> {"run_id", "success", "node"}
    run_nodes: list[Node] = field(default_factory=list)

    def node_env(self, node: Node) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("PLATFORM_", "MLFLOW_", "DAGSTER_", "AWS_"))}
        return {**base, **self.env, **node.env(), "PYTHONWARNINGS": "ignore"}

    def run(self, stage: str, job: str, assets=None, tags=None, check: bool = True) -> dict:
        node = Node(f"run-{stage}", self.root / f"run-{stage}").make()
        self.run_nodes.append(node)
        spec = {"job": job, "assets": [k.to_user_string() for k in assets] if assets else None, "tags": tags}
        done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(spec)], cwd=node.root / "cwd",
                              env=self.node_env(node), capture_output=True, text=True, timeout=RUN_SECONDS,
                              check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        result = {**(json.loads(lines[-1]) if lines else {"run_id": None, "success": False}), "node": node,
                  "stderr": done.stderr[-4000:]}
        self.runs[stage] = result
        if check:
            assert result["success"], f"{stage}: {done.stderr[-4000:]}\n{self.worker_logs()}"
        return result

    def worker_logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {w.hostname}\n{w.log_path.read_text(errors='replace')[-tail:]}" for w in self.workers)


def _check_servers() -> None:
    try:
        with _pg() as con:
            con.execute("SELECT 1")
        _redis().ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"PostgreSQL {PG_HOST}:{PG_PORT} and Redis {REDIS_HOST}:{REDIS_PORT} must be reachable: {exc}",
                    pytrace=False)


@contextmanager
def _process(command: list[str], log_path: Path, env: dict[str, str], cwd: Path, ready) -> Iterator[subprocess.Popen]:
    """A server or worker of the test in a process group of its own, ready when `ready()` says so; stopped (its
    group, by id) when the block ends."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield process
    finally:
        stop_process_group(process)
        log.close()


def _answers(url: str):
    def ready() -> bool:
        import httpx

        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False
    return ready


def _cleanup(uid: str, databases: dict[str, str]) -> None:
    # Celery prefix, Feast project suffix, streams: every key names the uid.
    delete_keys(_redis(), [f"*{uid}*"])
    drop_databases(_pg, databases.values())


def _feed(world: World, days: range) -> None:
    """The source systems as of the end of the last day in `days`: the system of record brought there, the days'
    transactions sent to the Redis stream (the chargeback API serves its whole file from the start)."""
    from platform_assets.lib.transaction_stream import open_stream
    from platform_assets.simulator.stream import replay_days
    from platform_assets.simulator.system_of_record import apply_system_of_record
    from platform_assets.tools.live_sources import end_of

    last = FIRST_DAY + timedelta(days=days[-1])
    apply_system_of_record(world.config, world.env["PLATFORM_SOURCE_DATABASE_URL"], end_of(last))
    stream = open_stream("redis", world.env["PLATFORM_STREAM_NAME"], redis_url=world.env["PLATFORM_STREAM_REDIS_URL"])
    try:
        replay_days(world.config, list(days), stream=stream)
    finally:
        stream.close()


def _master_data_files(config, landing: Path) -> None:
    """The customers and merchants snapshots only (the other sources are live)."""
    import shutil

    from platform_assets.simulator import write_landing_zone

    write_landing_zone(config, landing)
    for sub in landing.iterdir():
        if sub.name not in ("customers", "merchants"):
            shutil.rmtree(sub) if sub.is_dir() else sub.unlink()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    from platform_assets.simulator import SimulationConfig
    from platform_assets.simulator.chargeback_api import write_chargeback_api_data

    _check_servers()
    uid = uuid.uuid4().hex[:10]
    root = tmp_path_factory.mktemp("scale_out")
    databases = {kind: f"platform_test_{uid}_{kind}" for kind in ("dagster", "feast", "mlflow", "lake", "sor")}
    config = SimulationConfig(start_date=FIRST_DAY, days=GRAPH_DAYS + EXTRA_DAYS, n_customers=300, n_merchants=40,
                              transactions_per_day=400, fraud_rate=0.04, malformed_rate=0.0, max_label_delay_days=3,
                              seed=19)
    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    with _pg(autocommit=True) as con:
        for name in databases.values():
            con.execute(f'CREATE DATABASE "{name}"')
    with ExitStack() as stack:
        stack.callback(_cleanup, uid, databases)
        s3 = stack.enter_context(s3_server(root / "s3.log"))
        bucket = s3.create_bucket(f"platform-{uid}")
        servers = root / "servers"
        servers.mkdir()
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "MLFLOW_", "DAGSTER_"))}
        # MLflow's server: tracking in PostgreSQL, artifacts proxied to the bucket (clients need no shared path).
        mlflow_port = free_port()
        stack.enter_context(_process(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port",
             str(mlflow_port), "--backend-store-uri", _sqlalchemy_url(databases["mlflow"]),
             "--artifacts-destination", f"{bucket}/mlflow-artifacts", "--serve-artifacts", "--workers", "1"],
            servers / "mlflow.log", {**base_env, **s3.env(), "MLFLOW_ENABLE_TELEMETRY": "false"}, servers,
            _answers(f"http://127.0.0.1:{mlflow_port}/health")))
        # A dask.distributed cluster of 2 worker processes, in a process of its own.
        dask_port = free_port()
        stack.enter_context(_process(
            [sys.executable, "-c", DASK_CLUSTER, str(dask_port)],
            servers / "dask.log", {**base_env, **s3.env()}, servers,
            lambda: b"ready" in (servers / "dask.log").read_bytes()))
        # The chargeback API (the acquirer's service), on its own data.
        api_port = free_port()
        api_data = write_chargeback_api_data(config, servers / "chargeback_api")
        stack.enter_context(_process(
            [sys.executable, "-m", "platform_assets.simulator.chargeback_api", "--host", "127.0.0.1", "--port",
             str(api_port), "--data", str(api_data)],
            servers / "chargeback_api.log", base_env, servers, _answers(f"http://127.0.0.1:{api_port}/healthz")))
        env = {
            **s3.env(), **POLICY,
            "PLATFORM_PROFILE": "production", "PLATFORM_PARTITION_START": FIRST_DAY.isoformat(),
            "PLATFORM_SHARED_STORE_URL": bucket,
            "PLATFORM_WAREHOUSE_CATALOG": f"postgres:host={PG_HOST} port={PG_PORT} user={PG_USER} "
                                          f"dbname={databases['lake']}",
            "PLATFORM_DASK_SCHEDULER": f"tcp://127.0.0.1:{dask_port}",
            "PLATFORM_MASTER_DATA_SOURCE": "files" if MASTER_DATA_FROM_FILES else "database",
            "PLATFORM_LANDING_DIR": str(root / "master-data-landing"), "PLATFORM_CHARGEBACKS_SOURCE": "api",
            "PLATFORM_TRANSACTIONS_SOURCE": "stream",
            "PLATFORM_SOURCE_DATABASE_URL": _sqlalchemy_url(databases["sor"]),
            "PLATFORM_CHARGEBACK_API_URL": f"http://127.0.0.1:{api_port}",
            "PLATFORM_STREAM_BACKEND": "redis", "PLATFORM_STREAM_REDIS_URL": redis_url,
            "PLATFORM_STREAM_NAME": f"platform_test_{uid}:transactions",
            "PLATFORM_SCORED_STREAM_NAME": f"platform_test_{uid}:scored",
            "PLATFORM_FEAST_PROJECT": f"fraud_platform_t{uid}",
            "PLATFORM_FEAST_REGISTRY_URL": _sqlalchemy_url(databases["feast"]),
            "PLATFORM_REDIS_URL": f"{REDIS_HOST}:{REDIS_PORT}",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "PLATFORM_MLFLOW_ARTIFACTS": "mlflow-artifacts:/fraud_detection",
            "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1",
            "PLATFORM_DAGSTER_PG_HOST": PG_HOST, "PLATFORM_DAGSTER_PG_PORT": str(PG_PORT),
            "PLATFORM_DAGSTER_PG_USER": PG_USER, "PLATFORM_DAGSTER_PG_PASSWORD": "",
            "PLATFORM_DAGSTER_PG_DB": databases["dagster"],
            "PLATFORM_CELERY_BROKER_URL": redis_url, "PLATFORM_CELERY_BACKEND_URL": redis_url,
            "PLATFORM_CELERY_KEY_PREFIX": f"platform_test_{uid}:",
            # compute logs on S3 (deploy/production/dagster.yaml's S3ComputeLogManager, once it reads these)
            "PLATFORM_DAGSTER_COMPUTE_LOGS_BUCKET": bucket[5:], "PLATFORM_DAGSTER_COMPUTE_LOGS_PREFIX": "compute-logs",
            "DAGSTER_HOME": str(DEPLOY_DIR),
        }
        world = World(uid, root, env, bucket, s3, databases, config)
        if MASTER_DATA_FROM_FILES:
            _master_data_files(config, root / "master-data-landing")
        for i in (1, 2):
            node = Node(f"worker{i}", root / f"worker{i}").make()
            hostname = f"w{i}-{uid}@scale-out"
            log_path = root / f"celery-worker{i}.log"
            worker_env = {**world.node_env(node),
                          "PYTHONPATH": os.pathsep.join(filter(None, [str(DEPLOY_DIR), os.environ.get("PYTHONPATH")]))}
            process = stack.enter_context(_process(
                [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--loglevel=INFO",
                 "--concurrency=2", "--without-gossip", "--without-mingle", f"--hostname={hostname}"],
                log_path, worker_env, node.root / "cwd",
                lambda p=log_path: b" ready." in p.read_bytes()))
            world.workers.append(Worker(node, hostname, process, log_path))
        _feed(world, range(GRAPH_DAYS))
        _materialize_graph(world)
        yield world


def _materialize_graph(world: World) -> None:
    """The whole graph, stage by stage as the jobs, the sensors and the automation run it (the demo's order)."""
    from platform_assets.definitions import build_definitions
    from platform_assets.settings import load_settings

    settings = load_settings({**world.env, **Node("probe", world.root / "probe").env()})
    graph = build_definitions(settings).resolve_asset_graph()
    last = FIRST_DAY + timedelta(days=GRAPH_DAYS - 1)
    window = names.partition_range_tags(FIRST_DAY.isoformat(), last.isoformat())
    live = {names.SERVED_PREDICTIONS, names.SERVED_TRAFFIC_REPORT}

    def group(name: str) -> list[dg.AssetKey]:
        return sorted(k for k in dg.AssetSelection.groups(name).resolve(graph) if k not in live)

    scored_from = last - timedelta(days=int(POLICY["PLATFORM_DRIFT_WINDOW_DAYS"]) - 1)
    stages = [
        ("ingestion", names.DAILY_INGESTION_JOB, None, window),
        ("refresh", names.REFRESH_JOB, None, window),
        ("retrain", names.RETRAIN_JOB, None, None),
        ("serving", "__ASSET_JOB", group(names.SERVING), None),
        ("scoring", "__ASSET_JOB", group(names.SCORING),
         names.partition_range_tags(scored_from.isoformat(), last.isoformat())),
        ("monitoring", "__ASSET_JOB", group(names.MONITORING), {"dagster/partition": last.isoformat()}),
    ]
    # Stage after stage until one fails: the tests of what did run still judge it; the whole-graph test names
    # the stage that failed.
    for stage, job, assets, tags in stages:
        if not world.run(stage, job, assets=assets, tags=tags, check=False)["success"]:
            break


# --- helpers over the event log ----------------------------------------------------------------------------------


def _instance(world: World):
    return dg.DagsterInstance.from_config(str(DEPLOY_DIR))


@contextmanager
def _env(world: World) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**world.env, **Node("test", world.root / "test").env()}.items():
            mp.setenv(key, value)
        yield


def _step_hosts(instance, run_id: str) -> dict[str, set[str]]:
    """step key -> the Celery workers (hostnames) that ran it, from dagster-celery's engine events."""
    hosts: dict[str, set[str]] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        if "in celery worker" in (event.message or ""):
            hosts.setdefault(record.step_key, set()).add(event.engine_event_data.metadata["Celery worker"].value)
    return hosts


def _oracle(config, day_indices) -> dict[date, int]:
    """Distinct transactions per event day, from the simulator's own days (what the stream was sent)."""
    from platform_assets.simulator.generator import build_world, simulate_day

    world = build_world(config)
    ids: dict[date, set[str]] = {}
    for i in day_indices:
        table = simulate_day(config, world, i).transactions
        for tid, ts in zip(table.column("transaction_id").to_pylist(), table.column("event_ts").to_pylist(),
                           strict=True):
            ids.setdefault(ts.astimezone(UTC).date(), set()).add(tid)
    return {d: len(v) for d, v in ids.items()}


def _lake_counts(world: World, sql: str) -> dict:
    import duckdb

    from platform_assets.lib import warehouse_lake

    con = duckdb.connect()
    try:
        with _env(world):
            warehouse_lake.attach(con, world.env["PLATFORM_WAREHOUSE_CATALOG"], f"{world.bucket}/warehouse/")
            return dict(con.execute(sql).fetchall())
    finally:
        con.close()


def _bucket_keys(world: World) -> list[str]:
    client = world.s3.client()
    keys, token = [], None
    while True:
        kwargs = {"Bucket": world.bucket[5:], **({"ContinuationToken": token} if token else {})}
        page = client.list_objects_v2(**kwargs)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


# --- 1. the whole graph on two workers that share nothing ---------------------------------------------------------


def test_the_whole_graph_ran_and_every_asset_is_materialized(world):
    from platform_assets.definitions import build_definitions
    from platform_assets.settings import load_settings

    failed = [(stage, run["stderr"]) for stage, run in world.runs.items() if not run["success"]]
    assert not failed, f"stage {failed[0][0]} failed:\n{failed[0][1]}\n{world.worker_logs()}" if failed else ""
    with _env(world), _instance(world) as instance:
        defs = build_definitions(load_settings())
        live = {names.SERVED_PREDICTIONS, names.SERVED_TRAFFIC_REPORT}
        missing = [k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys - live
                   if instance.get_latest_materialization_event(k) is None]
        assert not missing, missing
        for stage, run in world.runs.items():
            assert instance.get_run_by_id(run["run_id"]).is_success, stage


def test_steps_ran_on_both_workers(world):
    with _env(world), _instance(world) as instance:
        hosts = set()
        for run in world.runs.values():
            for ran_on in _step_hosts(instance, run["run_id"]).values():
                hosts |= ran_on
    assert hosts == {w.hostname for w in world.workers}, hosts


# Files a node may hold after the runs: caches and logs, each rebuilt or merely informative, never platform data.
ALLOWED = {
    # dbt's partial-parse cache and its run artifacts (manifest, run_results, dbt.log): rebuilt when missing
    ("data", "warehouse", "dbt-parse"),
    # Dagster's compute logs (stdout/stderr of each step) until they go to S3, and its run-storage scratch
    ("dagster", "compute_logs"),
    ("dagster", "storage"),
    # pip/uv/matplotlib/fontconfig caches in HOME, Python temporary files
    ("home",),
    ("tmp",),
}


def _unexpected(files: list[Path]) -> list[Path]:
    return [p for p in files if not any(p.parts[:len(a)] == a for a in ALLOWED)]


def test_no_platform_data_landed_in_any_node_s_private_folders(world):
    for node in [w.node for w in world.workers] + world.run_nodes:
        files = node.files()
        assert not _unexpected(files), (node.name, _unexpected(files))
        assert not [p for p in files if p.suffix in (".parquet", ".duckdb", ".ubj", ".json") and
                    p.parts[:2] == ("data", "exports")], node.name


def test_exports_training_sets_mlflow_artifacts_and_lake_files_are_objects_in_the_bucket(world):
    keys = _bucket_keys(world)
    prefixes = {k.split("/")[0] for k in keys}
    assert any(k.startswith("exports/") and k.endswith(".parquet") for k in keys), sorted(prefixes)
    assert any(k.startswith("warehouse/") and k.endswith(".parquet") for k in keys), sorted(prefixes)
    assert any(k.startswith("mlflow-artifacts/") for k in keys), sorted(prefixes)
    assert any("training_sets/" in k for k in keys), sorted(prefixes)


def test_transactions_loaded_equal_the_oracle(world):
    expected = _oracle(world.config, range(GRAPH_DAYS))
    got = _lake_counts(world, "SELECT partition_date, count(*) FROM raw.transactions GROUP BY 1")
    assert {d: n for d, n in got.items() if d in expected} == {d: n for d, n in expected.items()
                                                               if FIRST_DAY <= d < FIRST_DAY + timedelta(GRAPH_DAYS)}


# --- 4. a worker killed mid-step is retried; counts stay exact -----------------------------------------------------


def test_a_worker_killed_mid_step_is_retried_and_counts_stay_exact(world):
    """SIGKILL of the Celery pool process that runs raw_transactions while it loads the extra days from the
    stream: the step is run again (see notes in deploy/production: acks_late + reject_on_worker_lost), the run
    succeeds, and each day holds exactly the simulator's transactions."""
    _feed(world, range(GRAPH_DAYS, GRAPH_DAYS + EXTRA_DAYS))
    first = FIRST_DAY + timedelta(days=GRAPH_DAYS)
    last = first + timedelta(days=EXTRA_DAYS - 1)
    node = Node("run-killed", world.root / "run-killed").make()
    world.run_nodes.append(node)
    spec = {"job": names.DAILY_INGESTION_JOB, "assets": None,
            "tags": names.partition_range_tags(first.isoformat(), last.isoformat())}
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(spec)], cwd=node.root / "cwd",
                              env=world.node_env(node), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    killed = None
    try:
        with _env(world), _instance(world) as instance:
            deadline = time.monotonic() + 300
            while killed is None and time.monotonic() < deadline and runner.poll() is None:
                runs = instance.get_runs(dg.RunsFilter(job_name=names.DAILY_INGESTION_JOB,
                                                       tags={names.PARTITION_RANGE_START_TAG: first.isoformat()}))
                for record in instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_START) if runs else []:
                    if record.step_key == names.asset_name(names.RAW_TRANSACTIONS):
                        time.sleep(0.5)
                        killed = record.dagster_event.pid
                        os.kill(killed, signal.SIGKILL)
                        break
                time.sleep(0.1)
        out, err = runner.communicate(timeout=RUN_SECONDS)
    finally:
        if runner.poll() is None:
            stop_process_group(runner)
    assert killed, f"raw_transactions never started:\n{err[-3000:] if 'err' in dir() else ''}"
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert result["success"], f"{err[-4000:]}\n{world.worker_logs()}"
    with _env(world), _instance(world) as instance:
        starts = [r for r in instance.all_logs(result["run_id"], of_type=dg.DagsterEventType.STEP_START)
                  if r.step_key == names.asset_name(names.RAW_TRANSACTIONS)]
    assert len(starts) >= 2 and starts[0].dagster_event.pid == killed and starts[-1].dagster_event.pid != killed
    expected = _oracle(world.config, range(GRAPH_DAYS + EXTRA_DAYS))
    got = _lake_counts(world, "SELECT partition_date, count(*) FROM raw.transactions GROUP BY 1")
    assert got == expected
    dupes = _lake_counts(world, "SELECT 'dupes', count(*) - count(DISTINCT transaction_id) FROM raw.transactions")
    assert dupes == {"dupes": 0}


# --- 3. the model trained on the cluster matches the local profile's trainer ---------------------------------------


def test_the_cluster_trained_model_matches_an_in_process_fit_of_the_same_snapshot(world):
    """fraud_model ran on the Dask cluster (PLATFORM_DASK_SCHEDULER) reading the snapshot from the shared store; the
    local profile's trainer (in-process) fit on the same snapshot scores the same holdout within 0.01 PR AUC."""
    from platform_assets.definitions import build_definitions
    from platform_assets.lib.run_config import ModelConfig
    from platform_assets.lib.training_sets import latest_manifest
    from platform_assets.settings import load_settings
    from platform_assets.training.assets import fit

    with _env(world), _instance(world) as instance:
        event = instance.get_latest_materialization_event(names.FRAUD_MODEL)
        assert event is not None, "fraud_model never materialized"
        metadata = event.asset_materialization.metadata
        storage = build_definitions(load_settings()).resources["storage"]
        manifest = latest_manifest(storage.training_sets_dir())
        assert str(manifest.path).startswith("s3://")
        local = fit(manifest, ModelConfig())
    assert metadata["trainer"].value == "dask", metadata.get("trainer")
    cluster = metadata["holdout_pr_auc"].value
    assert abs(cluster - local.metrics.pr_auc) <= 0.01, (cluster, local.metrics.pr_auc)
