"""Monitoring stage: Evidently drift reports, label-delayed performance and data quality, per day."""
