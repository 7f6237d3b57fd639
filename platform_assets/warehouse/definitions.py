import dagster as dg

from platform_assets.lib.partitions import daily_partitions
from platform_assets.resources.dbt import dbt_project
from platform_assets.settings import Settings
from platform_assets.warehouse.assets import build_warehouse_assets


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=build_warehouse_assets(dbt_project(settings), daily_partitions(settings.partition_start))
    )
