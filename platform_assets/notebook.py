"""Entry points for notebooks and scripts: the same stores the assets use, for the active profile.

    from platform_assets.notebook import feature_store, champion_model
    store = feature_store()
    store.get_online_features(features=store.get_feature_service("fraud_detector_v1"),
                              entity_rows=[{"customer_id": "C0000001", "merchant_id": "M00001"}]).to_dict()

Resources are initialized here as Dagster would at run time, so `dg.EnvVar` values (production URLs and
passwords) are read from the environment and never need to appear in the notebook.
"""

from __future__ import annotations

from platform_assets.settings import Settings, load_settings


def _resource(name: str, settings: Settings | None):
    from platform_assets.definitions import build_resources

    return build_resources(settings or load_settings())[name].process_config_and_initialize()


def feature_store(settings: Settings | None = None):
    """The Feast `FeatureStore` of the platform (registry, offline and online store of the active profile)."""
    return _resource("feast", settings).store()


def champion_model(settings: Settings | None = None):
    """The registered champion (an `xgboost.XGBClassifier`), loaded from our MLflow registry by alias."""
    mlflow_tracking = _resource("mlflow_tracking", settings)
    return mlflow_tracking.setup().xgboost.load_model(mlflow_tracking.model_uri("champion"))
