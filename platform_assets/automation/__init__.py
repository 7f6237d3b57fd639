"""Automation: the daily schedule, the post-ingestion refresh, Declarative Automation of scoring and monitoring,
the retrain-on-drift sensor, run-failure notifications and the rollback job."""
