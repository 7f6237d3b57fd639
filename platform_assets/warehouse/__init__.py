"""Warehouse stage: the dbt project built by `dbt build`, as Dagster assets and checks."""
