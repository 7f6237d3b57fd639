"""The production warehouse, DuckLake (catalog in PostgreSQL, data files and exports on the shared store), against
the real servers: PostgreSQL 127.0.0.1:5432 and an S3 API server (tests/s3_server.py).

What it must mean: the lake holds the same warehouse the DuckDB file does (every exported mart equal, row for row,
after the same ingestion and dbt build of the same landing files), with nothing of it on the local disk; and two
writers on one table at once both commit (DuckLake's conflict retried whole), with counts an oracle over the
landing files confirms.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import psycopg
import pytest

from platform_assets.definitions import build_definitions
from platform_assets.lib import names, warehouse_lake
from platform_assets.settings import PROJECT_ROOT, load_settings
from tests.s3_server import s3_server

pytestmark = [pytest.mark.production]

PG = "host=127.0.0.1 port=5432 user=postgres"
LAST_DAY = date(2026, 3, 8)
DAYS = 6
FIRST_DAY = LAST_DAY - timedelta(days=DAYS - 1)


def _pg(**kwargs):
    return psycopg.connect(f"{PG} dbname=postgres", **kwargs)


def _simulate(landing: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "platform_assets.simulator", "--landing-dir", str(landing), "--end", LAST_DAY.isoformat(),
         "--days", str(DAYS), "--customers", "300", "--merchants", "40", "--transactions-per-day", "400",
         "--scenario", "none", "--seed", "19"],
        cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=300,
    )


def _materialize_warehouse(settings, instance) -> None:
    """Ingestion, then the dbt warehouse, for the whole window in one run each (as the demo and a backfill do)."""
    defs = build_definitions(settings)
    window = names.partition_range_tags(FIRST_DAY.isoformat(), LAST_DAY.isoformat())
    for group in (names.INGESTION, names.WAREHOUSE):
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups(group), instance=instance,
                                resources=defs.resources, tags=window)
        assert result.success


class Lake:
    def __init__(self, root: Path, s3, bucket: str, catalog_db: str):
        self.root, self.s3, self.bucket, self.catalog_db = root, s3, bucket, catalog_db
        self.catalog = f"postgres:{PG} dbname={catalog_db}"

    def env(self, data_dir: Path, landing: Path) -> dict[str, str]:
        return {**self.s3.env(), "PLATFORM_PROFILE": "production", "PLATFORM_EXECUTOR": "multiprocess",
                "PLATFORM_DATA_DIR": str(data_dir), "PLATFORM_LANDING_DIR": str(landing),
                "PLATFORM_PARTITION_START": FIRST_DAY.isoformat(),
                "PLATFORM_SHARED_STORE_URL": self.bucket, "PLATFORM_WAREHOUSE_CATALOG": self.catalog}

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        warehouse_lake.attach(con, self.catalog, f"{self.bucket}/warehouse/")
        return con


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ducklake")
    landing = root / "landing"
    _simulate(landing)
    uid = uuid.uuid4().hex[:10]
    catalog_db = f"platform_test_{uid}_lake"
    with _pg(autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{catalog_db}"')
    try:
        with s3_server(root / "s3.log") as s3:
            lake = Lake(root, s3, s3.create_bucket(f"platform-{uid}"), catalog_db)
            with pytest.MonkeyPatch.context() as mp:
                for key in [k for k in os.environ if k.startswith(("PLATFORM_", "MLFLOW_"))]:
                    mp.delenv(key)
                # The local profile, on its DuckDB file: the reference.
                for key, value in {"PLATFORM_DATA_DIR": str(root / "local"), "PLATFORM_LANDING_DIR": str(landing),
                                   "PLATFORM_PARTITION_START": FIRST_DAY.isoformat()}.items():
                    mp.setenv(key, value)
                local = load_settings()
                (root / "dagster-local").mkdir()
                with dg.instance_for_test(temp_dir=str(root / "dagster-local")) as instance:
                    _materialize_warehouse(local, instance)
                # The production profile on the lake, from a data directory of its own.
                for key, value in lake.env(root / "lake-node", landing).items():
                    mp.setenv(key, value)
                production = load_settings()
                (root / "dagster-lake").mkdir()
                with dg.instance_for_test(temp_dir=str(root / "dagster-lake")) as instance:
                    _materialize_warehouse(production, instance)
                yield {"lake": lake, "local": local, "production": production, "landing": landing, "root": root}
    finally:
        with _pg(autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{catalog_db}" WITH (FORCE)')


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[sorted(frame.columns)]
    keys = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, (list, dict)) or hasattr(v, "shape")).sum() == 0]
    return frame.sort_values(keys).reset_index(drop=True)


def test_the_lake_exports_every_mart_equal_to_the_duckdb_files(world):
    local_dir, lake_dir = world["local"].exports_dir, world["production"].exports_dir
    assert str(lake_dir).startswith("s3://")
    compared = 0
    for mart in sorted(p.stem for p in Path(local_dir).glob("*.parquet")):
        expected = pd.read_parquet(Path(local_dir) / f"{mart}.parquet")
        got = pd.read_parquet(f"{lake_dir}/{mart}.parquet")
        assert len(got) == len(expected) > 0, mart
        pd.testing.assert_frame_equal(_sorted(got.drop(columns=["_loaded_at"], errors="ignore")),
                                      _sorted(expected.drop(columns=["_loaded_at"], errors="ignore")),
                                      check_dtype=False, obj=mart)
        compared += 1
    assert compared >= 7


def test_nothing_of_the_lake_warehouse_is_on_the_local_disk(world):
    node = world["root"] / "lake-node"
    files = [p.relative_to(node) for p in node.rglob("*") if p.is_file()] if node.exists() else []
    # Only dbt's partial-parse cache (rebuilt when missing) may be here: no table, no export, no DuckDB file.
    assert all(p.parts[:2] == ("warehouse", "dbt-parse") for p in files), files
    assert not list(node.rglob("*.duckdb")) and not list(node.rglob("*.parquet"))
    keys = [o["Key"] for o in world["lake"].s3.client().list_objects_v2(Bucket=world["lake"].bucket[5:])["Contents"]]
    assert any(k.startswith("warehouse/raw/") for k in keys) and any(k.startswith("exports/") for k in keys)
    with psycopg.connect(f"{PG} dbname={world['lake'].catalog_db}") as con:
        tables = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'ducklake%'").fetchone()
    assert tables[0] > 10  # the DuckLake catalog is PostgreSQL's


def _oracle_day(landing: Path, day: date) -> set[str]:
    """The transaction ids of a day's landing file that are well formed (the contract's id pattern and a parseable
    amount): computed from the file with Python's csv module, not from our loader."""
    path = landing / "transactions" / f"date={day.isoformat()}" / "transactions.csv"
    ids = set()
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            try:
                float(row.get("amount") or "x")
            except ValueError:
                continue
            if row.get("transaction_id"):
                ids.add(row["transaction_id"])
    return ids


