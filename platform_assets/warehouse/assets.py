"""Warehouse: the dbt project (staging -> intermediate -> marts) built by `dbt build`.

`dbt build` runs models and their tests in DAG order; the tests surface as Dagster asset checks (severity error
= blocking). The marts are written as parquet exports (dbt-duckdb `external`), which is what Feast and the ML
stages read, so no reader ever needs the DuckDB file a writer might hold.
"""

import shutil
from pathlib import Path

import dagster as dg
from dagster_dbt import dbt_assets

from platform_assets.resources import WRITER_POOL
from platform_assets.resources.dbt import PlatformDbtResource, dbt_project, require_manifest
from platform_assets.settings import exports_dir
from platform_assets.warehouse.translator import WarehouseTranslator


def _with_export_row_count(context: dg.AssetExecutionContext, event, exports: Path):
    """Marts are parquet exports: their row count is in the file footer, read without touching DuckDB (which
    dbt still holds open, so dagster-dbt's own `fetch_row_counts()` would collide with its lock)."""
    if not isinstance(event, dg.Output):
        return event
    export = exports / f"{context.asset_key_for_output(event.output_name).path[-1]}.parquet"
    if not export.exists():
        return event
    import pyarrow.parquet as pq

    return event.with_metadata({**event.metadata, "dagster/row_count": pq.read_metadata(export).num_rows})


@dbt_assets(
    manifest=require_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WRITER_POOL,
)
def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: PlatformDbtResource):
    invocation = dbt.cli(["build"], context=context)
    exports = exports_dir(dbt.data_dir)
    for event in invocation.stream():
        yield _with_export_row_count(context, event, exports)
    # dagster-dbt gives every invocation a folder of its own under target/; its artifacts are in the event
    # log by now, and left alone they pile up run after run.
    shutil.rmtree(invocation.target_path, ignore_errors=True)
