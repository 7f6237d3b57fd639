"""The one place that reads the environment.

Every path, URI and profile switch the platform uses is resolved here, once, into a frozen `Settings`. Stages
receive what they need through resources built from it (see `definitions.py`), so a test can point the whole
platform at a temporary directory by setting `PLATFORM_DATA_DIR` and nothing else, and the production profile is
a matter of environment variables, not code.

Secrets (database passwords, webhook tokens) are never read here: they stay in the environment and reach the
resources as `dg.EnvVar`, which Dagster resolves at run time and hides in the UI.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

from platform_assets.lib import names, object_store
from platform_assets.lib.landing import first_landed_day
from platform_assets.lib.transaction_stream import SCORED_STREAM

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("local", "production")
# Knobs of the monitoring -> retrain -> promotion loop (fields of resources.policy.LoopPolicy) that the
# environment may override, e.g. PLATFORM_LABEL_MATURITY_DAYS=21. Types are checked by the resource.
POLICY_ENV = {
    "PLATFORM_LABEL_MATURITY_DAYS": "label_maturity_days",
    "PLATFORM_WARMUP_DAYS": "warmup_days",
    "PLATFORM_HOLDOUT_DAYS": "holdout_days",
    "PLATFORM_DRIFT_WINDOW_DAYS": "drift_window_days",
    "PLATFORM_DRIFT_SHARE_THRESHOLD": "drift_share_threshold",
    "PLATFORM_DRIFT_MIN_ROWS": "drift_min_rows",
    "PLATFORM_REVIEW_BUDGET": "review_budget",
    "PLATFORM_MIN_FRAUD_RECALL": "min_fraud_recall",
    "PLATFORM_RETRAIN_COOLDOWN_DAYS": "retrain_cooldown_days",
    "PLATFORM_RETRAIN_WAIT_DAYS": "retrain_wait_days",
    "PLATFORM_RETRAIN_HALF_LIFE_DAYS": "retrain_half_life_days",
}
EXECUTORS = ("multiprocess", "celery")
# How the scoring service explains a score: XGBoost's pred_contribs, approximate (Saabas, the default) or exact
# (TreeSHAP, ~0.35 ms a row on the demo model: docs/serving.md).
REASON_METHODS = ("approx", "exact")
# The first daily partition when neither PLATFORM_PARTITION_START nor a landed file says otherwise.
DEFAULT_PARTITION_START = date(2026, 1, 1)
# How each source system reaches the platform (docs/sources.md). Files are the contract every source can fall
# back to; the others are the source systems themselves: customers and merchants from their operational database
# (system of record), chargebacks from the acquirer's paged API, transactions from an event stream.
SOURCE_MODES = {
    "master_data": ("files", "database"),
    "chargebacks": ("files", "api"),
    "transactions": ("files", "stream"),
}
SOURCE_MODE_ENV = {
    "master_data": "PLATFORM_MASTER_DATA_SOURCE",
    "chargebacks": "PLATFORM_CHARGEBACKS_SOURCE",
    "transactions": "PLATFORM_TRANSACTIONS_SOURCE",
}
# The landing-zone folders of each source (lib/landing.py).
LANDING_SOURCES = {"master_data": ("customers", "merchants"), "chargebacks": ("chargebacks",),
                   "transactions": ("transactions",)}
STREAM_BACKENDS = ("embedded", "redis")
DEFAULT_CHARGEBACK_API_PORT = 8002
CHARGEBACK_API_TOKEN_ENV = "PLATFORM_CHARGEBACK_API_TOKEN"
# What the simulated chargeback API serves, under the sources directory.
CHARGEBACK_API_DATA_FILE = Path("chargeback_api") / "chargebacks.jsonl"


def chargeback_api_token(environ: dict[str, str] | None = None) -> str | None:
    """The bearer token the simulated chargeback API requires, for the service process itself: a secret, so it is
    not part of `Settings` (Dagster reads it at run time as dg.EnvVar)."""
    env = os.environ if environ is None else environ
    return env.get(CHARGEBACK_API_TOKEN_ENV) or None


def sources_dir(data_dir: str | Path) -> Path:
    """The simulated source systems of the local profile (the system-of-record database file, the chargeback
    API's data, the embedded transaction log) and `sources.json`, which says how each source arrives."""
    return Path(data_dir) / "sources"


def sources_file(data_dir: str | Path) -> Path:
    return sources_dir(data_dir) / "sources.json"


@dataclass(frozen=True)
class SourceModes:
    """How each source arrives: env variable > data/sources/sources.json (written by the simulator that created
    the live sources) > files."""

    master_data: str = "files"
    chargebacks: str = "files"
    transactions: str = "files"
    # Where the modes came from, for `make doctor` and the Definitions' descriptions.
    origin: str = "default"

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SOURCE_MODES}

    @property
    def live(self) -> bool:
        return any(mode != "files" for mode in self.as_dict().values())

    @property
    def file_sources(self) -> tuple[str, ...]:
        """The landing-zone sources (lib/landing.py) that arrive as files."""
        return tuple(source for name, sources in LANDING_SOURCES.items() if getattr(self, name) == "files"
                     for source in sources)


