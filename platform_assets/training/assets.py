"""Training: an XGBoost fraud classifier, tracked and registered in MLflow, behind a promotion gate.

Each materialization trains on the newest training-set snapshot, logs params, metrics and the model (native
xgboost format, with a signature) to MLflow, and registers a new version. The version becomes `champion` only if
it beats the current champion's PR AUC on the same holdout and is not worse on the latest matured window
(training/promotion.py); otherwise it is the `challenger`. The decision, its reason and both models' figures are
tags on the version and on the MLflow run, metadata here, and a notification.
"""

import time
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from platform_assets import charts
from platform_assets.resources import CHALLENGER, CHAMPION, MlflowResource, Notifier, PlatformStorage
from platform_assets.training.promotion import (
    PREVIOUS_CHAMPION,
    PROMOTION_DECISION,
    PROMOTION_REASON,
    GateScores,
    decide,
)
from platform_assets.training_data import TrainingSetManifest, model_inputs, read_split, read_training_inputs

GROUP = "training"


class ModelConfig(dg.Config):
    n_estimators: int = Field(default=400, description="Upper bound on boosting rounds (early stopping decides)")
    max_depth: int = 5
    learning_rate: float = 0.06
    subsample: float = 0.9
    colsample_bytree: float = 0.9
    min_child_weight: float = 2.0
    early_stopping_rounds: int = 40
    min_pr_auc_improvement: float = Field(default=0.0, description="Margin a new model needs to become champion")
    recency_half_life_days: float = Field(
        default=0.0, description="Halve a training row's weight every this many days back (0: equal weights)"
    )
    refit_on_all_rows: bool = Field(
        default=False, description="After early stopping, refit on every training row (the newest days included)"
    )
    latest_window_days: int = Field(default=3, description="Newest holdout days forming the latest matured window")
    max_latest_regression: float = Field(
        default=0.02, description="How much worse than the champion a new model may be on the latest matured window"
    )


def _pip_requirements() -> list[str]:
    """Given explicitly, MLflow skips its ~3 s dependency inference (stack-facts: 50x faster log_model)."""
    import numpy as np
    import sklearn
    import xgboost as xgb

    return [f"xgboost=={xgb.__version__}", f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}"]


def _importances(model, features: list[str]) -> dict[str, float]:
    """Gain per input; an input no tree splits on has gain 0 (xgboost leaves it out)."""
    gain = model.get_booster().get_score(importance_type="gain")
    return {f: float(gain.get(f, 0.0)) for f in features}


def latest_window(holdout: pd.DataFrame, days: int) -> pd.DataFrame:
    """The newest `days` whole days of the holdout: the latest window whose labels have matured."""
    ts = pd.to_datetime(holdout["event_timestamp"], utc=True)
    return holdout[ts >= ts.max().normalize() - pd.Timedelta(days=days - 1)]


def gate_scores(model, frame: pd.DataFrame, latest: pd.DataFrame, features: list[str], label: str) -> GateScores:
    from sklearn.metrics import average_precision_score

    from platform_assets.training.evaluation import score

    holdout_pr_auc = float(average_precision_score(frame[label], score(model, frame, features)))
    latest_pr_auc = None
    if latest[label].nunique() == 2:
        latest_pr_auc = float(average_precision_score(latest[label], score(model, latest, features)))
    return GateScores(holdout_pr_auc, latest_pr_auc)


def _champion_scores(mlflow, mlflow_tracking: MlflowResource, holdout, latest, label):
    """(champion version, its GateScores on *these* rows); (None, None) without a champion, (version, None) if
    the champion reads features this holdout lacks."""
    version = mlflow_tracking.champion_version()
    if version is None:
        return None, None
    champion = mlflow.xgboost.load_model(mlflow_tracking.model_uri(CHAMPION))
    inputs = list(champion.get_booster().feature_names or [])
    if any(f not in holdout.columns for f in inputs):
        return str(version.version), None
    return str(version.version), gate_scores(champion, holdout, latest, inputs, label)


