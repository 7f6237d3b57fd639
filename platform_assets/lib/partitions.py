"""The daily partitioning shared by ingestion (what it loads), the daily dbt models, scoring, monitoring and
automation (what the schedule asks for). Its first day is a setting (`PLATFORM_PARTITION_START`), so it is built
from the settings when the Definitions are, never at import."""

from __future__ import annotations

from datetime import date

import dagster as dg


def daily_partitions(start: date, include_today: bool = False) -> dg.DailyPartitionsDefinition:
    """UTC days from `start` up to the day that just ended (a day is a partition once it is over); with
    `include_today`, the running day too (live logs, loaded so far and replaced by each re-run)."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC",
                                        end_offset=1 if include_today else 0)


def refresh_latest_day() -> dg.AutomationCondition:
    """Declarative Automation of the daily scoring and monitoring assets: the newest day's partition is
    (re)materialized when it first appears or when anything upstream lands (new features, a new champion), once
    nothing upstream is missing or running and every blocking check upstream passed. Older days keep their
    history; backfill them from the UI."""
    return dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
