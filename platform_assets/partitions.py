"""The daily partitioning shared by ingestion (what it loads) and automation (what the schedule asks for)."""

import dagster as dg

from platform_assets.settings import load_settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_settings().partition_start.isoformat(), timezone="UTC", end_offset=0
)
