"""A corrupt warehouse is named as corrupt at once, and `make backup` / `make restore` bring its data back.

Real DuckDB files, corrupted the ways a disk or a careless copy does it: bytes overwritten in a data block
(found only when a query reads it), in a metadata block (found at connect), a garbage header, a truncated file,
a corrupt write-ahead log. The lock wait is 60 s, as in the platform: a corrupt file must fail well before it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import pytest
from platform_env import local_settings

from platform_assets.lib.warehouse_file import WarehouseCorruptError, WarehouseLockedError
from platform_assets.resources.warehouse import WarehouseResource
from platform_assets.settings import PROJECT_ROOT
from platform_assets.tools import warehouse_backup
from platform_assets.tools.warehouse_backup import BackupError

ROWS = 200_000


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """A real warehouse written through the resource, as ingestion writes it: raw tables, CHECKPOINTed."""
    settings = local_settings(monkeypatch, tmp_path / "data")
    with WarehouseResource(database=str(settings.warehouse_path)).get_connection() as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(f"CREATE TABLE raw.transactions AS SELECT range AS id, 'tx-' || range AS ref, range * 0.01 "
                    f"AS amount FROM range({ROWS})")
        con.execute("CREATE TABLE raw.customers AS SELECT range AS id, 'c' || range AS name FROM range(1000)")
        con.execute("CHECKPOINT")
    return settings


def _summary(path) -> tuple:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*), sum(id), sum(amount), max(ref) FROM raw.transactions").fetchone()


def _overwrite(path, offset: int, size: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(os.urandom(size))


def _corrupt_data_block(path):
    _overwrite(path, os.path.getsize(path) // 2, 4096)


def _corrupt_metadata_block(path):
    _overwrite(path, 4096, 8192)


def _garbage_header(path):
    _overwrite(path, 0, 4096)


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _corrupt_wal(path):
    """Rows committed to the write-ahead log by a writer that died before its checkpoint, then a damaged log."""
    code = ("import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); con.execute(\"SET checkpoint_threshold = "
            "'1TB'\"); con.execute('INSERT INTO raw.customers SELECT range, NULL FROM range(5000)'); os._exit(9)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=False)
    wal = f"{path}.wal"
    _overwrite(wal, os.path.getsize(wal) // 2, 64)


CORRUPTIONS = {"data_block": _corrupt_data_block, "metadata_block": _corrupt_metadata_block,
               "garbage_header": _garbage_header, "truncated": _truncate, "wal": _corrupt_wal}


def _read_everything(con) -> None:
    con.execute("SELECT max(hash(t)) FROM raw.transactions AS t").fetchall()


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupt_warehouse_fails_at_once_naming_the_recovery(settings, corruption):
    CORRUPTIONS[corruption](settings.warehouse_path)
    warehouse = WarehouseResource(database=str(settings.warehouse_path), lock_timeout_seconds=60)
    started = time.monotonic()
    with pytest.raises(WarehouseCorruptError) as excinfo, warehouse.get_connection() as con:
        _read_everything(con)
    assert time.monotonic() - started < 5, "a corrupt file must not wait out the 60 s lock timeout"
    message = str(excinfo.value)
    assert f"{settings.warehouse_path} is corrupt, not locked" in message
    assert "make restore" in message and "locked by" not in message


def _doctor(settings) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLATFORM_DATA_DIR": str(settings.data_dir), "DAGSTER_HOME": str(settings.dagster_home)}
    return subprocess.run([sys.executable, "-m", "platform_assets.tools.doctor"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("corruption", ["metadata_block", "garbage_header", "truncated"])
def test_doctor_reports_a_corrupt_warehouse_with_the_recovery_command(settings, corruption):
    CORRUPTIONS[corruption](settings.warehouse_path)
    out = _doctor(settings)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("FIX  warehouse:"))
    assert "is corrupt, not locked" in line and "make restore" in line


def test_backup_then_corrupt_then_restore_brings_the_data_back(settings):
    before = _summary(settings.warehouse_path)
    taken = warehouse_backup.backup(settings)
    assert taken.parent == settings.data_dir / "backups" and taken.name.startswith("warehouse-")
    assert warehouse_backup.list_backups(settings) == [taken]
    assert not list(settings.warehouse_backup_dir.glob(".*")), "no temporary copy left behind"

    _corrupt_wal(settings.warehouse_path)
    _corrupt_data_block(settings.warehouse_path)
    corrupt_bytes = settings.warehouse_path.read_bytes()
    with pytest.raises(WarehouseCorruptError), WarehouseResource(
            database=str(settings.warehouse_path)).get_connection() as con:
        _read_everything(con)

    result = warehouse_backup.restore(settings)
    assert result.backup == taken
    assert _summary(settings.warehouse_path) == before
    with WarehouseResource(database=str(settings.warehouse_path)).get_connection() as con:
        _read_everything(con)
        assert con.execute("SELECT count(*) FROM raw.customers").fetchone()[0] == 1000
    # The corrupt file and its log are kept aside, never deleted.
    kept = {p.name.split(".corrupt-")[0]: p for p in result.set_aside}
    assert set(kept) == {"warehouse.duckdb", "warehouse.duckdb.wal"}
    assert kept["warehouse.duckdb"].read_bytes() == corrupt_bytes
    assert not (settings.warehouse_path.parent / "warehouse.duckdb.wal").exists()


def test_backup_refuses_a_corrupt_warehouse(settings):
    _corrupt_data_block(settings.warehouse_path)
    with pytest.raises(BackupError, match="failed verification"):
        warehouse_backup.backup(settings)
    assert warehouse_backup.list_backups(settings) == []
    assert not list(settings.warehouse_backup_dir.glob("*")), "no partial copy left behind"


def test_backup_keeps_the_newest_n(settings):
    taken = [warehouse_backup.backup(settings, keep=2) for _ in range(3)]
    assert warehouse_backup.list_backups(settings) == [taken[2], taken[1]]


def _hold_write_lock(path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
         "con.execute('INSERT INTO raw.customers VALUES (-1, NULL)'); print('ready', flush=True); "
         "time.sleep(float(sys.argv[2])); con.close(); time.sleep(60)"), str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def test_backup_never_copies_under_a_writer(settings):
    holder = _hold_write_lock(settings.warehouse_path, 120)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError, match=f"locked by process {holder.pid}"):
            warehouse_backup.backup(settings, lock_timeout_seconds=1)
        assert time.monotonic() - started < 10
        assert not settings.warehouse_backup_dir.exists() or not any(settings.warehouse_backup_dir.iterdir())
        with pytest.raises(WarehouseLockedError, match="held open by another process"):
            warehouse_backup.set_aside(settings)
        assert settings.warehouse_path.exists(), "a file a process holds is never moved"
    finally:
        holder.kill()
        holder.wait()


def test_backup_waits_for_the_writer_and_includes_its_rows(settings):
    holder = _hold_write_lock(settings.warehouse_path, 1.5)
    try:
        taken = warehouse_backup.backup(settings, lock_timeout_seconds=30)
    finally:
        holder.kill()
        holder.wait()
    with duckdb.connect(str(taken), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.customers WHERE id = -1").fetchone()[0] == 1


def test_the_command_line_backs_up_lists_and_restores(settings):
    env = {**os.environ, "PLATFORM_DATA_DIR": str(settings.data_dir)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "platform_assets.tools.warehouse_backup", *args], cwd=PROJECT_ROOT,
                              env=env, capture_output=True, text=True, timeout=120, check=False)

    before = _summary(settings.warehouse_path)
    assert "no backups" in cli("list").stdout
    out = cli("restore")
    assert out.returncode == 1 and "no backups" in out.stderr and "set-aside" in out.stderr
    out = cli("backup")
    assert out.returncode == 0 and "(verified" in out.stdout, out.stderr
    name = warehouse_backup.list_backups(settings)[0].name
    assert name in cli("list").stdout
    _garbage_header(settings.warehouse_path)
    out = cli("restore", name)
    assert out.returncode == 0 and "kept the previous file as" in out.stdout, out.stderr
    assert _summary(settings.warehouse_path) == before
