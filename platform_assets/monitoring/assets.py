"""Monitoring: does the world the champion model sees today still look like the one it was trained on?

Reference: the holdout window of the champion's own training set (out-of-sample, so its scores are honest).
Current: the latest `current_window_days` of transactions, joined to their features by Feast at each
transaction's timestamp and scored by the champion. Evidently compares every model input and the score; the
share of drifted columns against a threshold, and a minimum sample size, give the drift flag the retrain sensor
acts on.
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from platform_assets import charts
from platform_assets import training_data as td
from platform_assets.monitoring.drift import drift_report, sample
from platform_assets.resources import CHAMPION, FeastResource, MlflowResource, PlatformStorage

GROUP = "monitoring"
SCORE = "model_score"


class DriftConfig(dg.Config):
    current_window_days: int = Field(default=7, description="Days of newest transactions compared to the reference")
    drift_share_threshold: float = Field(default=0.2, description="Share of drifted columns that means drift")
    min_rows: int = Field(default=1_000, description="Below this many current rows no verdict is given")
    max_rows: int = Field(default=50_000, description="Each side is sampled down to this many rows")


@dg.asset(
    group_name=GROUP,
    kinds={"evidently", "html"},
    deps=[dg.AssetKey("fraud_model"), dg.AssetKey("feast_feature_views"), dg.AssetKey("fct_transactions")],
    description="Evidently data-drift report: champion's training holdout vs the latest window, features and scores.",
)
def feature_drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    feast: FeastResource,
    mlflow_tracking: MlflowResource,
    storage: PlatformStorage,
) -> dg.MaterializeResult:
    mlflow = mlflow_tracking.setup()
    client = mlflow_tracking.client()
    champion_version = client.get_model_version_by_alias(mlflow_tracking.model_name, CHAMPION)
    training_set_id = champion_version.tags["training_set_id"]
    manifest = td.TrainingSetManifest.read(storage.training_sets_dir() / f"{training_set_id}.json")
    champion = mlflow.xgboost.load_model(mlflow_tracking.model_uri(CHAMPION))
    features = manifest.feature_columns

    snapshot = pd.read_parquet(manifest.path)
    reference = sample(snapshot[snapshot["split"] == "holdout"], config.max_rows)
    reference = reference.assign(**{SCORE: champion.predict_proba(td.model_inputs(reference, features))[:, 1]})

    entity_rows, window = td.recent_transactions(storage.exports_dir(), config.current_window_days)
    current = td.join_features(feast.store(), sample(entity_rows, config.max_rows), manifest.feature_service)
    current = current.assign(**{SCORE: champion.predict_proba(td.model_inputs(current, features))[:, 1]})

    window_end = window["window_end"].date().isoformat()
    html = storage.reports_dir() / "feature_drift" / f"{window_end}.html"
    summary = drift_report(reference, current, [*features, SCORE], html)
    enough = len(current) >= config.min_rows
    detected = enough and summary.is_drift(config.drift_share_threshold)
    verdict = "drift" if detected else ("no_drift" if enough else "insufficient_data")
    figure = charts.drift_summary_figure(summary.column_scores, summary.drifted_columns)
    # The champion's own MLflow run collects its drift checks: one picture per window, drift share over time.
    client.log_figure(champion_version.run_id, figure, f"drift/{window_end}/drift_summary.png")
    client.log_metric(champion_version.run_id, "drift_share", summary.drift_share)
    drift_picture = charts.markdown_image(charts.to_png(figure), "drift score per column")
    context.log.info(
        f"{verdict}: {len(summary.drifted_columns)}/{summary.columns_tested} columns drifted "
        f"(share {summary.drift_share:.2f}, threshold {config.drift_share_threshold}): {summary.drifted_columns}"
    )
    return dg.MaterializeResult(
        metadata={
            "drift_detected": detected,
            "verdict": verdict,
            "drift_share": dg.MetadataValue.float(summary.drift_share),
            "drift_share_threshold": dg.MetadataValue.float(config.drift_share_threshold),
            "drifted_columns": dg.MetadataValue.json(summary.drifted_columns),
            "column_drift_scores": dg.MetadataValue.json({k: round(v, 4) for k, v in summary.column_scores.items()}),
            "skipped_columns": dg.MetadataValue.json(summary.skipped_columns),
            "report": dg.MetadataValue.url(html.as_uri()),
            "report_path": dg.MetadataValue.path(str(html)),
            "current_window_start": window["window_start"].date().isoformat(),
            "current_window_end": window_end,
            "current_rows": summary.current_rows,
            "current_rows_total": len(entity_rows),
            "reference_rows": summary.reference_rows,
            "reference_window": f"{manifest.holdout_start} .. {manifest.window_end}",
            "champion_version": str(champion_version.version),
            "training_set_id": training_set_id,
            "drift_summary": dg.MetadataValue.md(drift_picture),
            # One number per column, so Dagit plots each column's drift across materializations.
            **{f"drift_score/{column}": dg.MetadataValue.float(score)
               for column, score in summary.column_scores.items()},
        }
    )


monitoring_assets = [feature_drift_report]