def write_sources_file(data_dir: str | Path, modes: dict[str, str], first_day: date | None) -> Path:
    """Record how the simulated sources arrive (and their first day, where the daily partitions start), atomically:
    the Definitions read it when they load."""
    unknown = {k: v for k, v in modes.items() if v not in SOURCE_MODES.get(k, ())}
    if unknown:
        raise ValueError(f"unknown source modes {unknown}; each is one of {SOURCE_MODES}")
    path = sources_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**modes, "first_day": first_day.isoformat() if first_day else None}, indent=2) + "\n")
    tmp.replace(path)
    return path


def _read_sources_file(data_dir: Path) -> dict:
    path = sources_file(data_dir)
    if not path.is_file():
        return {}
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete it to ingest from files") from None
    if not isinstance(recorded, dict):
        raise ValueError(f"{path} must hold a JSON object")  # noqa: TRY004 (a bad file, like bad JSON)
    return recorded


def _source_modes(env, recorded: dict) -> SourceModes:
    chosen, origins = {}, set()
    for name, allowed in SOURCE_MODES.items():
        variable = SOURCE_MODE_ENV[name]
        if env.get(variable):
            mode, origin = env[variable], variable
        elif recorded.get(name):
            mode, origin = recorded[name], "sources.json"
        else:
            mode, origin = "files", "default"
        if mode not in allowed:
            raise ValueError(f"{origin}: source mode {mode!r} for {name} is not one of {allowed}")
        chosen[name] = mode
        origins.add(origin)
    return SourceModes(**chosen, origin=", ".join(sorted(origins)))


def exports_dir(root: str | Path):
    """The dbt marts as parquet (dbt-duckdb's `external_root` in dbt_project/profiles.yml): what Feast, training
    and monitoring read. `root` is the data directory or the shared store's URL (then the result is a URL)."""
    return object_store.join(root, "exports")


def serving_log_dir(root: str | Path) -> str | Path:
    """Where the scoring service appends every served prediction (JSON lines, one folder per UTC day) and
    `served_predictions` reads them. `root` is the data directory or the shared store's URL (then a URL: the
    service uploads one object per flush, serving/log.py)."""
    return object_store.join(root, "serving", "predictions")


def evidently_workspace_dir(data_dir: str | Path) -> Path:
    """The Evidently workspace (one project, one snapshot per report per day) that `make evidently` serves."""
    return Path(data_dir) / "evidently"


def default_mlflow_artifact_location(tracking_uri: str, data_dir: str | Path) -> str:
    """The artifact root of a new experiment when PLATFORM_MLFLOW_ARTIFACTS is unset. An `mlflow server`
    (http(s) tracking URI) chooses it itself: with `--serve-artifacts` it is `mlflow-artifacts:/<id>`, which the
    server proxies to its `--artifacts-destination` (S3), so clients need no shared folder and no S3 credentials;
    "" says so (the experiment is created without a location). A database or file tracking URI has no server to
    proxy through: the data directory's folder."""
    if urlparse(tracking_uri).scheme in ("http", "https"):
        return ""
    return (Path(data_dir) / "mlflow" / "artifacts").as_uri()


DEFAULT_EVIDENTLY_PORT = 8001
DEFAULT_EVIDENTLY_KEEP_DAYS = 30


def dbt_environment(data_dir: str | Path, target: str) -> dict[str, str]:
    """Variables `dbt_project/profiles.yml` reads, so dbt writes where the rest of the platform reads."""
    return {"PLATFORM_DATA_DIR": str(data_dir), "PLATFORM_DBT_TARGET": target}


