"""load_settings(environ=...): the one place that reads the environment."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from platform_assets.lib.landing import first_landed_day, partition_path, snapshot_path
from platform_assets.resources import PlatformStorage
from platform_assets.settings import PROJECT_ROOT, load_settings


def test_defaults_without_any_variable():
    s = load_settings(environ={})
    data = (PROJECT_ROOT / "data").resolve()
    assert s.profile == "local"
    assert s.data_dir == data
    assert s.landing_dir == data / "landing"
    # A developer's data/ may hold a demo's landing zone: the partitions then start on its first day.
    assert (s.partition_start, s.partition_start_source) in {
        (date(2026, 1, 1), "default"), (first_landed_day(s.landing_dir), "landing zone")}
    assert s.warehouse_path == data / "warehouse" / "warehouse.duckdb"
    assert s.exports_dir == data / "exports"
    assert PlatformStorage(data_dir=str(s.data_dir)).reports_dir() == data / "reports"
    assert s.feature_store_yaml == PROJECT_ROOT / "feature_repo" / "feature_store.yaml"
    assert s.mlflow_tracking_uri == f"sqlite:///{data / 'mlflow' / 'mlflow.db'}"
    assert s.mlflow_artifact_location == (data / "mlflow" / "artifacts").as_uri()
    assert (s.feast_project, s.mlflow_experiment, s.model_name) == ("fraud_platform", "fraud_detection",
                                                                   "fraud_detector")
    assert s.mlflow_ui_url == "http://127.0.0.1:5000"  # what `make mlflow` serves
    assert s.dbt_env() == {"PLATFORM_DATA_DIR": str(data), "PLATFORM_DBT_TARGET": "local"}


def test_data_dir_moves_every_derived_path(tmp_path):
    s = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path.resolve()
    storage = PlatformStorage(data_dir=str(s.data_dir))
    for path in (s.landing_dir, s.warehouse_path, s.exports_dir, storage.reports_dir(), storage.exports_dir()):
        assert tmp_path.resolve() in path.parents
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
    assert s.dbt_env()["PLATFORM_DATA_DIR"] == str(tmp_path.resolve())


def test_explicit_variables_win(tmp_path):
    s = load_settings(environ={
        "PLATFORM_DATA_DIR": str(tmp_path),
        "PLATFORM_LANDING_DIR": str(tmp_path / "elsewhere"),
        "PLATFORM_PARTITION_START": "2025-06-01",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "PLATFORM_MODEL_NAME": "m",
        "PLATFORM_MLFLOW_UI_URL": "https://mlflow.example.org/",
    })
    assert s.landing_dir == (tmp_path / "elsewhere").resolve()
    assert s.partition_start == date(2025, 6, 1)
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.model_name == "m"
    assert s.mlflow_ui_url == "https://mlflow.example.org"


@pytest.mark.parametrize("relative", ["data", "./data", "../data"])
def test_relative_data_dir_is_rejected(relative):
    with pytest.raises(ValueError, match="absolute"):
        load_settings(environ={"PLATFORM_DATA_DIR": relative})


@pytest.mark.parametrize("profile", ["prod", "LOCAL", "", "staging"])
def test_unknown_profile_is_rejected(profile):
    with pytest.raises(ValueError, match="PLATFORM_PROFILE"):
        load_settings(environ={"PLATFORM_PROFILE": profile})


def test_production_profile_picks_its_feature_store_yaml(tmp_path):
    s = load_settings(environ={"PLATFORM_PROFILE": "production", "PLATFORM_DATA_DIR": str(tmp_path)})
    assert s.profile == "production"
    assert s.feature_store_yaml == PROJECT_ROOT / "feature_repo" / "feature_store.production.yaml"
    assert s.feature_store_yaml.is_file()
    # Without a DuckLake catalog the production profile keeps the DuckDB file (one machine).
    assert s.dbt_env()["PLATFORM_DBT_TARGET"] == "production_file"
    assert s.warehouse_writer_pool == "duckdb_writer"


def test_the_ducklake_warehouse_needs_the_shared_store_and_unpools_ingestion(tmp_path):
    lake = {"PLATFORM_PROFILE": "production", "PLATFORM_DATA_DIR": str(tmp_path),
            "PLATFORM_WAREHOUSE_CATALOG": "postgres:host=db dbname=lake"}
    with pytest.raises(ValueError, match="PLATFORM_SHARED_STORE_URL"):
        load_settings(environ=lake)
    with pytest.raises(ValueError, match="PLATFORM_PROFILE"):
        load_settings(environ={**lake, "PLATFORM_PROFILE": "local", "PLATFORM_SHARED_STORE_URL": "s3://b"})
    with pytest.raises(ValueError, match="s3://"):
        load_settings(environ={**lake, "PLATFORM_SHARED_STORE_URL": "/mnt/nfs/platform"})
    s = load_settings(environ={**lake, "PLATFORM_SHARED_STORE_URL": "s3://bucket/platform/"})
    assert s.dbt_env()["PLATFORM_DBT_TARGET"] == "production"
    assert s.warehouse_writer_pool is None
    assert s.warehouse_data_url == "s3://bucket/platform/warehouse/"
    assert s.exports_dir == "s3://bucket/platform/exports"


def test_environ_argument_is_isolated_from_the_process_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_DATA_DIR", "relative/would/fail")
    monkeypatch.setenv("PLATFORM_PROFILE", "nonsense")
    s = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path)})
    assert s.profile == "local" and s.data_dir == Path(tmp_path).resolve()


def test_the_warehouse_connection_gets_the_duckdb_memory_limit(tmp_path):
    """Ingestion runs DuckDB in the job's own process: without a limit it took 11 GB at 10M transactions."""
    from platform_assets.definitions import build_resources

    for environ, expected in (({}, "3.7 GiB"), ({"PLATFORM_DUCKDB_MEMORY_LIMIT": "1GB"}, "953.6 MiB")):
        settings = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path), **environ})
        settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        with build_resources(settings)["warehouse"].get_connection() as con:
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == expected


