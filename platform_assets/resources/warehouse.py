"""The DuckDB warehouse: one file, one writer at a time.

DuckDB lets a single process hold a file read-write, and even read-only openers fail while it does
(duckdb#17158). Every writer therefore sits in the `duckdb_writer` pool (limit 1, see `dagster.yaml`) and holds
its connection only while it writes; readers downstream read the parquet exports instead of this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource

WRITER_POOL = "duckdb_writer"


class WarehouseLockedError(RuntimeError):
    pass


class WarehouseResource(DuckDBResource):
    """`dagster_duckdb.DuckDBResource` (connect with back-off on lock) plus UTC sessions and a clear lock error."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            with super().get_connection() as con:
                # ICU is built in but cannot be set through connect(config=...): set the zone per session.
                con.execute("SET TimeZone = 'UTC'")
                yield con
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseLockedError(
                    f"The DuckDB warehouse {self.database} is locked by another process ({exc}). Close notebooks or "
                    "shells that opened it read-write, or wait for the running ingestion/dbt run; readers should "
                    "query the parquet exports under data/exports instead of the warehouse file."
                ) from exc
            raise


def warehouse_resource(database: Path) -> WarehouseResource:
    return WarehouseResource(database=str(database))


__all__ = ["WRITER_POOL", "WarehouseLockedError", "WarehouseResource", "warehouse_resource"]
