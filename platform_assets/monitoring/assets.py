"""Monitoring: does the world the champion sees still look like the one it was trained on, and does it still work?

Four daily-partitioned assets, so every day's verdict is kept and Dagit plots their figures across partitions.
Partition D looks at the days up to D only:

- `feature_drift_report`: Evidently drift of every model input, the champion's training holdout (out-of-sample,
  the newest window it was trained for) vs the last `drift_window_days` of predictions.
- `prediction_drift_report`: the champion's score distribution on that holdout vs on the same current window.
- `model_performance`: label-delayed quality of what was served. On the days whose chargeback window has matured
  (`label_maturity_days`), ROC AUC, PR AUC and precision at the review budget. And, because frauds are reported
  long before the window closes, the share of recently *reported* frauds that had been sent to review: recall
  needs only positives, so it sees a new fraud pattern weeks before precision can.
- `data_quality_summary`: rows, missing values and all-null columns of the day as the model saw it.
- `served_traffic_report`: the same questions on live traffic, per served day: the scores the real-time
  service answered (its prediction log, loaded by `served_predictions`) against the champion's holdout, and,
  for served transactions whose labels have matured, their PR AUC and recall at the review threshold.

Each of the first three and `served_traffic_report` evaluates its verdict as an asset check of the partition
(monitoring/checks.py: `no_feature_drift`, `no_prediction_drift`, `fraud_recall_above_floor`,
`no_served_score_drift`); the retrain sensor (automation/sensors.py) turns failed checks of the first three into
retrains. Each report is due by a stated hour of the next day (a freshness policy, `report_freshness`), and
carries a `code_version`, bumped when its code changes what it reports.
All four re-materialize by themselves for the newest day when new predictions land (Declarative Automation).
pandas, Evidently and the model load when an asset runs, never when the Definitions load.
"""


from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from platform_assets.lib import names
from platform_assets.lib.partitions import refresh_latest_day
from platform_assets.monitoring.checks import ERROR, check_spec, insufficient, verdict_check
from platform_assets.resources import LoopPolicy, MlflowResource, PlatformStorage

MONITORED = [names.DAILY_PREDICTIONS, names.FRAUD_MODEL]
# Code versions: bump one when a change to its asset's code changes what the report says (Dagit then marks the
# partitions materialized by older code as changed).
FEATURE_DRIFT_REPORT_VERSION = "1"
PREDICTION_DRIFT_REPORT_VERSION = "1"
MODEL_PERFORMANCE_VERSION = "1"
DATA_QUALITY_SUMMARY_VERSION = "1"
SERVED_TRAFFIC_REPORT_VERSION = "1"


def _day(context: dg.AssetExecutionContext) -> date:
    return context.partition_time_window.start.date()


# The champion's scored holdout, kept for the next partition monitored in the same process (a backfill of many
# days, the demo): loading the model and scoring its holdout is most of a small report's time. One entry only.
_REFERENCE: dict[tuple, tuple] = {}


def _champion_reference(mlflow_tracking: MlflowResource, storage: PlatformStorage):
    """(the champion, its training holdout scored by it)."""
    from platform_assets.lib import predictions as pr
    from platform_assets.lib.champion import require_champion
    from platform_assets.lib.training_sets import read_split

    champion = require_champion(mlflow_tracking, storage.training_sets_dir())
    key = (mlflow_tracking.tracking_uri, mlflow_tracking.model_name, champion.number,
           champion.version.tags.get(names.TAG_TRAINING_SET_ID), str(storage.training_sets_dir()))
    if key not in _REFERENCE:
        reference = read_split(champion.manifest.path, "holdout")
        _REFERENCE.clear()
        _REFERENCE[key] = (champion, reference.assign(**{pr.SCORE: champion.score(reference)}))
    return _REFERENCE[key]