def test_partitions_start_where_the_landed_data_starts(tmp_path):
    landing = tmp_path / "landing"
    assert load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path)}).partition_start_source == "default"
    for source, day in (("transactions", date(2026, 9, 3)), ("chargebacks", date(2026, 9, 2)),
                        ("transactions", date(2026, 10, 1))):
        partition_path(landing, source, day).parent.mkdir(parents=True)
    snapshot_path(landing, "customers").parent.mkdir(parents=True)
    (landing / "transactions" / "date=2026-02-30").mkdir()  # no such day: not a partition folder
    (landing / "transactions" / "archive").mkdir()
    s = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path)})
    assert (s.partition_start, s.partition_start_source) == (date(2026, 9, 2), "landing zone")
    pinned = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_PARTITION_START": "2026-01-05"})
    assert (pinned.partition_start, pinned.partition_start_source) == (date(2026, 1, 5), "PLATFORM_PARTITION_START")


def test_evidently_ui_address_and_the_links_address_are_settings(tmp_path):
    s = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path)})
    assert (s.evidently_host, s.evidently_port, s.evidently_url) == ("127.0.0.1", 8001, "http://127.0.0.1:8001")
    assert s.evidently_workspace_dir == tmp_path.resolve() / "evidently"
    assert PlatformStorage(data_dir=str(s.data_dir)).evidently_workspace_dir() == s.evidently_workspace_dir
    # Under Docker or on a remote host the UI listens on all interfaces and the links name the proxy.
    s = load_settings(environ={"PLATFORM_EVIDENTLY_HOST": "0.0.0.0", "PLATFORM_EVIDENTLY_PORT": "9001",
                               "PLATFORM_EVIDENTLY_URL": "https://reports.example.org/evidently/"})
    assert (s.evidently_host, s.evidently_port) == ("0.0.0.0", 9001)
    assert s.evidently_url == "https://reports.example.org/evidently"
    assert load_settings(environ={"PLATFORM_EVIDENTLY_PORT": "9001"}).evidently_url == "http://127.0.0.1:9001"


def test_evidently_retention_days(tmp_path):
    assert load_settings(environ={}).evidently_keep_days == 30
    assert load_settings(environ={"PLATFORM_EVIDENTLY_KEEP_DAYS": "0"}).evidently_keep_days == 0
    with pytest.raises(ValueError, match="KEEP_DAYS"):
        load_settings(environ={"PLATFORM_EVIDENTLY_KEEP_DAYS": "-1"})


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("PLATFORM_EVIDENTLY_PORT", "80a", "an integer"),
    ("PLATFORM_SERVING_REFRESH_SECONDS", "soon", "a number"),
    ("PLATFORM_PARTITION_START", "2026-13-01", "a date YYYY-MM-DD"),
])
def test_a_malformed_variable_is_named_in_the_error(name, value, expected):
    with pytest.raises(ValueError, match=f"{name} must be {expected}, got '{value}'"):
        load_settings(environ={name: value})


