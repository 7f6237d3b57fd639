"""`make backup` / `make restore` (python -m platform_assets.tools.warehouse_backup backup|restore|list|set-aside).

The warehouse is one DuckDB file, and a corrupt file cannot be repaired, only replaced: by a backup, or by a
rebuild from the landing zone (ingestion and dbt re-run). This command keeps verified copies and swaps one in.

- **backup** takes the file's write lock the way runs do (a bounded wait: it never copies under a writer),
  CHECKPOINTs so the file holds everything (nothing left in the write-ahead log), copies it to
  `<data_dir>/backups/warehouse-<UTC time>.duckdb` under a temporary name, verifies the copy (opens read-only,
  every table read in full, so a checksum error shows now rather than on the day it is needed, and the `raw`
  tables are there), then renames it into place and keeps the newest N. The copy is made by a child process:
  DuckDB's lock is a POSIX record lock, which a process loses when it closes *any* descriptor of the file, so
  copying it from this process would open the file to other writers mid-backup.
- **restore** verifies the chosen backup (the newest by default), takes the same lock on the current file (DuckDB
  honours it, so no run opens the file mid-swap, and a file a run holds is refused), moves the current file and
  its write-ahead log aside as `<name>.corrupt-<time>` (never deletes them), and renames a copy of the backup into
  place. A stale log left next to the restored file would be replayed onto it, hence it moves too.
- **set-aside** is restore without a backup: the file moves aside and the next runs rebuild it from the landing
  zone.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from platform_assets.lib.warehouse_file import (
    WarehouseCorruptError,
    WarehouseLockedError,
    connect,
    corrupt_error,
    is_corruption,
)
from platform_assets.settings import Settings, load_settings

PREFIX, SUFFIX = "warehouse-", ".duckdb"
REQUIRED_SCHEMA = "raw"


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Restored:
    backup: Path | None
    set_aside: tuple[Path, ...]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def list_backups(settings: Settings) -> list[Path]:
    """Newest first (the names sort by their UTC time)."""
    folder = settings.warehouse_backup_dir
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.glob(f"{PREFIX}*{SUFFIX}") if p.is_file()), reverse=True)


def verify(path: Path) -> list[str]:
    """The tables of a warehouse file, each read in full; raises WarehouseCorruptError or BackupError."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if is_corruption(str(exc)):
            raise corrupt_error(str(path), exc) from exc
        raise
    try:
        tables = [f"{schema}.{name}" for schema, name in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal ORDER BY 1, 2").fetchall()]
        if not any(t.startswith(f"{REQUIRED_SCHEMA}.") for t in tables):
            raise BackupError(f"{path} has no table in schema {REQUIRED_SCHEMA!r} (it has {tables or 'none'})")
        for table in tables:
            schema, name = table.split(".", 1)
            # count(*) reads no column data: hashing whole rows makes DuckDB read (and checksum) every block.
            con.execute(f'SELECT max(hash(t)) FROM "{schema}"."{name}" AS t').fetchall()
    except duckdb.Error as exc:
        if is_corruption(str(exc)):
            raise corrupt_error(str(path), exc) from exc
        raise
    finally:
        con.close()
    return tables


def _copy_in_child(source: Path, target: Path) -> None:
    code = ("import os, shutil, sys\nshutil.copyfile(sys.argv[1], sys.argv[2])\n"
            "fd = os.open(sys.argv[2], os.O_RDONLY)\nos.fsync(fd)\nos.close(fd)\n")
    subprocess.run([sys.executable, "-c", code, str(source), str(target)], check=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(settings: Settings, keep: int | None = None, lock_timeout_seconds: float = 60.0) -> Path:
    source = settings.warehouse_path
    if not source.exists():
        raise BackupError(f"{source} does not exist: nothing to back up")
    keep = settings.warehouse_backups_keep if keep is None else keep
    if keep < 1:
        raise BackupError(f"keep must be at least 1, got {keep}")
    folder = settings.warehouse_backup_dir
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{_stamp()}{SUFFIX}"
    tmp = folder / f".{final.name}.tmp"
    con = connect(source, lock_timeout_seconds=lock_timeout_seconds)
    try:
        try:
            con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            if is_corruption(str(exc)):
                raise corrupt_error(str(source), exc) from exc
            raise
        _copy_in_child(source, tmp)
    finally:
        con.close()
    try:
        verify(tmp)
    except (WarehouseCorruptError, BackupError) as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"not backed up: the copy of {source} failed verification ({exc})") from exc
    os.replace(tmp, final)
    _fsync_dir(folder)
    for old in list_backups(settings)[keep:]:
        old.unlink()
    return final


def _resolve_backup(settings: Settings, name: str | None) -> Path:
    backups = list_backups(settings)
    if name is None:
        if not backups:
            raise BackupError(f"no backups under {settings.warehouse_backup_dir}: take one with `make backup`, or "
                              "move the file aside with `python -m platform_assets.tools.warehouse_backup "
                              "set-aside` and rebuild it from the landing zone")
        return backups[0]
    candidate = Path(name)
    candidate = candidate if candidate.is_absolute() else settings.warehouse_backup_dir / candidate.name
    if not candidate.is_file():
        raise BackupError(f"{candidate} is not a backup (backups: {[p.name for p in backups] or 'none'})")
    return candidate


def _current_label(current: Path) -> str:
    """What the file set aside is called: `corrupt` when it is, `replaced` when a healthy file was restored over."""
    if not current.exists():
        return "replaced"
    try:
        verify(current)
    except (duckdb.Error, BackupError, WarehouseCorruptError):
        return "corrupt"
    return "replaced"


def _swap(settings: Settings, replacement: Path | None) -> tuple[Path, ...]:
    """Under the file's write lock: the current file and its WAL aside, then `replacement` (a temporary file in
    the same folder) renamed into place."""
    current = settings.warehouse_path
    current.parent.mkdir(parents=True, exist_ok=True)
    stamp = _stamp()
    label = _current_label(current)
    moved: list[Path] = []
    fd = os.open(current, os.O_RDWR) if current.exists() else None
    try:
        if fd is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise WarehouseLockedError(
                    f"{current} is held open by another process (a run, a notebook, the duckdb CLI): stop it "
                    "first; `make doctor` names it") from exc
        for path in (current, current.with_name(current.name + ".wal")):
            if path.exists():
                aside = path.with_name(f"{path.name}.{label}-{stamp}")
                os.replace(path, aside)
                moved.append(aside)
        if replacement is not None:
            os.replace(replacement, current)
        _fsync_dir(current.parent)
    finally:
        if fd is not None:
            os.close(fd)
    return tuple(moved)


def restore(settings: Settings, name: str | None = None) -> Restored:
    chosen = _resolve_backup(settings, name)
    verify(chosen)
    current = settings.warehouse_path
    current.parent.mkdir(parents=True, exist_ok=True)
    tmp = current.with_name(f".{current.name}.restore-{_stamp()}.tmp")
    _copy_in_child(chosen, tmp)
    try:
        moved = _swap(settings, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return Restored(chosen, moved)


def set_aside(settings: Settings) -> Restored:
    return Restored(None, _swap(settings, None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("backup", help="copy the warehouse (under its lock) and verify the copy")
    take.add_argument("--keep", type=int, default=None,
                      help="backups to keep (default PLATFORM_WAREHOUSE_BACKUPS_KEEP, else 7)")
    take.add_argument("--lock-timeout", type=float, default=60.0,
                      help="seconds to wait for a run or notebook to release the file")
    put = commands.add_parser("restore", help="put a backup in place, keeping the current file aside")
    put.add_argument("backup", nargs="?", help="a backup's file name (default: the newest)")
    commands.add_parser("list", help="the backups, newest first")
    commands.add_parser("set-aside", help="move the warehouse aside so the next runs rebuild it")
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings.warehouse_catalog_configured:
        raise SystemExit(
            "The warehouse is DuckLake (PLATFORM_WAREHOUSE_CATALOG): nothing here to copy. Back up its PostgreSQL "
            "catalog (pg_dump) and version the bucket's warehouse/ prefix; DuckLake keeps every snapshot, so a bad "
            "load is undone by time travel (AT (VERSION => n)) until its snapshots are expired. docs/production.md")
    try:
        if args.command == "backup":
            path = backup(settings, keep=args.keep, lock_timeout_seconds=args.lock_timeout)
            print(f"backed up {settings.warehouse_path} to {path} (verified; keeping the newest "
                  f"{args.keep or settings.warehouse_backups_keep})")
        elif args.command == "list":
            backups = list_backups(settings)
            for path in backups:
                print(f"{path}  {path.stat().st_size:,} bytes")
            if not backups:
                print(f"no backups under {settings.warehouse_backup_dir}")
        else:
            result = restore(settings, args.backup) if args.command == "restore" else set_aside(settings)
            for path in result.set_aside:
                print(f"kept the previous file as {path}")
            if result.backup is not None:
                print(f"restored {settings.warehouse_path} from {result.backup} (verified)")
            else:
                print(f"{settings.warehouse_path} moved aside: the next ingestion and dbt runs rebuild it")
    except (BackupError, WarehouseCorruptError, WarehouseLockedError) as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
