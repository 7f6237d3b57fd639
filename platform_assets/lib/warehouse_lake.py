"""The production warehouse: DuckLake, a catalog in PostgreSQL and parquet data files on the shared store.

A DuckDB file has one writer and locks out even readers (lib/warehouse_file.py), so the local profile funnels every
writer through the `duckdb_writer` pool of one slot, and all of it happens on the machine holding the file. DuckLake
keeps DuckDB as the engine (the same SQL, dbt-duckdb, the same ingestion code) but moves the catalog into
PostgreSQL, which serialises commits, and the data into immutable parquet files on the shared store, which any
machine reads. Writers on different machines run at once; a commit that touched what another commit touched first
fails with a conflict and is retried whole (`run_with_retries`): every write of the platform is one idempotent
transaction (a partition replaced, a cursor moved with its rows), so re-running it is safe.

Pure DuckDB, no Dagster: the resource, dbt's plugin and the tools attach the lake the same way.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from platform_assets.lib import duckdb_extensions, object_store

if TYPE_CHECKING:
    import duckdb

ALIAS = "warehouse"
# "Failed to commit DuckLake transaction. Transaction conflict - attempting to insert into table with index "1" -
# but another transaction has deleted from it" (DuckLake on DuckDB 1.5.5, seen here with two writers). Only the
# conflict: a failed commit for another reason (PostgreSQL or S3 down) is not retried as if it were one.
CONFLICT_MARKERS = ("transaction conflict",)
T = TypeVar("T")


def redact(text: str, catalog: str | None = None) -> str:
    """`text` without the catalog's password: DuckDB repeats the whole libpq string in its errors."""
    if catalog:
        text = text.replace(catalog, redacted_catalog(catalog))
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def redacted_catalog(catalog: str) -> str:
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", catalog, flags=re.IGNORECASE)


class WarehouseUnavailableError(RuntimeError):
    """The lake could not be attached; the message names the catalog without its password."""


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def attach_sql(catalog: str, data_path: str, alias: str = ALIAS) -> str:
    """ATTACH takes no parameters: the catalog (a libpq string, possibly with a password) and the data path are
    quoted literals; the alias is ours."""
    if not catalog.startswith("postgres:"):
        raise ValueError("PLATFORM_WAREHOUSE_CATALOG must be a DuckLake PostgreSQL catalog, "
                         "'postgres:host=... port=... dbname=... user=...' (libpq keywords)")
    return (f"ATTACH IF NOT EXISTS {_literal('ducklake:' + catalog)} AS {alias} "
            f"(DATA_PATH {_literal(data_path)})")


def attach(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str, alias: str = ALIAS) -> None:
    """Attach the lake to `con` and make it the default catalog, so unqualified `raw.x` means the lake's."""
    import duckdb

    duckdb_extensions.load(con, "ducklake", "postgres", "httpfs")
    if object_store.is_remote(data_path):
        object_store.configure_duckdb(con)
    # The first ATTACH of a new lake creates its catalog tables; two machines doing that at once race in
    # PostgreSQL (CREATE SCHEMA IF NOT EXISTS is not atomic: "duplicate key value violates unique constraint").
    # The loser attaches again and finds the catalog the winner made.
    for attempt in range(1, 6):
        try:
            con.execute(attach_sql(catalog, data_path, alias))
            break
        except duckdb.Error as exc:
            if "failed to initialize ducklake" not in str(exc).lower() or attempt == 5:
                # Never the password: the error goes to the step's failure event, the UI and the logs. `from
                # None`, because Dagster serialises the exception chain too.
                raise WarehouseUnavailableError(
                    f"the DuckLake warehouse {redacted_catalog(catalog)} (data {data_path}) does not attach: "
                    f"{redact(str(exc), catalog)}") from None
            time.sleep(0.2 * attempt * (0.5 + random.random()))
    con.execute(f"USE {alias}")


def connect(catalog: str, data_path: str, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as its default catalog (`attach`).

    Cursors of it start in the in-memory catalog, not the lake (see ingestion/system_of_record.py for dlt).
    Opening `ducklake:<catalog>` as the database itself would make them default to the lake, but a second process
    opening it that way while another did spun forever inside duckdb.connect here (DuckDB 1.5.5)."""
    import duckdb

    con = duckdb.connect(":memory:", config=config or {})
    try:
        attach(con, catalog, data_path)
    except BaseException:
        con.close()
        raise
    return con


def _libpq(catalog: str) -> str:
    return catalog.removeprefix("postgres:")


@contextmanager
def exclusive(catalog: str, keys: Iterable[str]) -> Iterator[None]:
    """Hold PostgreSQL advisory locks on `keys` (in sorted order: no deadlock) on the lake's catalog database.

    DuckLake has no constraints, and its commit conflicts only when both writers deleted rows that existed: two
    first loads of the same day (nothing to delete yet) would both commit, and the day be there twice. Writers of
    the same partition or cursor therefore take its lock first; writers of different days do not wait for each
    other. Session locks: a killed process's connection closes and PostgreSQL releases them, no stuck lock."""
    import psycopg

    keys = sorted(set(keys))
    if not keys:
        yield
        return
    try:
        connection = psycopg.connect(_libpq(catalog), autocommit=True, application_name="platform-warehouse-lock")
    except psycopg.Error as exc:
        raise WarehouseUnavailableError(f"the DuckLake catalog {redacted_catalog(catalog)} is unreachable: "
                                        f"{redact(str(exc), catalog)}") from None
    try:
        for key in keys:
            connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 19))", [f"platform:{key}"])
        yield
    finally:
        connection.close()


def is_conflict(error: BaseException | str) -> bool:
    """A commit conflict, also when it is the context of the error raised after it: a failed COMMIT has already
    rolled back, so a writer's `except: con.rollback()` raises "no transaction is active" over it."""
    seen = 0
    while error is not None and seen < 10:
        text = str(error).lower()
        if any(marker in text for marker in CONFLICT_MARKERS):
            return True
        if isinstance(error, str):
            return False
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def run_with_retries(work: Callable[[], T], *, attempts: int = 8, log: Callable[[str], None] | None = None,
                     base_delay: float = 0.2) -> T:
    """`work()`, again after a commit conflict, with jittered back-off; any other error at once."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as exc:  # duckdb.TransactionException, or an error raised while committing
            if not is_conflict(exc) or attempt == attempts:
                raise
            delay = base_delay * 2 ** (attempt - 1) * (0.5 + random.random())
            if log is not None:
                log(f"warehouse commit conflicted with another writer (attempt {attempt}/{attempts}); "
                    f"retrying the whole transaction in {delay:.2f} s: {str(exc)[:200]}")
            time.sleep(delay)
    raise AssertionError("unreachable")


__all__ = ["ALIAS", "WarehouseUnavailableError", "attach", "attach_sql", "connect", "exclusive", "is_conflict",
           "redact", "redacted_catalog", "run_with_retries"]
