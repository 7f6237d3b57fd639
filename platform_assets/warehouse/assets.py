"""Warehouse: the dbt project (seeds -> staging -> intermediate -> marts) built by `dbt build`.

Two dbt asset definitions share the project. `warehouse_daily_dbt_models` holds the daily incremental models (dbt
tag `daily`, e.g. `fct_transactions`): partitioned like ingestion, each run passes its partition window to dbt as
vars (`min_date`, `max_date`) and the model replaces only those days; a backfill of any number of days is one run
(single-run backfill policy), so 90 days cost one dbt invocation, not 90. `warehouse_dbt_models` holds everything
else (seeds, the customer and merchant snapshots, views, whole-history marts such as rolling windows and labels),
rebuilt unpartitioned: every build snapshots the raw tables, so a version is recorded by the build that first
sees it.

`dbt build` runs models and their tests in DAG order; the tests surface as Dagster asset checks (severity error
= blocking) and store their failing rows in the `audit` schema. The marts are written as parquet exports, which is
what Feast and the ML stages read, so no reader ever needs the DuckDB file a writer might hold.
"""

import json
import shutil
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtProject, dbt_assets

from platform_assets.lib import names, object_store
from platform_assets.resources.dbt import PlatformDbtResource, require_manifest
from platform_assets.warehouse.translator import WarehouseTranslator

DAILY_MODELS = "tag:daily"


def partition_vars(start, end) -> dict[str, str]:
    """The dbt vars of a partition window [start, end): the days the daily incremental models replace."""
    return {"min_date": start.date().isoformat(), "max_date": end.date().isoformat()}


def _with_export_row_count(context: dg.AssetExecutionContext, event, exports: Path):
    """Marts are parquet exports: their row count is in the file footer, read without touching DuckDB (which
    dbt still holds open, so dagster-dbt's own `fetch_row_counts()` would collide with its lock)."""
    if not isinstance(event, dg.Output):
        return event
    export = object_store.join(exports, f"{context.asset_key_for_output(event.output_name).path[-1]}.parquet")
    if not object_store.exists(export):
        return event
    import pyarrow.parquet as pq

    with object_store.filesystem(export).open(str(export), "rb") as handle:
        rows = pq.read_metadata(handle).num_rows
    return event.with_metadata({**event.metadata, "dagster/row_count": rows})


def _build(context: dg.AssetExecutionContext, dbt: PlatformDbtResource, args: list[str]):
    invocation = dbt.cli(["build", *args], context=context)
    exports = dbt.exports_dir()
    for event in invocation.stream():
        yield _with_export_row_count(context, event, exports)
    if "--vars" not in args:
        dbt.remember_parse(invocation)
    # dagster-dbt gives every invocation a folder of its own under target/; its artifacts are in the event
    # log by now, and left alone they pile up run after run.
    shutil.rmtree(invocation.target_path, ignore_errors=True)


def build_warehouse_assets(project: DbtProject, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The two dbt asset definitions over one project: the daily incremental models, partitioned like ingestion,
    and everything else, rebuilt whole. Reads the manifest, which `make prepare` built; dbt never parses here."""
    manifest = require_manifest(project)

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=WarehouseTranslator(),
        exclude=DAILY_MODELS,
        pool=names.DUCKDB_WRITER_POOL,
    )
    def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: PlatformDbtResource):
        yield from _build(context, dbt, [])

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=WarehouseTranslator(),
        select=DAILY_MODELS,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=names.DUCKDB_WRITER_POOL,
    )
    def warehouse_daily_dbt_models(context: dg.AssetExecutionContext, dbt: PlatformDbtResource):
        window = context.partition_time_window
        dbt_vars = partition_vars(window.start, window.end)
        context.log.info(f"dbt vars {dbt_vars}: {len(context.partition_keys)} daily partition(s)")
        yield from _build(context, dbt, ["--vars", json.dumps(dbt_vars)])

    return [warehouse_dbt_models, warehouse_daily_dbt_models]
