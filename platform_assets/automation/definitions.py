import dagster as dg

from platform_assets.automation.checks import fraud_model_not_due_for_retrain
from platform_assets.automation.jobs import (
    daily_ingestion_job,
    refresh_downstream_job,
    retrain_job,
    rollback_champion_job,
)
from platform_assets.automation.landing import landing_sensor
from platform_assets.automation.schedules import daily_ingestion_schedule, refresh_after_ingestion_sensor
from platform_assets.automation.sensors import (
    monitoring_automation,
    notify_run_failure,
    online_store_watch,
    retrain_on_drift,
)
from platform_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    ingestion_job = daily_ingestion_job()
    return dg.Definitions(
        asset_checks=[fraud_model_not_due_for_retrain],
        jobs=[ingestion_job, refresh_downstream_job, retrain_job, rollback_champion_job],
        schedules=[daily_ingestion_schedule(ingestion_job)],
        sensors=[refresh_after_ingestion_sensor(ingestion_job),
                 landing_sensor(ingestion_job, settings.landing_dir, settings.landing_lookback_days,
                                settings.partition_start),
                 retrain_on_drift, notify_run_failure, monitoring_automation, online_store_watch],
    )
