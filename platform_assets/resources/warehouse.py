"""The DuckDB warehouse: one file, one writer at a time.

DuckDB lets a single process hold a file read-write, and even read-only openers fail while it does
(duckdb#17158). Every writer therefore sits in the `duckdb_writer` pool (limit 1, see `dagster.yaml`) and holds
its connection only while it writes; readers downstream read the parquet exports instead of this file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field


class WarehouseLockedError(RuntimeError):
    pass


def lock_holder(error: str) -> tuple[int | None, str]:
    """The PID DuckDB names in its lock error, and that process's command line when this machine can see it."""
    match = re.search(r"PID (\d+)", error)
    if not match:
        return None, ""
    pid = int(match.group(1))
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return pid, command


def locked_message(database: str, error: str) -> str:
    pid, command = lock_holder(error)
    holder = f"process {pid}" + (f" ({command[:200]})" if command else "") if pid else "another process"
    return (
        f"The DuckDB warehouse {database} is locked by {holder}. DuckDB lets one process open the file for "
        "writing, and no one else may even read it meanwhile. What to do: if that is a Dagster run (ingestion or "
        "dbt), wait for it to finish or cancel it under Runs in the UI; if it is a notebook, shell or `duckdb` CLI, "
        "close its connection (con.close()) or stop it"
        + (f" (`kill {pid}`)" if pid else "")
        + ". To read data while runs write, query the parquet exports under data/exports "
        "(platform_assets.lib.exports.query) instead of the warehouse file. `make doctor` shows who holds the lock; "
        "docs/how-to.md#duckdb-lock-error has the details. DuckDB said: " + error
    )


class WarehouseResource(DuckDBResource):
    """`dagster_duckdb.DuckDBResource` plus UTC sessions, a bounded wait for the write lock and a clear lock error."""

    lock_timeout_seconds: float = Field(
        default=60.0, description="How long to wait for another process to release the file before failing"
    )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Connect, retrying with back-off while another process holds the lock, for at most
        lock_timeout_seconds (DuckDBResource's own back-off waits ~100 s and then re-raises DuckDB's terse error)."""
        config = {"custom_user_agent": "dagster", **self.connection_config}
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.1
        while True:
            try:
                return duckdb.connect(self.database, read_only=False, config=config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() + delay > deadline:
                    raise WarehouseLockedError(locked_message(self.database, str(exc))) from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        try:
            # ICU is built in but cannot be set through connect(config=...): set the zone per session.
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


__all__ = ["WarehouseLockedError", "WarehouseResource", "lock_holder", "locked_message"]
