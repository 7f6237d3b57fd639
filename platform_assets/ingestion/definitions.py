import dagster as dg

from platform_assets.ingestion.assets import build_ingestion_assets
from platform_assets.ingestion.manifest import landed_files
from platform_assets.lib.partitions import daily_partitions
from platform_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[*build_ingestion_assets(daily_partitions(settings.partition_start)), landed_files])
