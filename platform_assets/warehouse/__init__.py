"""Warehouse stage: the dbt project on DuckDB as Dagster assets and checks."""

from platform_assets.warehouse.assets import (
    warehouse_assets,
    warehouse_daily_dbt_models,
    warehouse_dbt_models,
)

__all__ = ["warehouse_assets", "warehouse_daily_dbt_models", "warehouse_dbt_models"]