@dataclass(frozen=True)
class Settings:
    profile: str
    data_dir: Path
    landing_dir: Path
    partition_start: date
    # Where partition_start came from: "PLATFORM_PARTITION_START", "sources.json" (the first day of the simulated
    # source systems), "landing zone" (its first landed day, so the
    # partitions start where the data does) or "default" (nothing landed yet).
    partition_start_source: str
    dbt_project_dir: Path
    feature_repo_dir: Path
    feast_project: str
    mlflow_tracking_uri: str
    # "" when the MLflow server chooses (default_mlflow_artifact_location).
    mlflow_artifact_location: str
    mlflow_experiment: str
    model_name: str
    # Where people open the MLflow UI (`make mlflow`): the links in Dagit's metadata point there.
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    executor: str = "multiprocess"
    celery_key_prefix: str = "platform:"
    # Only whether a webhook is configured: its URL may carry a token, so it reaches the resource as dg.EnvVar.
    webhook_configured: bool = False
    policy_overrides: tuple[tuple[str, str], ...] = ()
    # DuckDB takes 80% of RAM by default; past this limit it spills to disk. dbt reads the same variable itself
    # (dbt_project/profiles.yml), so ingestion and dbt are bounded alike.
    duckdb_memory_limit: str = "4GB"
    # The real-time scoring service (platform_assets/serving). The bearer token itself stays in the environment
    # (PLATFORM_SERVING_TOKEN, read as dg.EnvVar); only whether one is set is known here.
    serving_host: str = "127.0.0.1"
    serving_port: int = 8000
    serving_url: str = "http://127.0.0.1:8000"
    serving_token_configured: bool = False
    serving_refresh_seconds: float = 5.0
    serving_max_body_bytes: int = 1_048_576
    serving_reasons: str = "approx"
    # The Evidently UI over the report workspace (`make evidently`): where it listens, and the address the report
    # links in asset metadata use (PLATFORM_EVIDENTLY_URL: another host or a proxy under Docker or remote).
    evidently_host: str = "127.0.0.1"
    evidently_port: int = DEFAULT_EVIDENTLY_PORT
    evidently_url: str = f"http://127.0.0.1:{DEFAULT_EVIDENTLY_PORT}"
    # Days of snapshots per report the workspace keeps (0: all). The UI parses every snapshot into memory when it
    # starts: a feature drift snapshot of 38 columns is 2.7 MB, and 23 of them took 37 s and 577 MB to load here.
    evidently_keep_days: int = DEFAULT_EVIDENTLY_KEEP_DAYS
    # The Dagster instance whose pool slots `make doctor` reads: DAGSTER_HOME, else the Makefile's default.
    dagster_home: Path | None = None
    # How many warehouse backups `make backup` keeps (platform_assets.tools.warehouse_backup); older ones go.
    warehouse_backups_keep: int = 7

    # A landed file of a day this many days before the newest landed day (or older) is not loaded by the landing
    # sensor on its own: a backfill from the UI loads it (docs/data-contracts.md, "Late and changed files").
    landing_lookback_days: int = 35
    # Freshness policies (Dagster shows them on each asset): day D's monitoring reports exist by this hour (UTC) of
    # D+1; the daily ingestion runs at 01:00, scoring and monitoring follow within minutes.
    report_due_hour: int = 6
    # `fraud_model` fails freshness when its last training is older than this: a model nobody retrained for a
    # month has not been checked against a month of new fraud, drift or not.
    model_max_age_days: int = 30
    # Source systems (docs/sources.md). Locally the system of record is a SQLite file and the stream an embedded
    # log, both under data/sources; in production the URLs name PostgreSQL and Redis. A URL that may hold a
    # password reaches its resource as dg.EnvVar; only whether one is set is known here.
    sources: SourceModes = SourceModes()
    source_database_url: str = ""
    source_database_url_from_env: bool = False
    chargeback_api_url: str = f"http://127.0.0.1:{DEFAULT_CHARGEBACK_API_PORT}"
    chargeback_api_port: int = DEFAULT_CHARGEBACK_API_PORT
    stream_backend: str = "embedded"
    stream_name: str = "platform:transactions"
    # The simulated chargeback API (platform_assets/simulator/chargeback_api.py): where it listens, the failures it
    # injects (a fault plan, docs/sources.md), and whether a bearer token is set (PLATFORM_CHARGEBACK_API_TOKEN,
    # read by the resource as dg.EnvVar and by the service through `chargeback_api_token`).
    chargeback_api_host: str = "127.0.0.1"
    chargeback_api_faults: str = ""
    chargeback_api_token_configured: bool = False
    # The Redis holding the transaction stream (stream_backend == "redis"); it may carry a password, so the
    # resource reads it as dg.EnvVar("PLATFORM_STREAM_REDIS_URL") when it came from the environment.
    stream_redis_url: str = "redis://127.0.0.1:6379/0"
    stream_redis_url_from_env: bool = False
    # The most events one stream micro-batch (one run of raw_transactions) loads.
    stream_batch_events: int = 50_000
    # Real-time velocity features (features/velocity_online.py): the scoring service appends every scored
    # transaction to `scored_stream_name` (same backend as the transaction stream) unless PLATFORM_SCORED_STREAM=off;
    # the consumer reads at most `velocity_batch_events` per batch and polls every `velocity_poll_seconds`.
    scored_stream_name: str = SCORED_STREAM
    scored_stream_enabled: bool = True
    # On Redis the scored stream is capped (XADD MAXLEN ~): nothing trims it otherwise, and the consumer only needs
    # its recent entries (PLATFORM_SCORED_STREAM_MAXLEN; 0: no cap).
    scored_stream_maxlen: int = 1_000_000
    velocity_batch_events: int = 1_000
    velocity_poll_seconds: float = 0.02
    # `make dev` starts the consumer beside the UI (PLATFORM_VELOCITY_CONSUMER=off: it does not).
    velocity_consumer_in_dev: bool = True

    # The shared store (lib/object_store.py): PLATFORM_SHARED_STORE_URL, an s3:// URL in production, where exports,
    # training sets, reports, the prediction log and the DuckLake warehouse's data files live; "" locally, where
    # they stay under data_dir.
    shared_store_url: str = ""
    # The production warehouse is DuckLake when PLATFORM_WAREHOUSE_CATALOG is set (its PostgreSQL catalog; the
    # value may hold a password, so it reaches the resources as dg.EnvVar): only whether it is set is known here.
    warehouse_catalog_configured: bool = False
    # A dask.distributed scheduler (tcp://host:8786): fraud_model trains with xgboost.dask on its cluster.
    dask_scheduler: str = ""

    @property
    def shared_root(self) -> str:
        """Where the shared files live: the shared store's URL, else the data directory."""
        return self.shared_store_url or str(self.data_dir)

    @property
    def dbt_target(self) -> str:
        """The dbt target (dbt_project/profiles.yml): local; production (DuckLake); production_file (the production
        profile on one machine, without a lake)."""
        if self.profile == "production" and not self.warehouse_catalog_configured:
            return "production_file"
        return self.profile

    @property
    def warehouse_writer_pool(self) -> str | None:
        """The pool of the assets that write raw tables. A DuckDB file has one writer: all of them share the
        `duckdb_writer` pool (limit 1). DuckLake serialises commits itself and the writers retry a conflicting
        commit (lib/warehouse_lake.py), so ingestion runs unpooled, partitions in parallel; dbt keeps the pool."""
        return None if self.warehouse_catalog_configured else names.DUCKDB_WRITER_POOL

    @property
    def warehouse_data_url(self) -> str:
        """The DuckLake warehouse's data files (parquet), on the shared store."""
        return str(object_store.join(self.shared_root, "warehouse")).rstrip("/") + "/"

    @property
    def sources_dir(self) -> Path:
        return sources_dir(self.data_dir)

    @property
    def chargeback_api_data_path(self) -> Path:
        """The chargebacks the simulated API serves (`write_chargeback_api_data`), one JSON object a line."""
        return self.sources_dir / CHARGEBACK_API_DATA_FILE

    @property
    def stream_log_path(self) -> Path:
        """The embedded transaction log of the local profile (stream_backend == "embedded")."""
        return self.sources_dir / "transaction_stream.sqlite"

    @property
    def scored_stream_log_path(self) -> Path:
        """The embedded scored-transactions stream: a SQLite file of its own, so a lock on the transaction log
        (a loader, a replay) never stalls the scoring service's prediction-log writer thread."""
        return self.sources_dir / "scored_stream.sqlite"

    @property
    def velocity_dir(self) -> Path:
        """The online velocity consumer's own files: its committed stream positions (SQLite) and heartbeat."""
        return self.data_dir / "features" / "velocity"

    @property
    def dlt_pipelines_dir(self) -> Path:
        """dlt's working folder for the system-of-record extraction, emptied before every run: its cursor lives
        in the warehouse, committed with each load, never here."""
        return self.sources_dir / "dlt"

    @property
    def serving_log_dir(self) -> str | Path:
        """A Path locally, a URL on the shared store."""
        return serving_log_dir(self.shared_root)

    @property
    def evidently_workspace_dir(self) -> Path:
        return evidently_workspace_dir(self.data_dir)

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse" / "warehouse.duckdb"

    @property
    def warehouse_backup_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def exports_dir(self):
        """The parquet exports: a Path locally, a URL (str) on the shared store."""
        return exports_dir(self.shared_root)

    @property
    def feature_store_yaml(self) -> Path:
        name = "feature_store.yaml" if self.profile == "local" else f"feature_store.{self.profile}.yaml"
        return self.feature_repo_dir / name

    def celery_config(self) -> dict:
        """Celery settings (no secrets) shared by the executor and the workers: every Redis key under the prefix."""
        return {
            "worker_prefetch_multiplier": 1,
            # A step is acknowledged when it ends, not when a worker takes it: a pool process killed mid-step (OOM,
            # SIGKILL, a lost machine's worker restarting) puts its step back on the queue and another process runs
            # it again, in the same run. Every step may run again: ingestion and dbt commit in one transaction, so a
            # killed attempt leaves nothing behind. A worker lost whole is redelivered after Redis' visibility
            # timeout (kombu's default, 1 h: it must exceed the longest step, or a running step is delivered twice).
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "broker_transport_options": {
                "max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5,
                "global_keyprefix": self.celery_key_prefix,
            },
            "result_backend_transport_options": {"global_keyprefix": self.celery_key_prefix},
        }

    def dbt_env(self) -> dict[str, str]:
        return dbt_environment(self.data_dir, self.dbt_target)


