import dagster as dg

from platform_assets.settings import Settings
from platform_assets.training.assets import fraud_model


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[fraud_model])
