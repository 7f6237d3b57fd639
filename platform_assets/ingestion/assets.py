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

from platform_assets.identifiers import partition_date
from platform_assets.ingestion.loader import LoadResult, load_source
from platform_assets.ingestion.sources import SOURCES, SourceSpec
from platform_assets.partitions import daily_partitions
from platform_assets.progress import ProgressLog
from platform_assets.resources import WRITER_POOL, LandingZone, WarehouseResource

GROUP = "ingestion"
QUARANTINE_CHECK = "quarantine_share_below_threshold"


class IngestionConfig(dg.Config):
    max_quarantine_share: float = Field(
        default=0.02, description="Share of refused rows above which the blocking check fails"
    )


def _result(spec: SourceSpec, load: LoadResult, max_share: float, asset_key: dg.AssetKey) -> dg.MaterializeResult:
    passed = load.quarantine_share <= max_share
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": load.rows_loaded,
            "rows_read": load.rows_read,
            "rows_quarantined": load.rows_quarantined,
            "quarantine_share": float(round(load.quarantine_share, 6)),
            "quarantine_by_reason": dg.MetadataValue.json(dict(load.quarantine_by_reason)),
            "files": len(load.files),
            "table": f"raw.{spec.table}",
        },
        check_results=[
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=QUARANTINE_CHECK,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"quarantine_share": float(load.quarantine_share), "threshold": max_share},
                description=None if passed else (
                    f"{load.rows_quarantined} of {load.rows_read} rows refused; see raw.quarantine"),
            )
        ],
    )


def _build_ingestion_asset(spec: SourceSpec, description: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(f"raw_{spec.name}")

    @dg.asset(
        key=key,
        group_name=GROUP,
        kinds={"duckdb", "csv"},
        description=description,
        partitions_def=daily_partitions if spec.partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if spec.partitioned else None,
        pool=WRITER_POOL,
        check_specs=[dg.AssetCheckSpec(QUARANTINE_CHECK, asset=key, blocking=True,
                                       description="Refused rows stay below max_quarantine_share")],
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
        with warehouse.get_connection() as con:
            load = load_source(con, spec, Path(landing_zone.path), days, loaded_at=datetime.now(UTC),
                               on_file_loaded=progress.advance)
            con.execute("CHECKPOINT")
        context.log.info(
            f"{spec.name}: {load.rows_loaded:,} rows loaded, {load.rows_quarantined:,} quarantined "
            f"from {len(load.files)} file(s)"
        )
        return _result(spec, load, config.max_quarantine_share, key)

    return _load


raw_customers = _build_ingestion_asset(SOURCES["customers"], "Customer master data (full snapshot) in raw.customers.")
raw_merchants = _build_ingestion_asset(SOURCES["merchants"], "Merchant master data (full snapshot) in raw.merchants.")
raw_transactions = _build_ingestion_asset(
    SOURCES["transactions"], "Card transactions, one daily partition per UTC day of event_ts, in raw.transactions."
)
raw_chargebacks = _build_ingestion_asset(
    SOURCES["chargebacks"], "Chargebacks, one daily partition per UTC day they were reported, in raw.chargebacks."
)

ingestion_assets = [raw_customers, raw_merchants, raw_transactions, raw_chargebacks]
