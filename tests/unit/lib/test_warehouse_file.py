"""A lock conflict and a corrupt file are told apart by DuckDB's own messages (copied from DuckDB 1.5.6 here)."""

from __future__ import annotations

import pytest

from platform_assets.lib.warehouse_file import corrupt_message, is_corruption, is_lock_conflict

LOCKED = ('IO Error: Could not set lock on file "/tmp/w.duckdb": Conflicting lock is held in /usr/bin/python3.11 '
          "(PID 6983). See also https://duckdb.org/docs/stable/connect/concurrency")
CORRUPT = [
    ("IO Error: Corrupt database file: computed checksum 2271690800378035822 does not match stored checksum "
    "9979099375440673950 in block at location 274432"),
    'IO Error: The file "/tmp/w.duckdb" exists, but it is not a valid DuckDB database file!',
    'IO Error: Could not read enough bytes from file "/tmp/w.duckdb": attempted to read 3996 bytes from location 100',
    ('IO Error: Failure while replaying WAL file "/tmp/w.duckdb.wal": Corrupt WAL file: entry at byte position 16489 '
    "computed checksum 1389354339991837886 does not match stored checksum 15264728989442015988"),
]


def test_the_lock_conflict_is_a_lock_and_not_corruption():
    assert is_lock_conflict(LOCKED) and not is_corruption(LOCKED)


@pytest.mark.parametrize("error", CORRUPT)
def test_corruption_is_never_taken_for_a_lock(error):
    # "block at location" contains "lock": the old test `"lock" in message` retried these for a minute.
    assert "lock" in error.lower() or "wal" in error.lower() or "valid" in error or "enough" in error
    assert is_corruption(error) and not is_lock_conflict(error)


def test_other_io_errors_are_neither():
    error = 'IO Error: Cannot open file "/nope/w.duckdb": No such file or directory'
    assert not is_corruption(error) and not is_lock_conflict(error)


def test_the_corrupt_message_names_the_file_and_the_recovery():
    message = corrupt_message("/data/warehouse/warehouse.duckdb", CORRUPT[0])
    assert "/data/warehouse/warehouse.duckdb is corrupt, not locked" in message
    assert "make restore" in message and "set-aside" in message and "docs/how-to.md#corrupt-warehouse" in message
    assert "locked by" not in message
