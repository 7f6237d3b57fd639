"""The daily partitioning shared by ingestion (what it loads) and automation (what the schedule asks for)."""

import dagster as dg

from platform_assets.settings import load_settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_settings().partition_start.isoformat(), timezone="UTC", end_offset=0
)


def refresh_latest_day() -> dg.AutomationCondition:
    """Declarative Automation of the daily scoring and monitoring assets: the newest day's partition is
    (re)materialized when it first appears or when anything upstream lands (new features, a new champion), once
    nothing upstream is missing or running and every blocking check upstream passed. Older days keep their
    history; backfill them from the UI."""
    return dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
