"""The cheap SQLite probes of lib/online_store_health on real files: missing, empty, garbage, truncated, whole."""

import sqlite3
from datetime import UTC, datetime

from platform_assets.lib import online_store_health as health


def _store(path, rows: int = 500) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE proj_view__wide (entity_key BLOB PRIMARY KEY, v) WITHOUT ROWID")
    con.executemany("INSERT INTO proj_view__wide VALUES (?, ?)", [(str(i).encode(), "x" * 50) for i in range(rows)])
    con.commit()
    con.close()


def test_a_whole_store_has_no_problem(tmp_path):
    _store(tmp_path / "s.db")
    assert health.sqlite_problem(tmp_path / "s.db", "proj") is None
    assert health.integrity_problem(tmp_path / "s.db") is None


def test_each_kind_of_loss_is_named(tmp_path):
    path = tmp_path / "s.db"
    assert health.sqlite_problem(path, "proj").status == health.MISSING
    assert not path.exists()  # a probe never creates the file
    path.write_bytes(b"")
    assert health.sqlite_problem(path, "proj").status == health.EMPTY
    path.write_bytes(b"\x00garbage" * 4096)
    assert health.sqlite_problem(path, "proj").status == health.CORRUPT
    path.unlink()
    _store(path)
    path.write_bytes(path.read_bytes()[:4096])
    problem = health.sqlite_problem(path, "proj")
    assert problem.status == health.CORRUPT and "truncated" in problem.reason
    path.unlink()
    _store(path, rows=0)
    assert health.sqlite_problem(path, "proj").status == health.EMPTY  # tables, but no rows
    assert health.sqlite_problem(path, "other").status == health.EMPTY


def test_move_aside_keeps_the_file_and_its_journal(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"broken")
    (tmp_path / "s.db-journal").write_bytes(b"journal")
    moved = health.move_aside(path, datetime(2026, 12, 1, 18, 0, tzinfo=UTC))
    assert moved.name == "s.db.corrupt-20261201T180000000000Z" and moved.read_bytes() == b"broken"
    assert (tmp_path / f"{moved.name}-journal").read_bytes() == b"journal"
    assert not path.exists() and not (tmp_path / "s.db-journal").exists()
