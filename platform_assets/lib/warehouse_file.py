"""The DuckDB warehouse file itself: is it locked, is it corrupt, and a bounded wait for its write lock.

Pure DuckDB, no Dagster, so that `make doctor` and the backup command (`platform_assets.tools.warehouse_backup`)
classify a failure exactly as the `warehouse` resource does.

The two failures need opposite handling. A lock conflict passes: another process holds the file, so waiting (a
bounded while) is right. Corruption never passes: retrying only delays the verdict, so it is raised at once and
names the recovery command. They used to be told apart by "lock" in the message, which also matches DuckDB's
checksum error ("... in b*lock* at location 274432"), so a corrupt file was reported as locked after a minute of
retries. The markers below are DuckDB 1.5's own messages, reproduced against real files
(tests/integration/test_warehouse_recovery.py): a lock held by another process; bytes overwritten in a data or
metadata block; a garbage, empty or truncated file; a corrupt write-ahead log.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb

# 'IO Error: Could not set lock on file "...": Conflicting lock is held in /usr/bin/python3 (PID 4242) ...'
LOCK_CONFLICT_MARKERS = ("could not set lock on file", "conflicting lock is held")
CORRUPTION_MARKERS = (
    "corrupt database file",  # checksum mismatch in a block, at connect (metadata) or at first read (data)
    "not a valid duckdb database file",  # bad magic bytes: garbage or zeroed header, empty file
    "could not read enough bytes from file",  # truncated file
    "corrupt wal file",  # checksum mismatch while replaying the write-ahead log
    "failure while replaying wal file",
)
RECOVERY_COMMAND = "make restore"
RECOVERY_MODULE = "python -m platform_assets.tools.warehouse_backup"


class WarehouseLockedError(RuntimeError):
    pass


class WarehouseCorruptError(RuntimeError):
    pass


def is_lock_conflict(error: str) -> bool:
    text = error.lower()
    return any(marker in text for marker in LOCK_CONFLICT_MARKERS)


def is_corruption(error: str) -> bool:
    text = error.lower()
    return any(marker in text for marker in CORRUPTION_MARKERS)


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


def corrupt_message(database: str, error: str) -> str:
    return (
        f"The DuckDB warehouse {database} is corrupt, not locked: DuckDB cannot read it, and retrying will not "
        f"help. Recover with `{RECOVERY_COMMAND}` ({RECOVERY_MODULE} restore): it puts the newest verified backup "
        "in place and keeps the corrupt file beside it as <name>.corrupt-<time> (`make backup` takes backups; "
        f"`{RECOVERY_MODULE} list` lists them). With no backup, `{RECOVERY_MODULE} set-aside` moves the file "
        "away and the next ingestion and dbt runs rebuild it from the landing zone. "
        "docs/how-to.md#corrupt-warehouse has the details. DuckDB said: " + error
    )


def corrupt_error(database: str, error: Exception) -> WarehouseCorruptError:
    return WarehouseCorruptError(corrupt_message(database, str(error)))


def connect(
    database: str | Path, *, read_only: bool = False, config: dict | None = None, lock_timeout_seconds: float = 60.0
) -> duckdb.DuckDBPyConnection:
    """Connect, retrying with back-off while another process holds the lock, for at most lock_timeout_seconds;
    a corrupt file raises WarehouseCorruptError at once, any other error is DuckDB's own."""
    database = str(database)
    deadline = time.monotonic() + lock_timeout_seconds
    delay = 0.1
    while True:
        try:
            return duckdb.connect(database, read_only=read_only, config=config or {})
        except duckdb.Error as exc:
            if is_corruption(str(exc)):
                raise corrupt_error(database, exc) from exc
            if not is_lock_conflict(str(exc)):
                raise
            if time.monotonic() + delay > deadline:
                raise WarehouseLockedError(locked_message(database, str(exc))) from exc
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


__all__ = [
    "RECOVERY_COMMAND",
    "WarehouseCorruptError",
    "WarehouseLockedError",
    "connect",
    "corrupt_message",
    "is_corruption",
    "is_lock_conflict",
    "lock_holder",
    "locked_message",
]