def test_freshness_settings_are_read_and_checked(tmp_path):
    """The hour the daily reports are due and the model's maximum age reach the freshness policies."""
    base = {"PLATFORM_DATA_DIR": str(tmp_path)}
    s = load_settings(environ=base)
    assert (s.report_due_hour, s.model_max_age_days) == (6, 30)
    s = load_settings(environ={**base, "PLATFORM_REPORT_DUE_HOUR": "9", "PLATFORM_MODEL_MAX_AGE_DAYS": "14"})
    assert (s.report_due_hour, s.model_max_age_days) == (9, 14)
    for name, value in (("PLATFORM_REPORT_DUE_HOUR", "0"), ("PLATFORM_REPORT_DUE_HOUR", "24"),
                        ("PLATFORM_MODEL_MAX_AGE_DAYS", "0")):
        with pytest.raises(ValueError, match=name):
            load_settings(environ={**base, name: value})


def test_chargeback_api_settings_and_its_token_stay_out_of_settings(tmp_path):
    from platform_assets.resources.profile import build_resources
    from platform_assets.settings import chargeback_api_token

    env = {"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_CHARGEBACK_API_PORT": "9102",
           "PLATFORM_CHARGEBACK_API_FAULTS": "429@2", "PLATFORM_CHARGEBACK_API_TOKEN": "s3cret"}
    settings = load_settings(env)
    assert (settings.chargeback_api_url, settings.chargeback_api_host, settings.chargeback_api_faults) == (
        "http://127.0.0.1:9102", "127.0.0.1", "429@2")
    assert settings.chargeback_api_data_path == tmp_path / "sources" / "chargeback_api" / "chargebacks.jsonl"
    assert settings.chargeback_api_token_configured and "s3cret" not in repr(settings)
    assert chargeback_api_token(env) == "s3cret" and chargeback_api_token({}) is None
    api = build_resources(settings)["chargeback_api"]
    assert api.url == "http://127.0.0.1:9102" and "s3cret" not in repr(api)


def test_the_sources_file_chooses_the_modes_and_the_first_partition(tmp_path):
    """`make demo` records the live source systems it created; the environment still wins, and a bad mode is
    named with where it came from."""
    from platform_assets.settings import write_sources_file

    write_sources_file(tmp_path, {"master_data": "database", "chargebacks": "api", "transactions": "stream"},
                       date(2026, 9, 3))
    s = load_settings({"PLATFORM_DATA_DIR": str(tmp_path)})
    assert s.sources.as_dict() == {"master_data": "database", "chargebacks": "api", "transactions": "stream"}
    assert s.sources.file_sources == () and s.sources.origin == "sources.json"
    assert (s.partition_start, s.partition_start_source) == (date(2026, 9, 3), "sources.json")
    s = load_settings({"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_TRANSACTIONS_SOURCE": "files"})
    assert s.sources.transactions == "files" and s.sources.file_sources == ("transactions",)
    with pytest.raises(ValueError, match="PLATFORM_CHARGEBACKS_SOURCE.*'ftp'"):
        load_settings({"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_CHARGEBACKS_SOURCE": "ftp"})
    with pytest.raises(ValueError, match="unknown source modes"):
        write_sources_file(tmp_path, {"transactions": "kafka"}, None)


@pytest.mark.parametrize(("tracking", "artifacts", "expected"), [
    # An mlflow server chooses (mlflow-artifacts:/ with --serve-artifacts): no folder, no S3 keys on the clients.
    ("http://mlflow:5000", None, ""),
    ("https://mlflow.example.org", None, ""),
    # The deployments' explicit proxied root is kept as given.
    ("http://mlflow:5000", "mlflow-artifacts:/fraud_detection", "mlflow-artifacts:/fraud_detection"),
    # A database URI has no server to proxy through: the data directory's folder, unless told otherwise.
    ("postgresql+psycopg://u@db/mlflow", None, "DATA"),
    ("postgresql+psycopg://u@db/mlflow", "s3://bucket/mlflow", "s3://bucket/mlflow"),
])
def test_mlflow_artifact_location_default_follows_the_tracking_uri(tmp_path, tracking, artifacts, expected):
    env = {"PLATFORM_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": tracking}
    if artifacts:
        env["PLATFORM_MLFLOW_ARTIFACTS"] = artifacts
    s = load_settings(environ=env)
    want = (tmp_path.resolve() / "mlflow" / "artifacts").as_uri() if expected == "DATA" else expected
    assert s.mlflow_artifact_location == want


def test_serving_log_dir_is_on_the_shared_store_when_one_is_named(tmp_path):
    local = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path)})
    assert local.serving_log_dir == tmp_path.resolve() / "serving" / "predictions"
    shared = load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_PROFILE": "production",
                                    "PLATFORM_SHARED_STORE_URL": "s3://bucket/platform/"})
    assert shared.serving_log_dir == "s3://bucket/platform/serving/predictions"
    storage = PlatformStorage(data_dir=str(shared.data_dir), shared_root=shared.shared_store_url)
    assert str(storage.serving_log_dir()) == "s3://bucket/platform/serving/predictions"
