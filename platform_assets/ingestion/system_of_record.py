"""Customers and merchants from the system-of-record database, incrementally, into `raw` by the landing-file
contract.

Two steps per table, each committed on its own, so a run killed anywhere converges on the next one:

1. **Extract** (dlt): rows whose `updated_at` is at or past the cursor are read from the source database and
   merged by key into the dlt-managed dataset `sor` in the warehouse (`sor.customers`, `sor.merchants`: one row
   per key, its newest version). dlt keeps the cursor in the same dataset (`sor._dlt_pipeline_state`) and reads
   it back only from completed loads; its local working folder is emptied before every run, so there is no
   second copy of the cursor that could run ahead. A run killed before its load completed leaves the cursor
   where it was and the next run extracts the same rows again (the merge makes that harmless).
2. **Rebuild**: `raw.<table>` is rebuilt from all of `sor.<table>` through `loader.load_parsed`, the contract of
   a landing file (value rules, duplicates, quarantine with a reason), plus `updated_at` and `deleted_at`. It
   reads the whole merged table, not the increment, so a run killed between the steps loses nothing.

Deletes are soft in the source (`deleted_at`): a deleted row stays in raw as a tombstone, because transactions
from before the delete still name it and their reference checks need it.

Why not `@dlt_assets`: dagster-dlt builds its assets from a dlt source and pipeline constructed when the
Definitions load, which would import dlt and SQLAlchemy at load time and bake the database URL (with its
password) into the definitions instead of resolving a dg.EnvVar at run time; and its multi-asset takes no
check specs, so the blocking quarantine check every raw asset carries could not be declared. So each asset runs
its dlt pipeline itself.
"""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from platform_assets.ingestion.assets import load_result, quarantine_check
from platform_assets.ingestion.loader import LoadResult, ensure_raw_tables, load_parsed
from platform_assets.ingestion.reader import ParsedFile
from platform_assets.ingestion.sources import CUSTOMERS, MERCHANTS, SourceSpec
from platform_assets.lib import names
from platform_assets.lib.identifiers import sql_identifier
from platform_assets.resources import SystemOfRecord, WarehouseResource
from platform_assets.settings import Settings

DATASET = "sor"
CURSOR = "updated_at"
SPECS = {names.RAW_CUSTOMERS: CUSTOMERS, names.RAW_MERCHANTS: MERCHANTS}


class SystemOfRecordConfig(dg.Config):
    max_quarantine_share: float = Field(
        default=0.02, description="Share of refused rows above which the blocking check fails"
    )
    full_refresh: bool = Field(
        default=False, description="Forget the cursor and extract the whole table again (e.g. after the source "
                                   "database was restored from a backup)")


class SystemOfRecordMissing(LookupError):
    """The source database has no such table: nothing to extract from (yet)."""


def pipeline_name(spec: SourceSpec) -> str:
    return f"system_of_record_{spec.table}"


def sor_pipeline(con: duckdb.DuckDBPyConnection, spec: SourceSpec, pipelines_dir: Path):
    """The dlt pipeline of one table, loading through the caller's warehouse connection (one writer)."""
    import dlt  # here, not at import: Definitions load without the data libraries
    dlt.config["runtime.dlthub_telemetry"] = False
    return dlt.pipeline(pipeline_name=pipeline_name(spec), pipelines_dir=str(pipelines_dir),
                        destination=dlt.destinations.duckdb(con), dataset_name=DATASET)


def extract_for_lake(lake: duckdb.DuckDBPyConnection, url: str, spec: SourceSpec, pipelines_dir: Path) -> int:
    """On the DuckLake warehouse dlt cannot write into the lake: it writes through cursors of its connection, which
    start in DuckDB's in-memory catalog, and sets its own search path (its dataset, no catalog); it even finds the
    lake's `sor` schema and then fails to create its tables in memory. So dlt extracts into a scratch in-memory
    DuckDB of its own (no state of an earlier run there: it reads the whole source table, soft deletes included),
    and the table is copied into the lake's `sor` schema before raw is rebuilt from it, in the caller's
    transaction: a full extraction per run instead of an incremental one, with the same raw table as the result."""
    import duckdb

    table = sql_identifier(spec.table)
    scratch = duckdb.connect()
    try:
        extracted = extract(scratch, url, spec, pipelines_dir, full_refresh=True)
        rows = scratch.execute(f"SELECT * FROM {DATASET}.{table}").to_arrow_table()
    finally:
        scratch.close()
    lake.register("_sor_extract", rows)
    try:
        lake.execute(f"CREATE SCHEMA IF NOT EXISTS {DATASET}")
        lake.execute(f"CREATE OR REPLACE TABLE {DATASET}.{table} AS SELECT * FROM _sor_extract")
    finally:
        lake.unregister("_sor_extract")
    return extracted


def sor_table(url: str, spec: SourceSpec):
    """The dlt resource reading one source table incrementally by `updated_at`, merged by its key."""
    import dlt
    from dlt.sources.sql_database import sql_table

    return sql_table(credentials=url, table=spec.table, incremental=dlt.sources.incremental(CURSOR),
                     write_disposition="merge", primary_key=spec.id_column, backend="pyarrow")


