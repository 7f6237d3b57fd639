"""Customers and merchants from the system-of-record database: incremental by cursor through dlt, into raw by the
landing-file contract, on a real SQLite file and (production profile) a real PostgreSQL database.

The oracle is the simulator's change log (`simulator/system_of_record.py`), never our ingestion's output: after
each load raw holds every key at its version as of the time the database was brought to, tombstones included,
and dlt extracted exactly the keys that changed since the previous load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import duckdb
import pytest
from platform_env import local_settings

from platform_assets.ingestion.definitions import build_defs
from platform_assets.ingestion.loader import load_source
from platform_assets.ingestion.sources import CUSTOMERS, MERCHANTS
from platform_assets.lib import names
from platform_assets.resources.profile import build_resources
from platform_assets.settings import PROJECT_ROOT
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.system_of_record import (
    COLUMNS,
    KEYS,
    TABLES,
    apply_system_of_record,
    change_log,
)

CONFIG = SimulationConfig(start_date=date(2026, 3, 1), days=4, n_customers=300, n_merchants=60,
                          transactions_per_day=300)
LOG = change_log(CONFIG)
START, MIDDLE, END = LOG.window_start, LOG.window_start + timedelta(days=2), LOG.window_end
ASSET = {"customers": names.RAW_CUSTOMERS, "merchants": names.RAW_MERCHANTS}
PG_HOST = os.environ.get("PLATFORM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PLATFORM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PLATFORM_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("PLATFORM_TEST_PG_PASSWORD", "")


def _pg_admin():
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD or None, dbname="postgres",
                           connect_timeout=5, autocommit=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.production)])
def source_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sources' / 'system_of_record.sqlite'}"
        return
    name = f"platform_test_sor_{uuid.uuid4().hex[:10]}"
    with _pg_admin() as con:
        con.execute(f'CREATE DATABASE "{name}"')
    auth = quote(PG_USER) + (f":{quote(PG_PASSWORD, safe='')}" if PG_PASSWORD else "")
    try:
        yield f"postgresql+psycopg://{auth}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _pg_admin() as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def platform(tmp_path, monkeypatch, source_url):
    (tmp_path / "sources").mkdir(exist_ok=True)
    settings = local_settings(monkeypatch, tmp_path, PLATFORM_SOURCE_DATABASE_URL=source_url,
                              PLATFORM_MASTER_DATA_SOURCE="database")
    defs = build_defs(settings)
    assets = [a for a in defs.assets if set(a.keys) & set(ASSET.values())]
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield settings, assets, instance


def _materialize(platform, **config) -> dict[str, dict]:
    """Both assets once (with run `config`); per table, the materialization's metadata values and whether its
    check passed."""
    settings, assets, instance = platform
    run_config = {"ops": {key.path[-1]: {"config": config} for key in ASSET.values()}} if config else None
    result = dg.materialize(assets, resources=build_resources(settings), instance=instance, run_config=run_config)
    assert result.success
    checks = {e.asset_key: e.passed for e in result.get_asset_check_evaluations()}
    out = {}
    for event in result.get_asset_materialization_events():
        key = event.materialization.asset_key
        table = next(t for t, k in ASSET.items() if k == key)
        out[table] = {k: v.value for k, v in event.materialization.metadata.items()} | {"passed": checks[key]}
    return out


def _raw(settings, table: str) -> dict[str, tuple]:
    columns = ", ".join((*COLUMNS[table], "updated_at", "deleted_at"))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {r[0]: r for r in con.execute(f"SELECT {columns} FROM raw.{table}").fetchall()}


def _oracle(table: str, at: datetime) -> dict[str, tuple]:
    return {k: (*v.row.values(), v.updated_at, v.deleted_at) for k, v in LOG.state(table, at).items()}


def _changed_keys(table: str, after: datetime | None, through: datetime) -> int:
    if after is None:
        return len(LOG.state(table, through))
    return len({v.key for v in LOG.changes(table, after, through)})


def _deleted_between(table: str, after: datetime, through: datetime) -> int:
    return sum(after < at <= through for at in LOG.deleted(table).values())


def _assert_raw_is_the_log(settings, loads: dict, after: datetime | None, through: datetime) -> None:
    for table in TABLES:
        assert loads[table][names.ROWS_EXTRACTED] == _changed_keys(table, after, through), table
        assert _raw(settings, table) == _oracle(table, through), table
        tombstones = sum(v.deleted_at is not None for v in LOG.state(table, through).values())
        assert loads[table]["tombstones"] == tombstones
        assert loads[table][names.ROWS_QUARANTINED] == 0 and loads[table]["passed"]


def test_incremental_loads_follow_the_change_log(platform, source_url, tmp_path):
    settings, assets, _ = platform
    kinds = {frozenset(next(iter(a.specs)).kinds) for a in assets}
    assert kinds == {frozenset({"dlt", "sqlite" if source_url.startswith("sqlite") else "postgres", "duckdb"})}

    applied = apply_system_of_record(CONFIG, source_url, START)
    assert applied.inserted == {"customers": CONFIG.n_customers, "merchants": CONFIG.n_merchants}
    _assert_raw_is_the_log(settings, _materialize(platform), None, START)

    applied = apply_system_of_record(CONFIG, source_url, MIDDLE)
    assert applied.updated == {t: _changed_keys(t, START, MIDDLE) for t in TABLES} and not any(
        applied.inserted.values())
    assert applied.deleted == {t: _deleted_between(t, START, MIDDLE) for t in TABLES}
    _assert_raw_is_the_log(settings, _materialize(platform), START, MIDDLE)

    # The same time again changes nothing, in the source or in raw.
    assert apply_system_of_record(CONFIG, source_url, MIDDLE).changed == 0
    _assert_raw_is_the_log(settings, _materialize(platform), MIDDLE, MIDDLE)

    applied = apply_system_of_record(CONFIG, source_url, END)
    assert applied.deleted == {t: _deleted_between(t, MIDDLE, END) for t in TABLES}
    assert all(applied.deleted.values())  # the tiny world closes customers and merchants in its last days
    _assert_raw_is_the_log(settings, _materialize(platform), MIDDLE, END)

    # The database's last state is what the files mode reads from the snapshot files of the same config.
    landing = tmp_path / "landing"
    write_landing_zone(CONFIG, landing)
    with duckdb.connect(str(tmp_path / "files.duckdb")) as con:
        for spec in (CUSTOMERS, MERCHANTS):
            load_source(con, spec, landing, None, loaded_at=datetime.now(UTC))
            files = {r[0]: r for r in con.execute(f"SELECT {', '.join(COLUMNS[spec.table])}, updated_at, "
                                                  f"deleted_at FROM raw.{spec.table}").fetchall()}
            database = _raw(settings, spec.table)
            assert len(files) == len(database) == getattr(CONFIG, f"n_{spec.table}")
            assert {k: r[:-2] for k, r in files.items()} == {k: r[:-2] for k, r in database.items()}
            assert {r[-2:] for r in files.values()} == {(None, None)}  # a file knows no history


@pytest.mark.parametrize("source_url", ["sqlite"], indirect=True)  # the contract does not depend on the engine
def test_a_malformed_row_in_the_database_is_quarantined_with_its_reason(platform, source_url):
    import sqlalchemy as sa

    settings = platform[0]
    apply_system_of_record(CONFIG, source_url, END)
    _materialize(platform)
    later = END + timedelta(hours=1)
    engine = sa.create_engine(source_url)
    with engine.begin() as con:
        for table, key, values in (("customers", "C0000005", {"country": "Germany"}),
                                   ("merchants", "M00007", {"category_code": "54x1"})):
            source = sa.Table(table, sa.MetaData(), autoload_with=con)  # its own types write the timestamps
            con.execute(source.update().where(source.c[KEYS[table]] == key).values(**values, updated_at=later))
    engine.dispose()
    loads = _materialize(platform)
    for table, key, reason in (("customers", "C0000005", "invalid_country"),
                               ("merchants", "M00007", "invalid_category_code")):
        assert loads[table][names.ROWS_EXTRACTED] == 1
        assert loads[table][names.ROWS_QUARANTINED] == 1
        assert loads[table]["quarantine_by_reason"] == {reason: 1}
        assert set(_raw(settings, table)) == set(_oracle(table, END)) - {key}
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            (record, file), = con.execute("SELECT record, file FROM raw.quarantine WHERE source = ?",
                                          [table]).fetchall()
        assert key in record and file == f"sor.{table}"

    # A full refresh forgets the cursor: every row is extracted again, and judged by the same contract.
    loads = _materialize(platform, full_refresh=True)
    for table in TABLES:
        assert loads[table][names.ROWS_EXTRACTED] == getattr(CONFIG, f"n_{table}")
        assert loads[table][names.ROWS_QUARANTINED] == 1
        assert len(_raw(settings, table)) == getattr(CONFIG, f"n_{table}") - 1


@pytest.mark.parametrize("source_url", ["sqlite"], indirect=True)
def test_an_empty_source_database_is_named_without_its_url(tmp_path, source_url):
    from platform_assets.ingestion.system_of_record import SystemOfRecordMissing, extract

    (tmp_path / "sources").mkdir()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con, pytest.raises(SystemOfRecordMissing) as failed:
        extract(con, source_url, CUSTOMERS, tmp_path / "dlt")
    assert "no table 'customers'" in str(failed.value) and source_url not in str(failed.value)


CHILD = """
import os, signal, sys
from pathlib import Path
import duckdb
from platform_assets.ingestion.sources import CUSTOMERS
from platform_assets.ingestion.system_of_record import extract, sor_pipeline, sor_table
warehouse, url, pipelines_dir, stage = sys.argv[1:]
con = duckdb.connect(warehouse)
if stage == "extracted":
    pipeline = sor_pipeline(con, CUSTOMERS, Path(pipelines_dir))
    pipeline.extract(sor_table(url, CUSTOMERS))
    pipeline.normalize()
