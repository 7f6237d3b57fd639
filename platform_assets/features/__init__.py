"""Features stage: Feast registry, online store and point-in-time training sets."""

from platform_assets.features.assets import (
    feast_feature_views,
    feast_online_store,
    feature_assets,
    training_set,
)

__all__ = ["feast_feature_views", "feast_online_store", "feature_assets", "training_set"]
