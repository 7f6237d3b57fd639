"""Ingestion: the landing zone loaded into DuckDB's `raw` schema, one asset per source system.

Transactions and chargebacks are daily partitions of the day they happened / were reported; a backfill of any
range runs as one run and one DuckDB transaction (`BackfillPolicy.single_run`). Customers and merchants are full
snapshots. Every load reports what it refused and why; a blocking check stops the warehouse from building on a
day whose file is mostly garbage, while the good rows of an ordinary day still load.
"""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from pydantic import Field

from platform_assets.ingestion.loader import LoadResult, load_source
from platform_assets.ingestion.sources import SOURCES, SourceSpec
from platform_assets.lib import names
from platform_assets.lib.identifiers import partition_date
from platform_assets.lib.progress import ProgressLog
from platform_assets.resources import LandingZone, WarehouseResource


class IngestionConfig(dg.Config):
    max_quarantine_share: float = Field(
        default=0.02, description="Share of refused rows above which the blocking check fails"
    )
    reload_unchanged: bool = Field(
        default=False, description="Load files again even when the manifest says these exact bytes are loaded"
    )


def quarantine_check(key: dg.AssetKey, description: str = "Refused rows stay below max_quarantine_share and no "
                     "file is refused as a whole") -> dg.AssetCheckSpec:
    """The blocking check every raw table has, whichever way its source arrives."""
    return dg.AssetCheckSpec(names.QUARANTINE_CHECK, asset=key, blocking=True, description=description)


def load_result(spec: SourceSpec, load: LoadResult, max_share: float, asset_key: dg.AssetKey,
                metadata: dict | None = None, not_records: int = 0) -> dg.MaterializeResult:
    """The materialization of a raw table load: its counts and its quarantine check. `not_records` refusals
    carried no record at all (an API page that was not JSON): they are counted, but do not make the share of
    refused records."""
    read, refused = load.rows_read - not_records, load.rows_quarantined - not_records
    share = refused / read if read else 0.0
    passed = share <= max_share and not load.file_problems
    if load.file_problems:
        failure = f"{len(load.file_problems)} file(s) refused as a whole: {load.file_problems[0][:300]}"
    else:
        failure = f"{refused} of {read} rows refused; see raw.quarantine"
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": load.rows_loaded,
            "rows_read": load.rows_read,
            names.ROWS_QUARANTINED: load.rows_quarantined,
            "quarantine_share": float(round(share, 6)),
            "quarantine_by_reason": dg.MetadataValue.json(dict(load.quarantine_by_reason)),
            "files": len(load.files),
            "files_unchanged": load.files_unchanged,
            "blank_lines": load.blank_lines,
            "file_problems": dg.MetadataValue.json([p[:500] for p in load.file_problems[:20]]),
            "table": f"raw.{spec.table}",
            **(metadata or {}),
        },
        check_results=[
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=names.QUARANTINE_CHECK,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"quarantine_share": float(share), "threshold": max_share,
                          "files_refused": len(load.file_problems), "not_records": not_records},
                description=None if passed else failure,
            )
        ],
    )


def _build_ingestion_asset(
    spec: SourceSpec, key: dg.AssetKey, description: str, partitions: dg.PartitionsDefinition,
    deps: tuple[dg.AssetKey, ...], pool: str | None,
) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        deps=list(deps),
        group_name=names.INGESTION,
        kinds={"duckdb", "csv"},
        description=description,
        partitions_def=partitions if spec.partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if spec.partitioned else None,
        pool=pool,
        check_specs=[quarantine_check(key)],
        metadata={"landing_path": spec.path_glob, "table": f"raw.{spec.table}"},
        tags={"layer": "raw"},
    )
    def _load(
        context: dg.AssetExecutionContext,
        config: IngestionConfig,
        warehouse: WarehouseResource,
        landing_zone: LandingZone,
    ) -> dg.MaterializeResult:
        days = [partition_date(k) for k in context.partition_keys] if spec.partitioned else None
        progress = ProgressLog(context.log.info, f"{spec.name} files loaded", len(days) if days else 1)
        load = warehouse.write(
            lambda con: load_source(con, spec, Path(landing_zone.path), days, loaded_at=datetime.now(UTC),
                                    on_file_loaded=progress.advance, reload_unchanged=config.reload_unchanged),
            log=context.log.warning,
            keys=tuple(f"raw.{spec.table}/{d}" for d in days) if days else (f"raw.{spec.table}",))
        context.log.info(
            f"{spec.name}: {load.rows_loaded:,} rows loaded, {load.rows_quarantined:,} quarantined "
            f"from {len(load.files)} file(s) ({load.files_unchanged} unchanged since their last load)"
        )
        return load_result(spec, load, config.max_quarantine_share, key)

    return _load


# Each source's rows name rows of the sources before it (docs/data-contracts.md), so those load first.
DESCRIPTIONS = {
    names.RAW_CUSTOMERS: ("customers", "Customer master data (full snapshot) in raw.customers.", ()),
    names.RAW_MERCHANTS: ("merchants", "Merchant master data (full snapshot) in raw.merchants.", ()),
    names.RAW_TRANSACTIONS: (
        "transactions", "Card transactions, one daily partition per UTC day of event_ts, in raw.transactions.",
        names.SNAPSHOT_RAW),
    names.RAW_CHARGEBACKS: (
        "chargebacks", "Chargebacks, one daily partition per UTC day they were reported, in raw.chargebacks.",
        (names.RAW_TRANSACTIONS,)),
}


def build_ingestion_assets(partitions: dg.PartitionsDefinition, keys: tuple[dg.AssetKey, ...] = names.RAW,
                           pool: str | None = names.DUCKDB_WRITER_POOL) -> list[dg.AssetsDefinition]:
    """One asset per source system that arrives as files (`keys`); the daily sources are partitioned by
    `partitions`."""
    return [_build_ingestion_asset(SOURCES[source], key, description, partitions, deps, pool)
            for key, (source, description, deps) in DESCRIPTIONS.items() if key in keys]
