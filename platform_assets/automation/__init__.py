"""Automation: the daily schedule, the post-ingestion refresh and the retrain-on-drift sensor."""

from platform_assets.automation.jobs import daily_ingestion_job, refresh_downstream_job, retrain_job
from platform_assets.automation.schedules import daily_ingestion_schedule, refresh_after_ingestion
from platform_assets.automation.sensors import retrain_on_drift

jobs = [daily_ingestion_job, refresh_downstream_job, retrain_job]
schedules = [daily_ingestion_schedule]
sensors = [refresh_after_ingestion, retrain_on_drift]

__all__ = ["jobs", "schedules", "sensors"]
