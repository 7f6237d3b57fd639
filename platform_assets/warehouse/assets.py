"""Warehouse: the dbt project (staging -> intermediate -> marts) built by `dbt build`.

`dbt build` runs models and their tests in DAG order; the tests surface as Dagster asset checks (severity error
= blocking). The marts are written as parquet exports (dbt-duckdb `external`), which is what Feast and the ML
stages read, so no reader ever needs the DuckDB file a writer might hold.
"""

import shutil

import dagster as dg
from dagster_dbt import dbt_assets

from platform_assets.resources import WRITER_POOL
from platform_assets.resources.dbt import PlatformDbtResource, dbt_project, require_manifest
from platform_assets.warehouse.translator import WarehouseTranslator


@dbt_assets(
    manifest=require_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WRITER_POOL,
)
def warehouse_dbt_models(context: dg.AssetExecutionContext, dbt: PlatformDbtResource):
    invocation = dbt.cli(["build"], context=context)
    yield from invocation.stream()
    # dagster-dbt gives every invocation a folder of its own under target/; its artifacts are in the event
    # log by now, and left alone they pile up run after run.
    shutil.rmtree(invocation.target_path, ignore_errors=True)
