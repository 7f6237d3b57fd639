from datetime import timedelta

import dagster as dg

from platform_assets.settings import Settings
from platform_assets.training.assets import fraud_model


def model_freshness(max_age_days: int) -> dg.FreshnessPolicy:
    """`fraud_model` fails freshness once its last training is `max_age_days` old (warns a week before): a
    maximum model age, whether or not drift asked for a retrain. The setting is PLATFORM_MODEL_MAX_AGE_DAYS."""
    fail = timedelta(days=max_age_days)
    warn = fail - timedelta(days=7) if max_age_days > 7 else None
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)


def build_defs(settings: Settings) -> dg.Definitions:
    policy = model_freshness(settings.model_max_age_days)
    return dg.Definitions(assets=dg.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy),
                                                    [fraud_model]))