def _calibrated_thresholds(manifest, reference, storage: PlatformStorage, policy: LoopPolicy) -> dict[str, float]:
    """The champion's per-column drift thresholds (monitoring/drift.py). They depend only on its training set and
    the policy, so they are computed once per champion and kept beside the reports, not recomputed every day."""
    import hashlib
    import json

    from platform_assets.lib.files import write_atomic
    from platform_assets.lib.training_sets import read_training_inputs
    from platform_assets.monitoring import drift
    from platform_assets.monitoring.drift import calibrated_thresholds

    # Everything the thresholds follow from is in the name, so a changed policy or calibration computes new ones.
    inputs = [manifest.snapshot_id, policy.drift_window_days, policy.max_report_rows, drift.THRESHOLD_FLOOR,
              drift.CALIBRATION_SIGMAS, drift.MIN_WINDOW_ROWS]
    key = hashlib.sha256(repr(inputs).encode()).hexdigest()[:16]
    path = storage.reports_dir() / "feature_drift" / "thresholds" / f"{manifest.snapshot_id}-{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    history = read_training_inputs(manifest, "train")  # the champion's training rows, float32, held once
    thresholds = calibrated_thresholds(reference, history.inputs, manifest.feature_columns, policy.drift_window_days,
                                       times=history.timestamps)
    write_atomic(path, json.dumps(thresholds, indent=1, sort_keys=True))
    return thresholds


@dataclass(frozen=True)
class _DriftWindow:
    """What both drift reports of day `day` compare: the champion's holdout vs the predictions of first..day."""

    day: date
    champion: object  # lib.champion.Champion
    reference: object  # pandas frames
    current: object
    metadata: dict

    @property
    def manifest(self):
        return self.champion.manifest


def _drift_window(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowResource, storage: PlatformStorage, policy: LoopPolicy
) -> _DriftWindow:
    from platform_assets.lib import predictions as pr

    day = _day(context)
    first = day - timedelta(days=policy.drift_window_days - 1)
    champion, reference = _champion_reference(mlflow_tracking, storage)
    current, days = pr.read_days(storage.predictions_dir(), first, day)
    metadata = {
        names.DRIFT_WINDOW_END: day.isoformat(),
        "current_window_start": first.isoformat(),
        "current_window_end": day.isoformat(),
        "days_with_predictions": len(days),
        "current_rows_total": len(current),
        "champion_version": champion.number,
    }
    return _DriftWindow(day, champion, reference, current, metadata)


def _report_link(storage: PlatformStorage, report: str, day: date, snapshot, metadata: dict) -> dg.MetadataValue:
    """Publish the day's Evidently snapshot and link it, unless there is no verdict: with too few rows the report's
    own headline would still say drift or no drift, so the day's snapshot is withdrawn instead (the HTML file stays
    under `report_path`)."""
    from platform_assets.monitoring.workspace import publish, withdraw

    if snapshot is None or metadata.get(names.VERDICT) == "insufficient_data":
        withdraw(storage.evidently_workspace_dir(), report, day)
        return dg.MetadataValue.text("none: too few rows for a verdict")
    return dg.MetadataValue.url(publish(storage.evidently_workspace_dir(), storage.evidently_url, report, day,
                                        snapshot, metadata, keep_days=storage.evidently_keep_days))


def _no_verdict(storage: PlatformStorage, report: str, day: date, metadata: dict,
                check: dg.AssetCheckResult) -> dg.MaterializeResult:
    """A day with nothing to compare: no verdict, its check passes with a note, and its old snapshot goes."""
    from platform_assets.monitoring.workspace import withdraw

    withdraw(storage.evidently_workspace_dir(), report, day)
    return dg.MaterializeResult(metadata={**metadata, names.VERDICT: "insufficient_data"}, check_results=[check])


def _verdict(enough: bool, drifted: bool) -> str:
    return "drift" if enough and drifted else ("no_drift" if enough else "insufficient_data")