else:
    extract(con, url, CUSTOMERS, Path(pipelines_dir))
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_run(settings, url: str, stage: str) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, str(settings.warehouse_path), url,
                          str(settings.dlt_pipelines_dir), stage], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == -9, out.stderr[-3000:]


@pytest.mark.slow  # two killed processes, each importing Dagster and dlt
@pytest.mark.parametrize("source_url", ["sqlite"], indirect=True)
def test_the_cursor_advances_only_with_a_committed_load(platform, source_url):
    settings = platform[0]
    apply_system_of_record(CONFIG, source_url, START)
    _materialize(platform)

    # Killed after dlt extracted and normalized the changes, before it loaded them: the cursor stayed, the next
    # run extracts the same rows again.
    apply_system_of_record(CONFIG, source_url, MIDDLE)
    _killed_run(settings, source_url, "extracted")
    assert Path(settings.dlt_pipelines_dir, "system_of_record_customers").exists()  # what the kill left behind
    _assert_raw_is_the_log(settings, _materialize(platform), START, MIDDLE)

    # Killed after the load committed, before raw was rebuilt: the cursor moved with the load, so nothing is
    # extracted again, and raw is rebuilt from the merged dataset all the same.
    apply_system_of_record(CONFIG, source_url, END)
    _killed_run(settings, source_url, "loaded")
    loads = _materialize(platform)
    assert loads["customers"][names.ROWS_EXTRACTED] == 0
    assert _raw(settings, "customers") == _oracle("customers", END)
    assert loads["merchants"][names.ROWS_EXTRACTED] == _changed_keys("merchants", MIDDLE, END)
    assert _raw(settings, "merchants") == _oracle("merchants", END)
