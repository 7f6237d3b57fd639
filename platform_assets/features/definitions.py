import dagster as dg

from platform_assets.features.assets import feast_feature_views, feast_online_store, training_set
from platform_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    from platform_assets.features.velocity_assets import build_defs as velocity_defs

    return dg.Definitions.merge(dg.Definitions(assets=[feast_feature_views, feast_online_store, training_set]),
                                velocity_defs(settings))
