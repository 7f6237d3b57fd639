import dagster as dg

from platform_assets.lib.partitions import daily_partitions
from platform_assets.serving.assets import build_served_predictions, deploy_on_champion_change, deployed_model
from platform_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[deployed_model, build_served_predictions(daily_partitions(settings.partition_start, include_today=True),
                                                         settings.warehouse_writer_pool)],
        sensors=[deploy_on_champion_change],
    )