def feature_drift_report(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowResource, storage: PlatformStorage, policy: LoopPolicy
) -> dg.MaterializeResult:
    from platform_assets.lib import charts
    from platform_assets.monitoring.drift import drift_report, sample
    from platform_assets.monitoring.workspace import FEATURE_DRIFT

    window = _drift_window(context, mlflow_tracking, storage, policy)
    day, champion, manifest, reference = window.day, window.champion, window.manifest, window.reference
    current = sample(window.current, policy.max_report_rows)
    enough = len(window.current) >= policy.drift_min_rows
    metadata = {
        **window.metadata,
        "drift_share_threshold": dg.MetadataValue.float(policy.drift_share_threshold),
        "drift_min_rows": policy.drift_min_rows,
        names.TAG_TRAINING_SET_ID: manifest.snapshot_id,
        "reference_window": f"{manifest.holdout_start} .. {manifest.window_end}",
    }
    if current.empty:
        context.log.info(f"{day}: no predictions in {metadata['current_window_start']}..{day}, no drift verdict")
        return _no_verdict(storage, FEATURE_DRIFT, day, metadata, insufficient(
            names.FEATURE_DRIFT_REPORT, f"no predictions in {metadata['current_window_start']}..{day}",
            {"current_rows": 0, "drift_min_rows": policy.drift_min_rows}))
    html = storage.reports_dir() / "feature_drift" / f"{day.isoformat()}.html"
    reference = sample(reference, policy.max_report_rows)
    thresholds = _calibrated_thresholds(manifest, reference, storage, policy)
    summary = drift_report(reference, current, manifest.feature_columns, html, thresholds,
                           share_threshold=policy.drift_share_threshold)
    drifted = summary.is_drift(policy.drift_share_threshold)
    verdict = _verdict(enough, drifted)
    figure = charts.drift_summary_figure(summary.column_scores, summary.drifted_columns)
    # The champion's own MLflow run collects its drift checks: one picture per day, drift share over time.
    client = mlflow_tracking.client()
    client.log_figure(champion.version.run_id, figure, f"drift/{day.isoformat()}/drift_summary.png")
    client.log_metric(champion.version.run_id, "drift_share", summary.drift_share)
    drift_picture = charts.markdown_image(charts.to_png(figure), "drift score per column")
    report = _report_link(storage, FEATURE_DRIFT, day, summary.snapshot,
                          {names.VERDICT: verdict, "drift_share_threshold": policy.drift_share_threshold,
                           "champion_version": champion.number})
    context.log.info(
        f"{day} {verdict}: {len(summary.drifted_columns)}/{summary.columns_tested} columns drifted "
        f"(share {summary.drift_share:.2f}, threshold {policy.drift_share_threshold}): {summary.drifted_columns}"
    )
    check = verdict_check(
        names.FEATURE_DRIFT_REPORT, enough, drifted, verdict,
        f"{len(summary.drifted_columns)}/{summary.columns_tested} inputs drifted (share {summary.drift_share:.3f}, "
        f"threshold {policy.drift_share_threshold}) on {len(window.current):,} rows "
        f"(minimum {policy.drift_min_rows:,}): {', '.join(summary.drifted_columns) or 'none'}",
        {"drift_share": dg.MetadataValue.float(summary.drift_share),
         "drift_share_threshold": dg.MetadataValue.float(policy.drift_share_threshold),
         "drifted_columns": dg.MetadataValue.json(summary.drifted_columns),
         "columns_tested": summary.columns_tested,
         "current_rows": len(window.current), "drift_min_rows": policy.drift_min_rows},
    )
    return dg.MaterializeResult(
        check_results=[check],
        metadata={
            **metadata,
            names.VERDICT: verdict,
            names.DRIFT_SHARE: dg.MetadataValue.float(summary.drift_share),
            "drifted_columns": dg.MetadataValue.json(summary.drifted_columns),
            "drifted_column_count": len(summary.drifted_columns),
            "column_drift_scores": dg.MetadataValue.json({k: round(v, 4) for k, v in summary.column_scores.items()}),
            # Calibrated on the champion's training history (monitoring/drift.py): what a quiet window looks like.
            "column_drift_thresholds": dg.MetadataValue.json(thresholds),
            "skipped_columns": dg.MetadataValue.json(summary.skipped_columns),
            "report": report,
            "report_path": dg.MetadataValue.path(str(html)),
            "current_rows": summary.current_rows,
            "reference_rows": summary.reference_rows,
            "drift_summary": dg.MetadataValue.md(drift_picture),
            # One number per column, so Dagit plots each column's drift across partitions.
            **{f"drift_score/{column}": dg.MetadataValue.float(score)
               for column, score in summary.column_scores.items()},
        }
    )


