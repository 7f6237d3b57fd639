"""The monitoring verdicts as asset checks: one result per daily partition, evaluated with the report.

A report's verdict used to be a metadata key that only the retrain sensor understood; as an asset check it is
what Dagster itself shows (the asset's Checks tab, per partition, with a pass/fail history) and what the sensor
reads (automation/sensors.py). Each check is evaluated by its report in the same step, so the verdict and the
figures it was drawn from are one event.

- Drift (`no_feature_drift`, `no_prediction_drift`, `no_served_score_drift`) fails with severity WARN: a drift is
  a finding about the world, not a broken pipeline; the retrain sensor decides what to do with it.
- `fraud_recall_above_floor` fails with severity ERROR: recall of reported frauds below the floor is measured
  harm (frauds getting past review), not a hint that something may have moved.
- Too little data to judge (fewer current rows than `drift_min_rows`, fewer reported frauds than
  `min_reported_frauds`, no predictions at all) **passes, with a note**: a failed check asks for a retrain, and
  an empty window is no evidence of drift. The check's description says "insufficient data" and its metadata
  carries `verdict: insufficient_data` with the counts against their minimums, so a quiet monitor is visible on
  the check, not silently green.

The checks are partitioned like their asset (`AssetCheckSpec(partitions_def=...)`, preview in Dagster 1.13, so
its warning is silenced here, once): each day's verdict is its own check result, which the sensor reads with its
partition from the check-execution records.
"""

from __future__ import annotations

import warnings

import dagster as dg

from platform_assets.lib import names

WARN, ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR

CHECKS = {
    names.FEATURE_DRIFT_REPORT: (
        names.FEATURE_DRIFT_CHECK,
        ("Fails (WARN) when the share of drifted model inputs reaches drift_share_threshold on a window of at "
        "least drift_min_rows predictions; too few rows pass with verdict insufficient_data."),
    ),
    names.PREDICTION_DRIFT_REPORT: (
        names.PREDICTION_DRIFT_CHECK,
        ("Fails (WARN) when the champion's score distribution drifted from its holdout on at least drift_min_rows "
        "predictions; too few rows pass with verdict insufficient_data."),
    ),
    names.MODEL_PERFORMANCE: (
        names.FRAUD_RECALL_CHECK,
        ("Fails (ERROR) when fewer than min_fraud_recall of the recently reported frauds had been sent to review "
        "(at least min_reported_frauds of them); fewer reported frauds pass with verdict insufficient_data."),
    ),
    names.SERVED_TRAFFIC_REPORT: (
        names.SERVED_SCORE_DRIFT_CHECK,
        ("Fails (WARN) when the real-time service's scores drifted from the champion's holdout on at least "
        "drift_min_rows answers; fewer pass with verdict insufficient_data. Shown, not acted on by the retrain "
        "sensor."),
    ),
}


def check_spec(asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None) -> dg.AssetCheckSpec:
    name, description = CHECKS[asset_key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset_key, description=description, partitions_def=partitions_def)


def verdict_check(
    asset_key: dg.AssetKey, enough: bool, failed: bool, verdict: str, description: str, metadata: dict,
    severity: dg.AssetCheckSeverity = WARN,
) -> dg.AssetCheckResult:
    """The check result of one partition's verdict: fails only with enough data and a finding."""
    name, _ = CHECKS[asset_key]
    if not enough:
        description = f"insufficient data, no verdict (passes): {description}"
    return dg.AssetCheckResult(
        check_name=name, asset_key=asset_key, passed=not (enough and failed), severity=severity,
        description=description, metadata={names.VERDICT: verdict, **metadata},
    )


def insufficient(asset_key: dg.AssetKey, description: str, metadata: dict | None = None,
                 severity: dg.AssetCheckSeverity = WARN) -> dg.AssetCheckResult:
    """Nothing to judge (no predictions, no served answers in the window)."""
    return verdict_check(asset_key, False, False, "insufficient_data", description, metadata or {}, severity)