@dg.asset(
    group_name=GROUP,
    kinds={"xgboost", "mlflow"},
    deps=[dg.AssetKey("training_set")],
    description="The fraud classifier: a new MLflow model version per run, champion only if it is better.",
)
def fraud_model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_tracking: MlflowResource,
    storage: PlatformStorage,
    notifier: Notifier,
) -> dg.MaterializeResult:
    # xgboost, scikit-learn and MLflow take seconds to import: only when the asset runs, not when the UI loads.
    from mlflow.models import infer_signature

    from platform_assets.training.evaluation import evaluate, fit_classifier, score

    manifest = TrainingSetManifest.read(storage.training_sets_dir() / "latest.json")
    features, label = manifest.feature_columns, manifest.label_column
    holdout = read_split(manifest.path, "holdout")
    params = {
        "n_estimators": config.n_estimators,
        "max_depth": config.max_depth,
        "learning_rate": config.learning_rate,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "min_child_weight": config.min_child_weight,
        "early_stopping_rounds": config.early_stopping_rounds,
    }
    train = read_training_inputs(manifest, "train")
    started = time.perf_counter()
    model = fit_classifier(train.inputs, train.labels, train.timestamps, params, config.recency_half_life_days,
                           config.refit_on_all_rows)
    train_seconds = time.perf_counter() - started
    del train
    holdout_scores = score(model, holdout, features)
    metrics = evaluate(holdout[label].to_numpy(), holdout_scores)
    context.log.info(f"holdout PR AUC {metrics.pr_auc:.4f}, ROC AUC {metrics.roc_auc:.4f} ({train_seconds:.1f}s)")

    mlflow = mlflow_tracking.setup()
    client = mlflow_tracking.client()
    latest = latest_window(holdout, config.latest_window_days)
    candidate = gate_scores(model, holdout, latest, features, label)
    champion_version, champion_scores = _champion_scores(mlflow, mlflow_tracking, holdout, latest, label)
    decision = decide(candidate, champion_scores, config.min_pr_auc_improvement, champion_version,
                      config.max_latest_regression)
    champion_pr_auc = champion_scores.holdout_pr_auc if champion_scores else None
    gate_tags = {
        PROMOTION_DECISION: CHAMPION if decision.promote else CHALLENGER,
        PROMOTION_REASON: decision.reason,
        PREVIOUS_CHAMPION: (champion_version or "") if decision.promote else "",
        "gate_challenger_holdout_pr_auc": f"{candidate.holdout_pr_auc:.6f}",
        "gate_challenger_latest_pr_auc": "" if candidate.latest_pr_auc is None else f"{candidate.latest_pr_auc:.6f}",
        "gate_champion_version": champion_version or "",
        "gate_champion_holdout_pr_auc": "" if champion_scores is None else f"{champion_scores.holdout_pr_auc:.6f}",
        "gate_champion_latest_pr_auc": "" if champion_scores is None or champion_scores.latest_pr_auc is None
        else f"{champion_scores.latest_pr_auc:.6f}",
    }
    with mlflow.start_run(run_name=f"fraud_model-{context.run_id[:8]}") as run:
        mlflow.log_params({**params, "best_iteration": int(model.best_iteration), "features": len(features),
                           "recency_half_life_days": config.recency_half_life_days,
                           "refit_on_all_rows": config.refit_on_all_rows})
        mlflow.log_metrics({**metrics.as_dict("holdout_"), "train_seconds": train_seconds})
        mlflow.set_tags({
            "training_set_id": manifest.snapshot_id,
            "training_set_path": manifest.path,
            "feature_service": manifest.feature_service,
            "dagster_run_id": context.run_id,
            **gate_tags,
        })
        sample = model_inputs(holdout.head(5), features)
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(sample, score(model, sample, features)),
            input_example=sample,
            registered_model_name=mlflow_tracking.model_name,
            pip_requirements=_pip_requirements(),
        )
        figures = charts.model_figures(holdout[label], holdout_scores, _importances(model, features))
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"charts/{name}.png")
        pictures = charts.markdown_gallery(charts.rendered(figures))
    version = str(info.registered_model_version)
    alias = CHAMPION if decision.promote else CHALLENGER
    client.set_registered_model_alias(mlflow_tracking.model_name, alias, version)
    for key, value in {
        **gate_tags,
        "training_set_id": manifest.snapshot_id,
        "feature_service": manifest.feature_service,
    }.items():
        client.set_model_version_tag(mlflow_tracking.model_name, version, key, value)
    notifier.send(
        "promotion" if decision.promote else "promotion_refused",
        f"{mlflow_tracking.model_name} v{version} -> {alias}: {decision.reason}",
        {"model_version": version, "previous_champion": champion_version, **gate_tags},
        log=context.log,
    )
    return dg.MaterializeResult(
        metadata={
            **{k: dg.MetadataValue.float(v) for k, v in metrics.as_dict("holdout_").items()},
            "model_version": version,
            "alias": alias,
            "promotion_reason": decision.reason,
            "promoted": decision.promote,
            "champion_version_before": champion_version or "none",
            "latest_window_pr_auc": dg.MetadataValue.float(candidate.latest_pr_auc)
            if candidate.latest_pr_auc is not None else dg.MetadataValue.text("one class"),
            "champion_latest_window_pr_auc": dg.MetadataValue.float(champion_scores.latest_pr_auc)
            if champion_scores is not None and champion_scores.latest_pr_auc is not None
            else dg.MetadataValue.text("none"),
            "champion_pr_auc_on_same_holdout": dg.MetadataValue.float(champion_pr_auc)
            if champion_pr_auc is not None else dg.MetadataValue.text("none"),
            "best_iteration": int(model.best_iteration),
            "train_seconds": round(train_seconds, 3),
            "mlflow_run_id": run.info.run_id,
            "model_uri": f"models:/{mlflow_tracking.model_name}/{version}",
            "training_set_id": manifest.snapshot_id,
            "training_set_path": dg.MetadataValue.path(str(Path(manifest.path))),
            "holdout_charts": dg.MetadataValue.md(pictures),
        }
    )


training_assets = [fraud_model]