def prediction_drift_report(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowResource, storage: PlatformStorage, policy: LoopPolicy
) -> dg.MaterializeResult:
    from platform_assets.lib import predictions as pr
    from platform_assets.monitoring.drift import drift_report, sample
    from platform_assets.monitoring.workspace import PREDICTION_DRIFT

    window = _drift_window(context, mlflow_tracking, storage, policy)
    day, champion, manifest, reference = window.day, window.champion, window.manifest, window.reference
    metadata = window.metadata
    if window.current.empty:
        return _no_verdict(storage, PREDICTION_DRIFT, day, metadata, insufficient(
            names.PREDICTION_DRIFT_REPORT, f"no predictions in {metadata['current_window_start']}..{day}",
            {"current_rows": 0, "drift_min_rows": policy.drift_min_rows}))
    current = sample(window.current, policy.max_report_rows)
    if all(c in current for c in manifest.feature_columns):
        # Days scored by an earlier champion are re-scored, so both sides are the same model's scores.
        current = current.assign(**{pr.SCORE: champion.score(current)})
    else:
        current = current[current["model_version"] == champion.number]
    html = storage.reports_dir() / "prediction_drift" / f"{day.isoformat()}.html"
    summary = drift_report(sample(reference, policy.max_report_rows), current, [pr.SCORE], html)
    enough = len(current) >= policy.drift_min_rows
    drifted = pr.SCORE in summary.drifted_columns
    verdict = _verdict(enough, drifted)
    report = _report_link(storage, PREDICTION_DRIFT, day, summary.snapshot,
                          {names.VERDICT: verdict, "champion_version": champion.number})
    ref_scores, cur_scores = reference[pr.SCORE], current[pr.SCORE]
    context.log.info(f"{day} {verdict}: score drift {summary.column_scores.get(pr.SCORE, float('nan')):.3f}, "
                     f"mean score {ref_scores.mean():.4f} -> {cur_scores.mean():.4f}")
    score_drift = summary.column_scores.get(pr.SCORE, float("nan"))
    check = verdict_check(
        names.PREDICTION_DRIFT_REPORT, enough, drifted, verdict,
        f"score drift {score_drift:.3f} ({'drifted' if drifted else 'within'} Evidently's test), mean score "
        f"{ref_scores.mean():.4f} -> {cur_scores.mean():.4f} on {len(current):,} rows "
        f"(minimum {policy.drift_min_rows:,})",
        {"score_drift": dg.MetadataValue.float(score_drift),
         "mean_score_reference": dg.MetadataValue.float(float(ref_scores.mean())),
         "mean_score_current": dg.MetadataValue.float(float(cur_scores.mean())),
         "current_rows": len(current), "drift_min_rows": policy.drift_min_rows},
    )
    return dg.MaterializeResult(
        check_results=[check],
        metadata={
            **metadata,
            names.VERDICT: verdict,
            "score_drift": dg.MetadataValue.float(summary.column_scores.get(pr.SCORE, float("nan"))),
            "mean_score_reference": dg.MetadataValue.float(float(ref_scores.mean())),
            "mean_score_current": dg.MetadataValue.float(float(cur_scores.mean())),
            "p99_score_reference": dg.MetadataValue.float(float(ref_scores.quantile(0.99))),
            "p99_score_current": dg.MetadataValue.float(float(cur_scores.quantile(0.99))),
            "report": report,
            "report_path": dg.MetadataValue.path(str(html)),
            "current_rows": len(current),
            "reference_rows": summary.reference_rows,
        }
    )