INGEST_ONE_DAY = """
import json, sys, time
import dagster as dg
from platform_assets.definitions import build_definitions
from platform_assets.lib import names
from platform_assets.settings import load_settings
defs = build_definitions(load_settings())
started = time.time()
with dg.instance_for_test() as instance:
    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.RAW_TRANSACTIONS),
                            instance=instance, resources=defs.resources, partition_key=sys.argv[1],
                            run_config={"ops": {names.asset_name(names.RAW_TRANSACTIONS):
                                                {"config": {"reload_unchanged": True}}}})
print(json.dumps({"success": result.success, "started": started, "ended": time.time()}))
"""


def test_two_partitions_ingest_at_once_and_both_commit(world):
    """Two processes, each reloading one day into raw.transactions at the same time (as two Celery workers would
    with the pool lifted): both succeed, each day holds exactly its file's rows once."""
    lake, landing = world["lake"], world["landing"]
    days = [LAST_DAY - timedelta(days=1), LAST_DAY]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "MLFLOW_"))}
    env.update(lake.env(world["root"] / "lake-node-2", landing))
    before = _day_ids(lake, days)
    processes = [subprocess.Popen([sys.executable, "-c", INGEST_ONE_DAY, d.isoformat()], cwd=PROJECT_ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in days]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-4000:]
    runs = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(r["success"] for r in runs)
    assert max(r["started"] for r in runs) < min(r["ended"] for r in runs), "the two loads did not overlap"
    assert "database is locked" not in "".join(e for _, e in outputs).lower()
    assert "could not set lock" not in "".join(e for _, e in outputs).lower()
    after = _day_ids(lake, days)
    for day in days:
        ids = after[day]
        assert len(ids) == len(set(ids)), f"{day}: a transaction loaded twice"
        assert sorted(ids) == sorted(before[day]), f"{day}: the reload changed the day's rows"
        oracle = _oracle_day(landing, day)
        assert set(ids) <= oracle and len(ids) >= 0.95 * len(oracle), day


def _day_ids(lake: Lake, days: list[date]) -> dict[date, list[str]]:
    con = lake.connect()
    try:
        return {day: [r[0] for r in con.execute(
            "SELECT transaction_id FROM raw.transactions WHERE partition_date = ?", [day]).fetchall()]
            for day in days}
    finally:
        con.close()


def test_the_system_of_record_extract_lands_in_the_lake(world, tmp_path):
    """dlt cannot write into the lake (its cursors start in DuckDB's in-memory catalog): the extract goes through a
    scratch DuckDB and must end in the lake's `sor` schema, where raw is rebuilt from, every source row once."""
    import sqlalchemy as sa

    from platform_assets.ingestion.system_of_record import DATASET, SPECS, extract_for_lake

    spec = next(iter(SPECS.values()))
    names_ = [c for c in spec.columns if c not in ("updated_at", "deleted_at")]
    columns = ", ".join(f"{c} TEXT" for c in names_)
    source = tmp_path / "sor.sqlite"
    engine = sa.create_engine(f"sqlite:///{source}")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {spec.table} ({columns}, updated_at TIMESTAMP NOT NULL, "
                             f"deleted_at TIMESTAMP, PRIMARY KEY ({spec.id_column}))")
        for i in range(3):
            values = [f"id-{i}" if c == spec.id_column else "x" for c in names_]
            conn.exec_driver_sql(f"INSERT INTO {spec.table} VALUES ({', '.join('?' * len(values))}, ?, NULL)",
                                 (*values, "2026-03-01 00:00:00"))
    resource = build_definitions(world["production"]).resources["warehouse"].process_config_and_initialize()
    with resource.get_connection() as con:
        assert extract_for_lake(con, f"sqlite:///{source}", spec, tmp_path / "dlt") == 3
    fresh = world["lake"].connect()
    try:
        ids = [r[0] for r in fresh.execute(f"SELECT {spec.id_column} FROM {DATASET}.{spec.table}").fetchall()]
        assert sorted(ids) == ["id-0", "id-1", "id-2"]
        fresh.execute(f"DROP TABLE {DATASET}.{spec.table}")
    finally:
        fresh.close()
