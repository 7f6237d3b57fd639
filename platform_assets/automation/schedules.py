"""Daily cadence: load yesterday's files, then refresh everything downstream that does not need a retrain."""

import dagster as dg

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
    return dg.RunRequest(run_key=f"refresh-after-{context.dagster_run.run_id}")
