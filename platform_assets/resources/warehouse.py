"""The warehouse: a DuckDB file locally (one writer at a time), DuckLake in production (many writers).

In production (`ducklake_catalog` set, from PLATFORM_WAREHOUSE_CATALOG) the connection is an in-memory DuckDB with
the lake attached as its default catalog (lib/warehouse_lake.py): the same SQL reaches tables whose catalog is in
PostgreSQL and whose data files are on the shared store, from any machine, with several writers at once. Writers
wrap their transaction in `run_with_retries`, which re-runs it whole after a commit conflict.

The local file:

DuckDB lets a single process hold a file read-write, and even read-only openers fail while it does
(duckdb#17158). Every writer therefore sits in the `duckdb_writer` pool (limit 1, see `dagster.yaml`) and holds
its connection only while it writes; readers downstream read the parquet exports instead of this file.

Telling a lock conflict (wait) from a corrupt file (fail at once, name `make restore`) is
`platform_assets.lib.warehouse_file`'s job, shared with `make doctor` and the backup command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from platform_assets.lib import warehouse_lake
from platform_assets.lib.run_workers import exit_with_run_worker
from platform_assets.lib.warehouse_file import (
    WarehouseCorruptError,
    WarehouseLockedError,
    connect,
    corrupt_error,
    is_corruption,
    lock_holder,
    locked_message,
)


class WarehouseResource(DuckDBResource):
    """`dagster_duckdb.DuckDBResource` plus UTC sessions, a bounded wait for the write lock, a clear lock error,
    and a corrupt file named as corrupt."""

    lock_timeout_seconds: float = Field(
        default=60.0, description="How long to wait for another process to release the file before failing"
    )
    ducklake_catalog: str | None = Field(
        default=None, description="DuckLake catalog in PostgreSQL ('postgres:host=... dbname=...'): the production "
        "warehouse; unset, `database` is a DuckDB file")
    ducklake_data_path: str | None = Field(
        default=None, description="Where the DuckLake data files live (the shared store's warehouse/ prefix)")

    @property
    def is_lake(self) -> bool:
        return bool(self.ducklake_catalog)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """DuckDBResource's own back-off waits ~100 s and then re-raises DuckDB's terse error, for any IO error:
        this one waits only for a lock conflict, at most lock_timeout_seconds."""
        config = {"custom_user_agent": "dagster", **self.connection_config}
        if self.is_lake:
            return warehouse_lake.connect(self.ducklake_catalog, self.ducklake_data_path or "", config)
        return connect(self.database, config=config, lock_timeout_seconds=self.lock_timeout_seconds)

    def checkpoint(self, con: duckdb.DuckDBPyConnection) -> None:
        """After a write to the file: fold the WAL into the file (a crash then replays nothing). A lake has no WAL
        of ours, and its CHECKPOINT compacts files and expires snapshots: maintenance, not part of a load."""
        if not self.is_lake:
            con.execute("CHECKPOINT")

    @contextmanager
    def exclusive(self, *keys: str) -> Iterator[None]:
        """Against the lake, hold the advisory locks of `keys` (a partition, a cursor) while the block runs, so
        two writers of the same thing take turns (lib/warehouse_lake.exclusive); the file's writers already do,
        in the duckdb_writer pool."""
        if not self.is_lake:
            yield
            return
        with warehouse_lake.exclusive(self.ducklake_catalog, keys):
            yield

    def write(self, work, log=None, keys: tuple[str, ...] = ()):
        """`work(con)` on a fresh connection, holding the locks of `keys`; against the lake, again on a new
        connection after a commit conflict (the work is one idempotent transaction). The file has one writer: no
        conflict to retry."""
        def once():
            with self.get_connection() as con:
                result = work(con)
                self.checkpoint(con)
                return result

        if not self.is_lake:
            return once()
        with self.exclusive(*keys):
            return warehouse_lake.run_with_retries(once, log=log)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A corrupt data block opens fine and fails only when a query reads it, so the caller's own queries
        are checked too: their corruption error becomes WarehouseCorruptError, the rest pass unchanged."""
        if self.database != ":memory:" and not self.is_lake:
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        exit_with_run_worker()
        con = self._connect()
        try:
            # ICU is built in but cannot be set through connect(config=...): set the zone per session.
            con.execute("SET TimeZone = 'UTC'")
            yield con
        except duckdb.Error as exc:
            if is_corruption(str(exc)):
                raise corrupt_error(self.database, exc) from exc
            raise
        finally:
            con.close()


__all__ = ["WarehouseCorruptError", "WarehouseLockedError", "WarehouseResource", "lock_holder", "locked_message"]
