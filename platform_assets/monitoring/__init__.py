"""Monitoring stage: Evidently drift reports and the drift verdict."""

from platform_assets.monitoring.assets import feature_drift_report, monitoring_assets

__all__ = ["feature_drift_report", "monitoring_assets"]