def _typed(env, name: str, default: str, kind):
    """`env[name]` (or `default`) as `kind` (int, float, date.fromisoformat), or an error naming the variable."""
    raw = env.get(name) or default
    try:
        return kind(raw)
    except ValueError:
        expected = {int: "an integer", float: "a number"}.get(kind, "a date YYYY-MM-DD")
        raise ValueError(f"{name} must be {expected}, got {raw!r}") from None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    profile = env.get("PLATFORM_PROFILE", "local")
    if profile not in PROFILES:
        raise ValueError(f"PLATFORM_PROFILE={profile!r} is not one of {PROFILES}")
    raw_data_dir = env.get("PLATFORM_DATA_DIR")
    if raw_data_dir and not Path(raw_data_dir).is_absolute():
        # dbt resolves paths against its own working directory: a relative path would split the platform.
        raise ValueError(f"PLATFORM_DATA_DIR must be an absolute path, got {raw_data_dir!r}")
    data_dir = Path(raw_data_dir or PROJECT_ROOT / "data").resolve()
    landing_dir = Path(env.get("PLATFORM_LANDING_DIR", data_dir / "landing")).resolve()
    default_tracking = f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
    executor = env.get("PLATFORM_EXECUTOR", "celery" if profile == "production" else "multiprocess")
    if executor not in EXECUTORS:
        raise ValueError(f"PLATFORM_EXECUTOR={executor!r} is not one of {EXECUTORS}")
    serving_port = _typed(env, "PLATFORM_SERVING_PORT", "8000", int)
    serving_reasons = env.get("PLATFORM_SERVING_REASONS", "approx")
    if serving_reasons not in REASON_METHODS:
        raise ValueError(f"PLATFORM_SERVING_REASONS={serving_reasons!r} is not one of {REASON_METHODS}")
    evidently_port = _typed(env, "PLATFORM_EVIDENTLY_PORT", str(DEFAULT_EVIDENTLY_PORT), int)
    evidently_keep_days = _typed(env, "PLATFORM_EVIDENTLY_KEEP_DAYS", str(DEFAULT_EVIDENTLY_KEEP_DAYS), int)
    if evidently_keep_days < 0:
        raise ValueError(f"PLATFORM_EVIDENTLY_KEEP_DAYS must be 0 (keep all) or more, got {evidently_keep_days}")
    dagster_home = env.get("DAGSTER_HOME")
    backups_keep = _typed(env, "PLATFORM_WAREHOUSE_BACKUPS_KEEP", "7", int)
    if backups_keep < 1:
        raise ValueError(f"PLATFORM_WAREHOUSE_BACKUPS_KEEP must be at least 1, got {backups_keep}")
    recorded_sources = _read_sources_file(data_dir)
    sources = _source_modes(env, recorded_sources)
    first_source_day = (date.fromisoformat(recorded_sources["first_day"]) if recorded_sources.get("first_day")
                        else None)
    if env.get("PLATFORM_PARTITION_START"):
        partition_start = _typed(env, "PLATFORM_PARTITION_START", "", date.fromisoformat)
        partition_start_source = "PLATFORM_PARTITION_START"
    elif (first_landed := min(filter(None, (first_landed_day(landing_dir), first_source_day)),
                              default=None)) is not None:
        partition_start = first_landed
        partition_start_source = "landing zone" if first_landed == first_landed_day(landing_dir) else "sources.json"
    else:
        partition_start, partition_start_source = DEFAULT_PARTITION_START, "default"
    lookback = _typed(env, "PLATFORM_LANDING_LOOKBACK_DAYS", "35", int)
    if lookback < 0:
        raise ValueError(f"PLATFORM_LANDING_LOOKBACK_DAYS must be 0 or more, got {lookback}")
    report_due_hour = int(env.get("PLATFORM_REPORT_DUE_HOUR", "6"))
    if not 1 <= report_due_hour <= 23:
        raise ValueError(f"PLATFORM_REPORT_DUE_HOUR must be an hour from 1 to 23, got {report_due_hour}")
    model_max_age_days = int(env.get("PLATFORM_MODEL_MAX_AGE_DAYS", "30"))
    if model_max_age_days < 1:
        raise ValueError(f"PLATFORM_MODEL_MAX_AGE_DAYS must be at least 1, got {model_max_age_days}")
    stream_backend = env.get("PLATFORM_STREAM_BACKEND", "redis" if profile == "production" else "embedded")
    if stream_backend not in STREAM_BACKENDS:
        raise ValueError(f"PLATFORM_STREAM_BACKEND={stream_backend!r} is not one of {STREAM_BACKENDS}")
    chargeback_api_port = _typed(env, "PLATFORM_CHARGEBACK_API_PORT", str(DEFAULT_CHARGEBACK_API_PORT), int)
    shared_store_url = env.get("PLATFORM_SHARED_STORE_URL", "").rstrip("/")
    if shared_store_url and not object_store.is_remote(shared_store_url):
        raise ValueError(f"PLATFORM_SHARED_STORE_URL must be an s3:// URL, got {shared_store_url!r}")
    if env.get("PLATFORM_WAREHOUSE_CATALOG") and not shared_store_url:
        raise ValueError("PLATFORM_WAREHOUSE_CATALOG (the DuckLake warehouse) needs PLATFORM_SHARED_STORE_URL: the "
                         "lake's data files and the exports live on the shared store")
    if env.get("PLATFORM_WAREHOUSE_CATALOG") and profile != "production":
        raise ValueError("PLATFORM_WAREHOUSE_CATALOG is the production profile's warehouse: set PLATFORM_PROFILE="
                         "production too (the local profile keeps the DuckDB file)")
    dask_scheduler = env.get("PLATFORM_DASK_SCHEDULER", "")
    if dask_scheduler and "://" not in dask_scheduler:
        raise ValueError(f"PLATFORM_DASK_SCHEDULER must be a scheduler address like tcp://host:8786, got {dask_scheduler!r}")
    return Settings(
        shared_store_url=shared_store_url,
        warehouse_catalog_configured=bool(env.get("PLATFORM_WAREHOUSE_CATALOG")),
        dask_scheduler=dask_scheduler,
        sources=sources,
        source_database_url=env.get("PLATFORM_SOURCE_DATABASE_URL")
        or f"sqlite:///{sources_dir(data_dir) / 'system_of_record.sqlite'}",
        source_database_url_from_env=bool(env.get("PLATFORM_SOURCE_DATABASE_URL")),
        chargeback_api_url=env.get("PLATFORM_CHARGEBACK_API_URL",
                                   f"http://127.0.0.1:{chargeback_api_port}").rstrip("/"),
        chargeback_api_port=chargeback_api_port,
        chargeback_api_host=env.get("PLATFORM_CHARGEBACK_API_HOST", "127.0.0.1"),
        chargeback_api_faults=env.get("PLATFORM_CHARGEBACK_API_FAULTS", ""),
        chargeback_api_token_configured=bool(env.get(CHARGEBACK_API_TOKEN_ENV)),
        stream_backend=stream_backend,
        stream_name=env.get("PLATFORM_STREAM_NAME", "platform:transactions"),
        stream_redis_url=env.get("PLATFORM_STREAM_REDIS_URL") or "redis://127.0.0.1:6379/0",
        stream_redis_url_from_env=bool(env.get("PLATFORM_STREAM_REDIS_URL")),
        stream_batch_events=_typed(env, "PLATFORM_STREAM_BATCH_EVENTS", "50000", int),
        scored_stream_name=env.get("PLATFORM_SCORED_STREAM_NAME") or SCORED_STREAM,
        scored_stream_enabled=env.get("PLATFORM_SCORED_STREAM", "on").lower() not in ("off", "0", "false", "no"),
        scored_stream_maxlen=_typed(env, "PLATFORM_SCORED_STREAM_MAXLEN", "1000000", int),
        velocity_batch_events=_typed(env, "PLATFORM_VELOCITY_BATCH_EVENTS", "1000", int),
        velocity_poll_seconds=_typed(env, "PLATFORM_VELOCITY_POLL_SECONDS", "0.02", float),
        velocity_consumer_in_dev=env.get("PLATFORM_VELOCITY_CONSUMER", "on").lower() not in ("off", "0", "false", "no"),
        profile=profile,
        data_dir=data_dir,
        landing_dir=landing_dir,
        partition_start=partition_start,
        partition_start_source=partition_start_source,
        dbt_project_dir=PROJECT_ROOT / "dbt_project",
        feature_repo_dir=PROJECT_ROOT / "feature_repo",
        feast_project=env.get("PLATFORM_FEAST_PROJECT", "fraud_platform"),
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI", default_tracking),
        mlflow_artifact_location=env.get("PLATFORM_MLFLOW_ARTIFACTS") or default_mlflow_artifact_location(
            env.get("MLFLOW_TRACKING_URI", default_tracking), data_dir),
        mlflow_experiment=env.get("PLATFORM_MLFLOW_EXPERIMENT", "fraud_detection"),
        model_name=env.get("PLATFORM_MODEL_NAME", "fraud_detector"),
        mlflow_ui_url=env.get("PLATFORM_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/"),
        executor=executor,
        celery_key_prefix=env.get("PLATFORM_CELERY_KEY_PREFIX", "platform:"),
        webhook_configured=bool(env.get("PLATFORM_WEBHOOK_URL")),
        policy_overrides=tuple((field, env[var]) for var, field in POLICY_ENV.items() if env.get(var)),
        duckdb_memory_limit=env.get("PLATFORM_DUCKDB_MEMORY_LIMIT", "4GB"),
        serving_host=env.get("PLATFORM_SERVING_HOST", "127.0.0.1"),
        serving_port=serving_port,
        serving_url=env.get("PLATFORM_SERVING_URL", f"http://127.0.0.1:{serving_port}"),
        serving_token_configured=bool(env.get("PLATFORM_SERVING_TOKEN")),
        serving_refresh_seconds=_typed(env, "PLATFORM_SERVING_REFRESH_SECONDS", "5", float),
        serving_max_body_bytes=_typed(env, "PLATFORM_SERVING_MAX_BODY_BYTES", str(1_048_576), int),
        serving_reasons=serving_reasons,
        evidently_host=env.get("PLATFORM_EVIDENTLY_HOST", "127.0.0.1"),
        evidently_port=evidently_port,
        evidently_keep_days=evidently_keep_days,
        evidently_url=env.get("PLATFORM_EVIDENTLY_URL", f"http://127.0.0.1:{evidently_port}").rstrip("/"),
        landing_lookback_days=lookback,
        report_due_hour=report_due_hour,
        model_max_age_days=model_max_age_days,
        dagster_home=Path(dagster_home).resolve() if dagster_home else data_dir / "dagster",
        warehouse_backups_keep=backups_keep,
    )
