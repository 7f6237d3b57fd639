"""Automation: the daily schedule, the post-ingestion refresh, Declarative Automation of scoring and monitoring,
the retrain-on-drift sensor, run-failure notifications and the rollback job."""

from platform_assets.automation.jobs import (
    daily_ingestion_job,
    refresh_downstream_job,
    retrain_job,
    rollback_champion_job,
)
from platform_assets.automation.schedules import daily_ingestion_schedule, refresh_after_ingestion
from platform_assets.automation.sensors import monitoring_automation, notify_run_failure, retrain_on_drift

jobs = [daily_ingestion_job, refresh_downstream_job, retrain_job, rollback_champion_job]
schedules = [daily_ingestion_schedule]
sensors = [refresh_after_ingestion, retrain_on_drift, notify_run_failure, monitoring_automation]

__all__ = ["jobs", "schedules", "sensors"]
