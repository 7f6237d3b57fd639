"""Daily cadence: load yesterday's files, then refresh everything downstream that does not need a retrain."""

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from platform_assets.automation.jobs import daily_ingestion_job, refresh_downstream_job

daily_ingestion_schedule = dg.build_schedule_from_partitioned_job(
    daily_ingestion_job,
    hour_of_day=1,
    description="At 01:00 UTC, ingest the day that just ended.",
)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[daily_ingestion_job],
    request_job=refresh_downstream_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a successful daily ingestion, rebuild the warehouse and the features.",
)
def refresh_after_ingestion(context: dg.RunStatusSensorContext):
    # The refresh includes the daily incremental dbt models: they rebuild exactly the days that were ingested.
    run_tags = context.dagster_run.tags
    partition_tags = {k: run_tags[k] for k in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG) if k in run_tags}
    return dg.RunRequest(
        run_key=f"refresh-after-{context.dagster_run.run_id}",
        partition_key=run_tags.get(PARTITION_NAME_TAG),
        tags=partition_tags,
    )