def extract(con: duckdb.DuckDBPyConnection, url: str, spec: SourceSpec, pipelines_dir: Path,
            full_refresh: bool = False) -> int:
    """Merge the rows changed since the committed cursor into `sor.<table>`; returns how many dlt extracted."""
    from sqlalchemy.exc import NoSuchTableError

    workdir = Path(pipelines_dir) / pipeline_name(spec)
    shutil.rmtree(workdir, ignore_errors=True)
    pipeline = sor_pipeline(con, spec, Path(pipelines_dir))
    try:
        resource = sor_table(url, spec)
    except NoSuchTableError as exc:
        # Never the URL in the message: it may hold the password.
        raise SystemOfRecordMissing(
            f"the system-of-record database has no table {spec.table!r}. Bring it up first (the simulated one: "
            "platform_assets.simulator.system_of_record.apply_system_of_record, docs/sources.md), point "
            "PLATFORM_SOURCE_DATABASE_URL at it, or read master data from files (PLATFORM_MASTER_DATA_SOURCE=files)"
        ) from exc
    try:
        pipeline.run(resource, refresh="drop_resources" if full_refresh else None)
        return pipeline.last_trace.last_normalize_info.row_counts.get(spec.table, 0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _as_text(column: str, kind: str) -> str:
    """The value as a landing file would carry it: timestamps in ISO 8601 UTC, NULL as an empty field."""
    c = sql_identifier(column)
    if kind == "TIMESTAMPTZ":
        return f"coalesce(strftime(CAST({c} AS TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%S.%fZ'), '')"
    return f"coalesce(CAST({c} AS VARCHAR), '')"


def rebuild_raw(con: duckdb.DuckDBPyConnection, spec: SourceSpec, loaded_at: datetime) -> LoadResult:
    """Rebuild `raw.<table>` from `sor.<table>` in one transaction: good rows (tombstones included) with their
    `updated_at`/`deleted_at`, refused ones in raw.quarantine with their reason, as for a landing file."""
    con.execute("SET TimeZone = 'UTC'")
    ensure_raw_tables(con, spec)
    table, key = sql_identifier(spec.table), sql_identifier(spec.id_column)
    origin = f"{DATASET}.{table}"
    extracted = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t",
                            {"s": DATASET, "t": spec.table}).fetchone()[0]
    texts = ", ".join(_as_text(c, kind) for c, kind in spec.columns.items())
    rows = con.execute(f"SELECT {texts} FROM {origin} ORDER BY {key}").fetchall() if extracted else []
    parsed = ParsedFile(columns=tuple(spec.columns), size_bytes=0, sha256="", encoding="sql",
                        line_numbers=list(range(1, len(rows) + 1)),
                        values={c: [r[i] for r in rows] for i, c in enumerate(spec.columns)})
    result = LoadResult(source=spec.name, files=[origin])
    con.begin()
    try:
        loaded, reasons = load_parsed(con, spec, None, parsed, origin, loaded_at)
        if extracted:
            con.execute(f"""UPDATE raw.{table} AS r
                            SET updated_at = CAST(s.updated_at AS TIMESTAMPTZ),
                                deleted_at = CAST(s.deleted_at AS TIMESTAMPTZ)
                            FROM {origin} AS s WHERE s.{key} = r.{key}""")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    result.rows_read, result.rows_loaded = parsed.data_lines, loaded
    result.quarantine_by_reason.update(reasons)
    result.rows_quarantined = sum(reasons.values())
    return result


def _source_kind(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    return "postgres" if scheme == "postgresql" else scheme


def _build_asset(key: dg.AssetKey, spec: SourceSpec, source_kind: str, pool: str | None) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        group_name=names.INGESTION,
        kinds={"dlt", source_kind, "duckdb"},
        description=f"{spec.name.capitalize()} from the system-of-record database, extracted incrementally by "
                    f"`updated_at` (dlt) into {DATASET}.{spec.table}, then raw.{spec.table}: one row per key, its "
                    "newest version, deleted ones as tombstones (deleted_at).",
        pool=pool,
        check_specs=[quarantine_check(key, "Refused rows stay below max_quarantine_share")],
        metadata={"source_table": spec.table, "dataset": f"{DATASET}.{spec.table}", "table": f"raw.{spec.table}"},
        tags={"layer": "raw"},
    )
    def _load(context: dg.AssetExecutionContext, config: SystemOfRecordConfig, warehouse: WarehouseResource,
              system_of_record: SystemOfRecord) -> dg.MaterializeResult:
        def work(con):
            if warehouse.is_lake:
                extracted = extract_for_lake(con, system_of_record.url, spec, Path(system_of_record.pipelines_dir))
            else:
                extracted = extract(con, system_of_record.url, spec, Path(system_of_record.pipelines_dir),
                                    config.full_refresh)
            load = rebuild_raw(con, spec, datetime.now(UTC))
            tombstones, cursor = con.execute(
                f"SELECT count(deleted_at), max(updated_at) FROM raw.{sql_identifier(spec.table)}").fetchone()
            return extracted, load, tombstones, cursor

        extracted, load, tombstones, cursor = warehouse.write(work, log=context.log.warning,
                                                              keys=(f"sor.{spec.table}",))
        context.log.info(f"{spec.name}: {extracted:,} changed rows extracted, raw.{spec.table} rebuilt with "
                         f"{load.rows_loaded:,} rows ({tombstones:,} deleted), {load.rows_quarantined:,} refused")
        result = load_result(spec, load, config.max_quarantine_share, key)
        return dg.MaterializeResult(
            metadata={**result.metadata, names.ROWS_EXTRACTED: extracted, "tombstones": tombstones,
                      "cursor": cursor.isoformat() if cursor else ""},
            check_results=result.check_results,
        )

    return _load


def build_defs(settings: Settings) -> dg.Definitions:
    """raw_customers and raw_merchants from the system-of-record database (replacing their file assets)."""
    kind = _source_kind(settings.source_database_url)
    return dg.Definitions(assets=[_build_asset(key, spec, kind, settings.warehouse_writer_pool) for key, spec in SPECS.items()])
