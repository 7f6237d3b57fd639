import dagster as dg

from platform_assets.lib.partitions import daily_partitions
from platform_assets.monitoring.assets import build_monitoring_assets
from platform_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=build_monitoring_assets(
        daily_partitions(settings.partition_start),
        served_partitions=daily_partitions(settings.partition_start, include_today=True),
        report_due_hour=settings.report_due_hour))
