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
from platform_assets.automation.stream import transaction_stream_sensor
from platform_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    ingestion_job = daily_ingestion_job()
    # In stream mode transactions are not file-driven: the stream sensor drains them; the landing sensor and the
    # daily schedule still run the daily job, whose raw_transactions then only loads what the stream holds.
    stream = ([transaction_stream_sensor(settings.partition_start, settings.stream_name)]
              if settings.sources.transactions == "stream" else [])
    # The landing sensor watches only the sources that arrive as files.
    files = settings.sources.file_sources
    landing = ([landing_sensor(ingestion_job, settings.landing_dir, settings.landing_lookback_days,
                               settings.partition_start, sources=files)] if files else [])
    return dg.Definitions(
        asset_checks=[fraud_model_not_due_for_retrain],
        jobs=[ingestion_job, refresh_downstream_job, retrain_job, rollback_champion_job],
        schedules=[daily_ingestion_schedule(ingestion_job)],
        sensors=[refresh_after_ingestion_sensor(ingestion_job),
                 *landing,
                 retrain_on_drift, notify_run_failure, monitoring_automation, online_store_watch, *stream],
    )
