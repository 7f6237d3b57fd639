"""The retrain trigger: a drift report that found drift requests exactly one retrain for its window.

The run key is the report's current window, so re-materializing the report of the same window (by hand, or
after the retrain itself) never asks again: Dagster creates at most one run per run key, even across a daemon
restart. A new window with drift is a new event, and gets its own retrain.
"""

import dagster as dg

from platform_assets.automation.jobs import retrain_job

DRIFT_REPORT = dg.AssetKey("feature_drift_report")


def retrain_run_key(metadata: dict) -> str | None:
    """The run key of the retrain a drift report asks for, or None if it asks for none."""
    detected = metadata.get("drift_detected")
    detected = getattr(detected, "value", detected)
    if not detected:
        return None
    window_end = metadata.get("current_window_end")
    window_end = getattr(window_end, "value", window_end)
    return f"drift-retrain:{window_end}"


@dg.asset_sensor(
    asset_key=DRIFT_REPORT,
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrain the fraud model once per drift event found by feature_drift_report.",
)
def retrain_on_drift(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    metadata = asset_event.asset_materialization.metadata if asset_event.asset_materialization else {}
    run_key = retrain_run_key(metadata)
    if run_key is None:
        return dg.SkipReason(f"latest drift report (run {asset_event.run_id[:8]}) found no drift")
    return dg.RunRequest(run_key=run_key, tags={"trigger": "drift", "drift_window": run_key.split(":", 1)[1]})
