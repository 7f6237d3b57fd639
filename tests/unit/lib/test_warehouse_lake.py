"""Pure helpers of the DuckLake warehouse and the shared store: quoting, redaction, conflict detection, retries."""

import duckdb
import pytest

from platform_assets.lib import object_store, warehouse_lake

CATALOG = "postgres:host=db port=5432 dbname=lake user=platform password=s3cr'et"


def test_attach_sql_quotes_the_catalog_and_path_and_refuses_other_catalogs():
    sql = warehouse_lake.attach_sql(CATALOG, "s3://bucket/it's/warehouse/")
    assert "'ducklake:postgres:host=db port=5432 dbname=lake user=platform password=s3cr''et'" in sql
    assert "DATA_PATH 's3://bucket/it''s/warehouse/'" in sql
    with pytest.raises(ValueError, match="postgres:"):
        warehouse_lake.attach_sql("sqlite:/tmp/lake.db", "s3://b/")


@pytest.mark.parametrize("catalog", [CATALOG, "postgres:password=abc host=db", "postgres:host=db PASSWORD = 'a b c'"])
def test_the_password_never_survives_redaction(catalog):
    message = f'IO Error: Failed to attach "ducklake:{catalog}": connection to {catalog} refused'
    redacted = warehouse_lake.redact(message, catalog)
    for secret in ("s3cr", "abc", "a b c"):
        assert secret not in redacted
    assert "host=db" in redacted and "***" in redacted


def test_attach_errors_name_the_catalog_without_its_password():
    con = duckdb.connect()
    try:
        with pytest.raises(warehouse_lake.WarehouseUnavailableError) as raised:
            warehouse_lake.attach(con, "postgres:host=127.0.0.1 port=1 dbname=nowhere password=hunter2", "s3://b/w/")
    finally:
        con.close()
    assert "hunter2" not in str(raised.value) and "port=1" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def _conflict() -> Exception:
    return duckdb.TransactionException(
        "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\nTransaction conflict - "
        'attempting to insert into table with index "1" - but another transaction has deleted from it')


def test_a_conflict_is_recognised_also_under_the_rollback_error_that_follows_it():
    try:
        try:
            raise _conflict()
        except duckdb.TransactionException:
            raise duckdb.TransactionException("cannot rollback - no transaction is active")
    except duckdb.TransactionException as exc:
        assert warehouse_lake.is_conflict(exc)
    assert not warehouse_lake.is_conflict(duckdb.IOException("Failed to commit DuckLake transaction: S3 403"))


def test_run_with_retries_retries_conflicts_only():
    calls, logged = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise _conflict()
        return "committed"

    assert warehouse_lake.run_with_retries(flaky, log=logged.append, base_delay=0.001) == "committed"
    assert len(calls) == 3 and len(logged) == 2
    with pytest.raises(ValueError):
        warehouse_lake.run_with_retries(lambda: (_ for _ in ()).throw(ValueError("bad row")), base_delay=0.001)
    with pytest.raises(duckdb.TransactionException):
        warehouse_lake.run_with_retries(lambda: (_ for _ in ()).throw(_conflict()), attempts=2, base_delay=0.001)


def test_the_s3_secret_takes_its_values_as_parameters_and_the_chain_without_keys():
    sql, params = object_store.s3_secret_sql({"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "x'y",
                                              "AWS_ENDPOINT_URL_S3": "http://minio:9000", "AWS_REGION": "eu-west-1"})
    assert "x'y" not in sql and "AK" not in sql and params == ["eu-west-1", "AK", "x'y", "minio:9000"]
    assert "USE_SSL false" in sql and "URL_STYLE 'path'" in sql
    sql, params = object_store.s3_secret_sql({})
    assert "PROVIDER credential_chain" in sql and params == ["us-east-1"]


def test_join_keeps_urls_urls():
    assert object_store.join("s3://bucket/root/", "exports", "x.parquet") == "s3://bucket/root/exports/x.parquet"
    assert str(object_store.join("/data", "exports")) == "/data/exports"
