"""`make doctor` (python -m platform_assets.tools.doctor): what is missing or in the way, and the command that fixes it.

The common first-day mistakes each have one fix: no dbt manifest yet (`make prepare`), no sample data yet
(`make simulate` or `make demo`), the warehouse not built yet (`make demo`, or Materialize in the UI), the
DuckDB file locked by another process (name that process, then close or wait for it), a corrupt warehouse file
(`make restore`), and pool slots held by runs that ended or whose worker was killed (`make free-slots`). Every
check is cheap and read-only unless `--free-stuck-slots` is given: it never opens the warehouse for writing, and
imports Dagster only inside the slot check (the other checks stay instant when Dagster is the problem).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import duckdb

from platform_assets.lib import object_store
from platform_assets.lib.exports import MARTS
from platform_assets.lib.landing import SOURCES, path_glob
from platform_assets.lib.warehouse_file import (
    corrupt_message,
    is_corruption,
    is_lock_conflict,
    locked_message,
)
from platform_assets.settings import Settings, load_settings


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'FIX'}  {self.check}: {self.detail}"


def check_manifest(settings: Settings) -> Finding:
    manifest = settings.dbt_project_dir / "target" / "manifest.json"
    if manifest.exists():
        return Finding("dbt manifest", True, str(manifest))
    return Finding("dbt manifest", False, f"{manifest} is missing: run `make prepare` (dbt parse)")


def _live_source_missing(settings: Settings) -> list[str]:
    """The local profile's simulated source systems that are not there (in production they are servers, checked
    by the runs that read them)."""
    if settings.profile != "local":
        return []
    modes, missing = settings.sources, []
    if modes.master_data == "database" and not settings.source_database_url_from_env \
            and not (settings.sources_dir / "system_of_record.sqlite").is_file():
        missing.append(f"the system-of-record database ({settings.source_database_url})")
    if modes.chargebacks == "api" and not settings.chargeback_api_data_path.is_file():
        missing.append(f"the chargeback API's data ({settings.chargeback_api_data_path})")
    if modes.transactions == "stream" and settings.stream_backend == "embedded" \
            and not settings.stream_log_path.is_file():
        missing.append(f"the transaction stream ({settings.stream_log_path})")
    return missing


def check_landing(settings: Settings) -> Finding:
    """Sample data where each source arrives: landing files for the file sources, the simulated source systems
    for the others (docs/sources.md)."""
    file_sources = settings.sources.file_sources
    missing = [s for s in SOURCES if s in file_sources and not any((settings.landing_dir / s).rglob("*.csv"))]
    missing_systems = _live_source_missing(settings)
    if not missing and not missing_systems:
        days = len(list(settings.landing_dir.glob(path_glob("transactions", partitioned=True))))
        where = [f"{settings.landing_dir} ({days} days of transactions)"] if file_sources else []
        if settings.sources.live:
            where.append(f"source systems in {settings.sources_dir} ({settings.sources.origin})")
        return Finding("sample data", True, "; ".join(where))
    problems = ([f"no {', '.join(missing)} files under {settings.landing_dir}"] if missing else []) + [
        f"no {m}" for m in missing_systems]
    return Finding(
        "sample data", False,
        f"{'; '.join(problems)}: run `make demo` (sample data and the whole graph) or `make simulate` (sample "
        "files only, for the file sources)",
    )


def check_warehouse_lake(settings: Settings) -> Finding:
    """The DuckLake warehouse: attach it (catalog in PostgreSQL, data on the shared store) and count its tables."""
    from platform_assets.lib import warehouse_lake

    con = duckdb.connect()
    try:
        warehouse_lake.attach(con, os.environ["PLATFORM_WAREHOUSE_CATALOG"], settings.warehouse_data_url)
        tables = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ?",
                             [warehouse_lake.ALIAS]).fetchone()[0]
    except duckdb.Error as exc:
        return Finding("warehouse", False, f"the DuckLake warehouse does not attach: {str(exc)[:300]} (check "
                       "PLATFORM_WAREHOUSE_CATALOG, PostgreSQL, PLATFORM_SHARED_STORE_URL and the AWS_* variables)")
    finally:
        con.close()
    return Finding("warehouse", True, f"DuckLake, {tables} tables, data at {settings.warehouse_data_url}")


def check_warehouse_lock(settings: Settings) -> Finding:
    if settings.warehouse_catalog_configured:
        return check_warehouse_lake(settings)
    path = settings.warehouse_path
    if not path.exists():
        return Finding("warehouse", False, f"{path} does not exist yet: run `make demo` or materialize the "
                       "ingestion assets in the UI")
    try:
        con = duckdb.connect(str(path), read_only=True)
        try:
            # The catalog lives in metadata blocks: reading it finds a corrupt one (not data blocks: too slow).
            con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()
        finally:
            con.close()
    except duckdb.Error as exc:
        if is_lock_conflict(str(exc)):
            return Finding("warehouse", False, locked_message(str(path), str(exc)))
        if is_corruption(str(exc)):
            return Finding("warehouse", False, corrupt_message(str(path), str(exc)))
        raise
    return Finding("warehouse", True, f"{path} (not locked)")


def check_pool_slots(settings: Settings, free: bool = False) -> Finding:
    home = settings.dagster_home
    if home is None or not (home / "history").is_dir():
        return Finding("pool slots", True, f"no Dagster instance in {home} yet")
    import dagster as dg

    from platform_assets.lib.run_launcher import free_stuck_slots, stuck_slots

    with dg.DagsterInstance.from_config(str(home)) as instance:
        if free:
            done = free_stuck_slots(instance)
            left = stuck_slots(instance)
            if left:
                return Finding("pool slots", False, "; ".join(done + [s.line() for s in left]))
            return Finding("pool slots", True, "; ".join(done) or "no stuck slot")
        stuck = stuck_slots(instance)
    if not stuck:
        return Finding("pool slots", True, "no slot held by a finished run or a dead run worker")
    return Finding("pool slots", False, "; ".join(s.line() for s in stuck) + ". The run monitoring daemon frees "
                   "these within ~15 s while it runs (`make dev`); now: `make free-slots` (marks a dead run "
                   "failed, then frees its slots)")


def check_exports(settings: Settings) -> Finding:
    missing = sorted(m for m in MARTS
                     if not object_store.exists(object_store.join(settings.exports_dir, f"{m}.parquet")))
    if not missing:
        return Finding("warehouse exports", True, f"{len(MARTS)} marts in {settings.exports_dir}")
    return Finding("warehouse exports", False, f"{', '.join(missing)} not exported yet: run `make demo` or "
                   "materialize the warehouse group in the UI")


def check_velocity_consumer(settings: Settings) -> Finding:
    """The online velocity consumer's heartbeat (features/velocity_online.py): a consumer that died without
    stopping leaves the velocity features frozen at its last batch."""
    from platform_assets.lib.velocity_consumer import read_heartbeat

    beat = read_heartbeat(settings)
    if beat is None:
        return Finding("velocity consumer", True, "never ran here (`make dev` or `make velocity-consumer` starts it)")
    age = time.time() - float(beat.get("heartbeat_at", 0))
    counts = (f"{beat.get('events_read', 0):,} events read, {beat.get('refused_total', 0):,} refused, "
              f"batch write {beat.get('last_batch', {}).get('write_ms', '-')} ms")
    if beat.get("state") == "stopped":
        return Finding("velocity consumer", True, f"stopped cleanly {age:.0f} s ago ({counts})")
    if age > 30:
        return Finding("velocity consumer", False, f"pid {beat.get('pid')} stopped beating {age:.0f} s ago without "
                       "stopping (killed?): velocity features are frozen; restart it with `make velocity-consumer` "
                       "(it resumes from its committed positions, nothing is counted twice)")
    return Finding("velocity consumer", True, f"running, pid {beat.get('pid')} ({counts})")


CHECKS = (check_manifest, check_landing, check_warehouse_lock, check_exports, check_pool_slots,
          check_velocity_consumer)


def diagnose(settings: Settings, free_stuck_slots: bool = False) -> list[Finding]:
    return [check_pool_slots(settings, free=True) if check is check_pool_slots and free_stuck_slots
            else check(settings) for check in CHECKS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--free-stuck-slots", action="store_true",
                        help="mark runs whose worker is gone failed and free the pool slots of ended runs")
    args = parser.parse_args(argv)
    settings = load_settings()
    print(f"profile {settings.profile}, data in {settings.data_dir}")
    findings = diagnose(settings, free_stuck_slots=args.free_stuck_slots)
    for finding in findings:
        print(finding.line())
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
