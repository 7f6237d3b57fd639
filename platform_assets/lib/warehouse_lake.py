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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from platform_assets.lib import duckdb_extensions, object_store

if TYPE_CHECKING:
    import duckdb

ALIAS = "warehouse"
# "Transaction conflict - attempting to insert into table with index "1" - but another transaction has deleted
# from it", "... has altered it", "... has dropped it" (DuckLake 0.3 on DuckDB 1.5, seen here with two writers).
CONFLICT_MARKERS = ("transaction conflict", "failed to commit ducklake transaction")
T = TypeVar("T")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def attach_sql(catalog: str, data_path: str, alias: str = ALIAS) -> str:
    """ATTACH takes no parameters: the catalog (a libpq string, possibly with a password) and the data path are
    quoted literals; the alias is ours."""
    if not catalog.startswith("postgres:"):
        raise ValueError("PLATFORM_WAREHOUSE_CATALOG must be a DuckLake PostgreSQL catalog, "
                         "'postgres:host=... port=... dbname=... user=...' (libpq keywords)")
    return (f"ATTACH IF NOT EXISTS {_literal('ducklake:' + catalog)} AS {alias} "
            f"(DATA_PATH {_literal(data_path)}, METADATA_SCHEMA 'ducklake')")


def attach(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str, alias: str = ALIAS) -> None:
    """Attach the lake to `con` and make it the default catalog, so unqualified `raw.x` means the lake's."""
    duckdb_extensions.load(con, "ducklake", "postgres", "httpfs")
    if object_store.is_remote(data_path):
        object_store.configure_duckdb(con)
    con.execute(attach_sql(catalog, data_path, alias))
    con.execute(f"USE {alias}")


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


__all__ = ["ALIAS", "attach", "attach_sql", "is_conflict", "run_with_retries"]