def performance_figures(scored, label) -> dict[str, float]:
    """ROC AUC, PR AUC and precision/recall of the review queue on labelled predictions (empty if one class)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from platform_assets.lib import predictions as pr

    y = label.to_numpy().astype(int)
    if len(y) == 0 or y.min() == y.max():
        return {}
    flagged = scored[pr.FLAGGED].to_numpy().astype(bool)
    return {
        "roc_auc": float(roc_auc_score(y, scored[pr.SCORE])),
        "pr_auc": float(average_precision_score(y, scored[pr.SCORE])),
        "precision_at_budget": float(y[flagged].mean()) if flagged.any() else 0.0,
        "recall_at_budget": float(flagged[y == 1].mean()),
    }


def model_performance(
    context: dg.AssetExecutionContext, storage: PlatformStorage, policy: LoopPolicy
) -> dg.MaterializeResult:
    import pandas as pd

    from platform_assets.lib import predictions as pr
    from platform_assets.lib.exports import query

    day = _day(context)
    end = context.partition_time_window.end
    matured_last = day - timedelta(days=policy.label_maturity_days)
    matured_first = matured_last - timedelta(days=policy.drift_window_days - 1)
    served, _ = pr.read_days(storage.predictions_dir(), matured_first, day)
    metadata: dict = {
        names.DRIFT_WINDOW_END: day.isoformat(),
        "matured_window": f"{matured_first} .. {matured_last}",
        "label_maturity_days": policy.label_maturity_days,
        "review_budget": dg.MetadataValue.float(policy.review_budget),
    }
    if served.empty:
        return dg.MaterializeResult(
            metadata={**metadata, names.VERDICT: "insufficient_data"},
            check_results=[insufficient(names.MODEL_PERFORMANCE, f"no predictions in {matured_first}..{day}",
                                        {"reported_frauds": 0, "min_reported_frauds": policy.min_reported_frauds},
                                        severity=ERROR)],
        )
    # Only what was known at the end of day D: a chargeback reported later does not count yet.
    labels = query(
        storage.exports_dir(),
        "SELECT transaction_id, fraud_reported_at FROM {labels} WHERE event_ts >= $first AND event_ts < $end "
        "AND fraud_reported_at < $end",
        {"first": pd.Timestamp(matured_first, tz="UTC"), "end": end},
        labels="fct_transaction_labels",
    )
    served = served.merge(labels, on="transaction_id", how="left")
    served["is_fraud"] = served["fraud_reported_at"].notna()
    event_day = pd.to_datetime(served["event_timestamp"], utc=True).dt.date
    matured = served[(event_day >= matured_first) & (event_day <= matured_last)]
    figures = performance_figures(matured, matured["is_fraud"])
    recent_start = pd.Timestamp(day - timedelta(days=policy.drift_window_days - 1), tz="UTC")
    reported = served[served["fraud_reported_at"] >= recent_start]
    recall = float(reported[pr.FLAGGED].mean()) if len(reported) else float("nan")
    enough = len(reported) >= policy.min_reported_frauds
    degraded = enough and recall < policy.min_fraud_recall
    verdict = _verdict(enough, degraded).replace("drift", "degraded")
    context.log.info(f"{day} {verdict}: {int(reported[pr.FLAGGED].sum())}/{len(reported)} recently reported frauds "
                     f"had been sent to review; matured {matured_first}..{matured_last}: {figures or 'one class only'}")
    check = verdict_check(
        names.MODEL_PERFORMANCE, enough, degraded, verdict,
        f"{int(reported[pr.FLAGGED].sum())}/{len(reported)} frauds reported since {recent_start.date()} had been "
        f"sent to review (recall {recall:.3f}, floor {policy.min_fraud_recall}, minimum "
        f"{policy.min_reported_frauds} reported frauds)",
        {"reported_fraud_recall": dg.MetadataValue.float(recall),
         "min_fraud_recall": dg.MetadataValue.float(policy.min_fraud_recall),
         "reported_frauds": len(reported), "min_reported_frauds": policy.min_reported_frauds},
        severity=ERROR,
    )
    return dg.MaterializeResult(
        check_results=[check],
        metadata={
            **metadata,
            names.VERDICT: verdict,
            "reported_fraud_recall": dg.MetadataValue.float(recall),
            "reported_frauds": len(reported),
            "min_fraud_recall": dg.MetadataValue.float(policy.min_fraud_recall),
            "matured_rows": len(matured),
            "matured_frauds": int(matured["is_fraud"].sum()),
            **{f"matured_{k}": dg.MetadataValue.float(v) for k, v in figures.items()},
            "model_versions_served": dg.MetadataValue.json(sorted(served["model_version"].unique().tolist())),
        }
    )


def data_quality_summary(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowResource, storage: PlatformStorage
) -> dg.MaterializeResult:
    import numpy as np

    from platform_assets.lib import predictions as pr
    from platform_assets.lib.training_sets import KEYS
    from platform_assets.monitoring.drift import summary_report
    from platform_assets.monitoring.workspace import DATA_QUALITY

    day = _day(context)
    frame, _ = pr.read_days(storage.predictions_dir(), day, day)
    champion = mlflow_tracking.champion_version()
    features = [c for c in frame.columns if c not in {*KEYS, pr.SCORE, pr.FLAGGED, *pr.PROVENANCE, "scored_at"}]
    if frame.empty:
        return dg.MaterializeResult(metadata={"dagster/row_count": 0, "all_null_columns": dg.MetadataValue.json([])})
    null_share = frame[features].isna().mean()
    html = storage.reports_dir() / "data_quality" / f"{day.isoformat()}.html"
    skipped, snapshot = summary_report(frame, features, html)
    report = _report_link(storage, DATA_QUALITY, day, snapshot, {})
    scores = frame[pr.SCORE]
    context.log.info(f"{day}: {len(frame):,} rows, {len(skipped)} empty columns, "
                     f"max missing share {null_share.max():.3f}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "duplicate_transaction_ids": int(frame["transaction_id"].duplicated().sum()),
            "max_missing_share": dg.MetadataValue.float(float(null_share.max()) if len(null_share) else 0.0),
            "missing_share_by_column": dg.MetadataValue.json({k: round(float(v), 4) for k, v in null_share.items()}),
            "all_null_columns": dg.MetadataValue.json(skipped),
            "scores_out_of_range": int(((scores < 0) | (scores > 1) | scores.isna()).sum()),
            "mean_amount": dg.MetadataValue.float(float(frame["amount"].mean())) if "amount" in frame else 0.0,
            "report": report,
            "report_path": dg.MetadataValue.path(str(html)) if report else "none",
            "champion_version": str(champion.version) if champion else "none",
            "feature_columns_nonfinite": int(np.isinf(frame[features].select_dtypes("number")).sum().sum()),
        }
    )




def served_traffic_report(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowResource, storage: PlatformStorage, policy: LoopPolicy
) -> dg.MaterializeResult:
    """Prediction drift and label-delayed performance of what the real-time service answered."""
    import pandas as pd

    from platform_assets.lib import predictions as pr
    from platform_assets.lib.exports import query
    from platform_assets.monitoring.drift import drift_report, sample
    from platform_assets.monitoring.workspace import SERVED_TRAFFIC

    day = _day(context)
    first = day - timedelta(days=policy.drift_window_days - 1)
    champion, reference = _champion_reference(mlflow_tracking, storage)
    served = pr.read_served_days(storage.served_dir(), first, day)
    metadata: dict = {"current_window": f"{first} .. {day}", "champion_version": champion.number,
                      "served_rows_total": len(served)}
    if served.empty:
        return _no_verdict(storage, SERVED_TRAFFIC, day, metadata, insufficient(
            names.SERVED_TRAFFIC_REPORT, f"no served answers in {first}..{day}",
            {"current_rows": 0, "drift_min_rows": policy.drift_min_rows}))
    # The champion's answers only: a window across a promotion compares each model with its own holdout.
    current = served[served["model_version"] == champion.number].rename(columns={pr.SERVED_SCORE: pr.SCORE})
    metadata.update({"current_rows": len(current),
                     "review_share": dg.MetadataValue.float(float((served["decision"] == "review").mean())),
                     "stale_share": dg.MetadataValue.float(float(served["stale_features"].map(len).gt(0).mean())),
                     "unknown_customer_share": dg.MetadataValue.float(float(served["unknown_customer"].mean()))})
    enough = len(current) >= policy.drift_min_rows
    drifted = False
    if len(current):
        html = storage.reports_dir() / "served_traffic" / f"{day.isoformat()}.html"
        summary = drift_report(sample(reference, policy.max_report_rows),
                               sample(current[[pr.SCORE]], policy.max_report_rows), [pr.SCORE], html)
        drifted = pr.SCORE in summary.drifted_columns
        report = _report_link(storage, SERVED_TRAFFIC, day, summary.snapshot,
                              {names.VERDICT: _verdict(enough, drifted), "champion_version": champion.number})
        metadata.update({
            "score_drift": dg.MetadataValue.float(summary.column_scores.get(pr.SCORE, float("nan"))),
            "mean_score_reference": dg.MetadataValue.float(float(reference[pr.SCORE].mean())),
            "mean_score_served": dg.MetadataValue.float(float(current[pr.SCORE].mean())),
            "report": report,
            "report_path": dg.MetadataValue.path(str(html)),
        })
    # Label-delayed: served transactions old enough for their chargebacks, known by the end of day D.
    end = context.partition_time_window.end
    matured = current[pd.to_datetime(current["event_ts"], utc=True)
                      < pd.Timestamp(end) - pd.Timedelta(days=policy.label_maturity_days)]
    labelled = pd.DataFrame()
    if len(matured):
        labels = query(storage.exports_dir(), "SELECT transaction_id, fraud_reported_at FROM {labels} "
                       "WHERE transaction_id IN (SELECT unnest($ids))",
                       {"ids": matured["transaction_id"].unique().tolist()}, labels="fct_transaction_labels")
        labelled = matured.merge(labels, on="transaction_id", how="inner")
    metadata["labelled_rows"] = len(labelled)
    if len(labelled):
        y = (labelled["fraud_reported_at"].notna() & (labelled["fraud_reported_at"] < end)).astype(int)
        scored = labelled.assign(**{pr.FLAGGED: labelled["decision"] == "review"})
        figures = performance_figures(scored, y)
        metadata.update({f"matured_{k}": dg.MetadataValue.float(v) for k, v in figures.items()})
    verdict = _verdict(enough, drifted)
    context.log.info(f"{day} live traffic {verdict}: {len(current):,} answers of v{champion.number}, "
                     f"{len(labelled):,} with matured labels")
    served_drift = getattr(metadata.get("score_drift"), "value", float("nan"))
    check = verdict_check(
        names.SERVED_TRAFFIC_REPORT, enough, drifted, verdict,
        f"served score drift {served_drift:.3f} on {len(current):,} answers of v{champion.number} "
        f"(minimum {policy.drift_min_rows:,})",
        {"score_drift": dg.MetadataValue.float(served_drift), "current_rows": len(current),
         "drift_min_rows": policy.drift_min_rows},
    )
    return dg.MaterializeResult(metadata={**metadata, names.VERDICT: verdict, "drift_on_live_traffic": enough and drifted},
                                check_results=[check])


def report_freshness(due_hour: int) -> dg.FreshnessPolicy:
    """Day D's report exists by `due_hour`:00 UTC on D+1: a materialization between midnight (the day is over,
    its partition exists) and the deadline counts; none by then and the asset shows as failing freshness until
    one lands. The daemon evaluates it (Dagster 1.13's freshness policies)."""
    return dg.FreshnessPolicy.cron(deadline_cron=f"0 {due_hour} * * *", lower_bound_delta=timedelta(hours=due_hour),
                                   timezone="UTC")


def build_monitoring_assets(partitions: dg.PartitionsDefinition,
                            served_partitions: dg.PartitionsDefinition | None = None,
                            report_due_hour: int = 6) -> list[dg.AssetsDefinition]:
    """The five daily monitoring assets, partitioned like scoring; the newest day refreshes itself, and each of
    the four batch reports is due by `report_due_hour` UTC the next morning (`report_freshness`)."""
    served_partitions = served_partitions or partitions
    daily = {"group_name": names.MONITORING, "partitions_def": partitions,
             "automation_condition": refresh_latest_day(), "freshness_policy": report_freshness(report_due_hour)}
    return [
        dg.asset(
            key=names.FEATURE_DRIFT_REPORT, kinds={"evidently", "html"}, deps=MONITORED, **daily,
            code_version=FEATURE_DRIFT_REPORT_VERSION,
            check_specs=[check_spec(names.FEATURE_DRIFT_REPORT, partitions)],
            description="Evidently drift of every model input: champion's training holdout vs the newest days.",
        )(feature_drift_report),
        dg.asset(
            key=names.PREDICTION_DRIFT_REPORT, kinds={"evidently", "html"}, deps=MONITORED, **daily,
            code_version=PREDICTION_DRIFT_REPORT_VERSION,
            check_specs=[check_spec(names.PREDICTION_DRIFT_REPORT, partitions)],
            description="Evidently drift of the champion's score distribution: its training holdout vs the newest "
            "days.",
        )(prediction_drift_report),
        dg.asset(
            key=names.MODEL_PERFORMANCE, kinds={"sklearn"}, deps=MONITORED, **daily,
            code_version=MODEL_PERFORMANCE_VERSION,
            check_specs=[check_spec(names.MODEL_PERFORMANCE, partitions)],
            description="Label-delayed quality of the served scores: AUCs and precision at the review budget on "
            "matured days, and the share of recently reported frauds that had been sent to review.",
        )(model_performance),
        dg.asset(
            key=names.DATA_QUALITY_SUMMARY, kinds={"evidently", "html"}, deps=[names.DAILY_PREDICTIONS], **daily,
            code_version=DATA_QUALITY_SUMMARY_VERSION,
            description="Data-quality summary of one day as the model saw it: rows, missing values, empty columns.",
        )(data_quality_summary),
        dg.asset(
            key=names.SERVED_TRAFFIC_REPORT, kinds={"evidently", "html"}, group_name=names.MONITORING,
            deps=[names.SERVED_PREDICTIONS, names.FRAUD_MODEL], partitions_def=served_partitions,
            # No freshness policy: live traffic comes when the service serves, not by a clock.
            automation_condition=refresh_latest_day(), code_version=SERVED_TRAFFIC_REPORT_VERSION,
            check_specs=[check_spec(names.SERVED_TRAFFIC_REPORT, served_partitions)],
            description="Live traffic: the real-time service's scores against the champion's holdout (Evidently), "
            "and PR AUC / recall at the review threshold of served transactions whose labels matured.",
        )(served_traffic_report),
    ]
