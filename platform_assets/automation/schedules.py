"""Daily cadence: load yesterday's files, then refresh everything downstream that does not need a retrain."""


import dagster as dg

from platform_assets.automation.jobs import refresh_downstream_job
from platform_assets.lib import names


def daily_ingestion_schedule(daily_ingestion_job) -> dg.ScheduleDefinition:
    return dg.build_schedule_from_partitioned_job(
        daily_ingestion_job,
        name="daily_ingestion_schedule",
        hour_of_day=1,
        description="At 01:00 UTC, ingest the day that just ended.",
    )


def refresh_request(run_tags: dict[str, str], run_id: str) -> dg.RunRequest:
    """The refresh of one successful ingestion run: the same partition (or range), so the daily incremental dbt
    models rebuild exactly the days that were ingested."""
    range_tags = {k: run_tags[k] for k in (names.PARTITION_RANGE_START_TAG, names.PARTITION_RANGE_END_TAG)
                  if k in run_tags}
    return dg.RunRequest(run_key=f"refresh-after-{run_id}", partition_key=run_tags.get(names.PARTITION_TAG),
                         tags=range_tags)


def refresh_after_ingestion_sensor(daily_ingestion_job) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="refresh_after_ingestion",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[daily_ingestion_job],
        request_job=refresh_downstream_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After a successful daily ingestion, rebuild the warehouse and the features.",
    )
    def refresh_after_ingestion(context: dg.RunStatusSensorContext):
        return refresh_request(context.dagster_run.tags, context.dagster_run.run_id)

    return refresh_after_ingestion
