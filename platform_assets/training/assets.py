"""Training: an XGBoost fraud classifier, tracked and registered in MLflow, behind a promotion gate.

Each materialization trains on the newest training-set snapshot, logs params, metrics and the model (a pyfunc
model from code that answers fraud probabilities, holding the native XGBoost model, with a signature) to MLflow,
registers a new version and tags it with its review threshold. The version becomes `champion` only if
it beats the current champion's PR AUC on the same holdout and is not worse on the latest matured window
(training/promotion.py); otherwise it is the `challenger`. The decision, its reason and both models' figures are
tags on the version and on the MLflow run, metadata here, and a notification.

The asset reads as its four steps: fit, gate, log and register, report. xgboost, scikit-learn, pandas and MLflow
take seconds to import, so they load when the asset runs, never when the UI loads the Definitions.
"""


import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from platform_assets.lib import names
from platform_assets.lib.run_config import ModelConfig
from platform_assets.resources import LoopPolicy, MlflowResource, Notifier, PlatformStorage

# The registered model is this file run by MLflow (a model from code): its pyfunc answers probabilities.
PYFUNC_CODE = Path(__file__).resolve().parent.parent / "lib" / "fraud_pyfunc.py"
XGBOOST_ARTIFACT = names.MODEL_XGBOOST_ARTIFACT


def _pip_requirements() -> list[str]:
    """Given explicitly, MLflow skips its ~3 s dependency inference (stack-facts: 50x faster log_model)."""
    import numpy as np
    import pandas as pd
    import sklearn
    import xgboost as xgb

    return [f"xgboost=={xgb.__version__}", f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}"]


def _importances(model, features: list[str]) -> dict[str, float]:
    """Gain per input; an input no tree splits on has gain 0 (xgboost leaves it out)."""
    gain = model.get_booster().get_score(importance_type="gain")
    return {f: float(gain.get(f, 0.0)) for f in features}


def latest_window(holdout, days: int):
    """The newest `days` whole days of the holdout: the latest window whose labels have matured."""
    import pandas as pd

    ts = pd.to_datetime(holdout["event_timestamp"], utc=True)
    return holdout[ts >= ts.max().normalize() - pd.Timedelta(days=days - 1)]


def gate_scores(model, frame, latest, features: list[str], label: str):
    from sklearn.metrics import average_precision_score

    from platform_assets.lib.champion import score
    from platform_assets.training.promotion import GateScores

    holdout_pr_auc = float(average_precision_score(frame[label], score(model, frame, features)))
    latest_pr_auc = None
    if latest[label].nunique() == 2:
        latest_pr_auc = float(average_precision_score(latest[label], score(model, latest, features)))
    return GateScores(holdout_pr_auc, latest_pr_auc)


@dataclass
class Fitted:
    """A model fit on a snapshot's train split and scored on its holdout."""

    manifest: object  # TrainingSetManifest
    model: object
    holdout: object  # the holdout rows (pandas)
    holdout_scores: object
    metrics: object  # evaluation.Metrics
    params: dict
    train_seconds: float


def fit(manifest, config: ModelConfig) -> Fitted:
    from platform_assets.lib.champion import score
    from platform_assets.lib.training_sets import read_split, read_training_inputs
    from platform_assets.training.evaluation import evaluate, fit_classifier

    holdout = read_split(manifest.path, "holdout")
    params = config.xgboost_params()
    train = read_training_inputs(manifest, "train")
    started = time.perf_counter()
    model = fit_classifier(train.inputs, train.labels, train.timestamps, params, config.recency_half_life_days,
                           config.refit_on_all_rows)
    train_seconds = time.perf_counter() - started
    del train
    holdout_scores = score(model, holdout, manifest.feature_columns)
    metrics = evaluate(holdout[manifest.label_column].to_numpy(), holdout_scores)
    return Fitted(manifest, model, holdout, holdout_scores, metrics, params, train_seconds)


@dataclass
class Gate:
    """The promotion gate's decision, both models' scores on the same rows, and the tags that record it."""

    decision: object  # promotion.PromotionDecision
    candidate: object  # GateScores
    champion_version: str | None
    champion_scores: object  # GateScores | None

    @property
    def alias(self) -> str:
        return names.CHAMPION if self.decision.promote else names.CHALLENGER

    def tags(self) -> dict[str, str]:
        champion = self.champion_scores

        def figure(value) -> str:
            return "" if value is None else f"{value:.6f}"

        return {
            names.TAG_PROMOTION_DECISION: self.alias,
            names.TAG_PROMOTION_REASON: self.decision.reason,
            names.TAG_PREVIOUS_CHAMPION: (self.champion_version or "") if self.decision.promote else "",
            "gate_challenger_holdout_pr_auc": figure(self.candidate.holdout_pr_auc),
            "gate_challenger_latest_pr_auc": figure(self.candidate.latest_pr_auc),
            "gate_champion_version": self.champion_version or "",
            "gate_champion_holdout_pr_auc": figure(champion.holdout_pr_auc if champion else None),
            "gate_champion_latest_pr_auc": figure(champion.latest_pr_auc if champion else None),
        }


def gate(fitted: Fitted, config: ModelConfig, mlflow_tracking: MlflowResource, storage: PlatformStorage) -> Gate:
    """Score the new model and the champion on the same holdout and latest window, and decide."""
    from platform_assets.lib.champion import find_champion
    from platform_assets.training.promotion import decide

    label = fitted.manifest.label_column
    latest = latest_window(fitted.holdout, config.latest_window_days)
    candidate = gate_scores(fitted.model, fitted.holdout, latest, fitted.manifest.feature_columns, label)
    champion = find_champion(mlflow_tracking, storage.training_sets_dir())
    champion_version, champion_scores = None, None
    if champion is not None:
        champion_version = champion.number
        inputs = list(champion.model.get_booster().feature_names or [])
        # A champion that reads features this holdout lacks cannot be scored on it (and cannot block).
        if all(f in fitted.holdout.columns for f in inputs):
            champion_scores = gate_scores(champion.model, fitted.holdout, latest, inputs, label)
    decision = decide(candidate, champion_scores, config.min_pr_auc_improvement, champion_version,
                      config.max_latest_regression)
    return Gate(decision, candidate, champion_version, champion_scores)


def log_and_register(
    context: dg.AssetExecutionContext, fitted: Fitted, verdict: Gate, config: ModelConfig,
    mlflow_tracking: MlflowResource, review_budget: float,
) -> tuple[str, str, str, float]:
    """One MLflow run (params, metrics, tags, charts, the model) and one registered version, aliased by the gate.
    Returns (version, run id, the charts as markdown, the review threshold tagged on the version)."""
    from mlflow.models import infer_signature

    from platform_assets.lib import charts
    from platform_assets.lib.champion import score
    from platform_assets.lib.predictions import review_threshold
    from platform_assets.lib.training_sets import model_inputs

    manifest, model, holdout = fitted.manifest, fitted.model, fitted.holdout
    features, label = manifest.feature_columns, manifest.label_column
    provenance = {names.TAG_TRAINING_SET_ID: manifest.snapshot_id, names.TAG_FEATURE_SERVICE: manifest.feature_service}
    mlflow = mlflow_tracking.setup()
    with mlflow.start_run(run_name=f"fraud_model-{context.run_id[:8]}") as run:
        mlflow.log_params({**fitted.params, "best_iteration": int(model.best_iteration), "features": len(features),
                           "recency_half_life_days": config.recency_half_life_days,
                           "refit_on_all_rows": config.refit_on_all_rows})
        mlflow.log_metrics({**fitted.metrics.as_dict("holdout_"), "train_seconds": fitted.train_seconds})
        mlflow.set_tags({**provenance, "training_set_path": manifest.path, "dagster_run_id": context.run_id,
                         **verdict.tags()})
        sample = model_inputs(holdout.head(5), features)
        with tempfile.TemporaryDirectory() as tmp:
            native = Path(tmp) / "model.ubj"
            model.save_model(native)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_CODE),
                artifacts={XGBOOST_ARTIFACT: str(native)},
                signature=infer_signature(sample, score(model, sample, features)),
                input_example=sample,
                registered_model_name=mlflow_tracking.model_name,
                pip_requirements=_pip_requirements(),
            )
        figures = charts.model_figures(holdout[label], fitted.holdout_scores, _importances(model, features))
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"charts/{name}.png")
        pictures = charts.markdown_gallery(charts.rendered(figures))
    version = str(info.registered_model_version)
    client = mlflow_tracking.client()
    client.set_registered_model_alias(mlflow_tracking.model_name, verdict.alias, version)
    threshold = review_threshold(fitted.holdout_scores, review_budget)
    for key, value in {**verdict.tags(), **provenance, names.TAG_REVIEW_THRESHOLD: f"{threshold:.9g}"}.items():
        client.set_model_version_tag(mlflow_tracking.model_name, version, key, value)
    return version, run.info.run_id, pictures, threshold


def _figure_or(value: float | None, missing: str) -> dg.MetadataValue:
    return dg.MetadataValue.float(value) if value is not None else dg.MetadataValue.text(missing)


# Bump when a change to the training code (features read, fit, gate) changes the model a snapshot yields.
FRAUD_MODEL_VERSION = "1"


@dg.asset(
    key=names.FRAUD_MODEL,
    group_name=names.TRAINING,
    kinds={"xgboost", "mlflow"},
    deps=[names.TRAINING_SET],
    code_version=FRAUD_MODEL_VERSION,
    description="The fraud classifier: a new MLflow model version per run, champion only if it is better.",
)
def fraud_model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    mlflow_tracking: MlflowResource,
    storage: PlatformStorage,
    notifier: Notifier,
    policy: LoopPolicy,
) -> dg.MaterializeResult:
    from platform_assets.lib.training_sets import latest_manifest

    fitted = fit(latest_manifest(storage.training_sets_dir()), config)
    metrics, manifest = fitted.metrics, fitted.manifest
    context.log.info(f"holdout PR AUC {metrics.pr_auc:.4f}, ROC AUC {metrics.roc_auc:.4f} "
                     f"({fitted.train_seconds:.1f}s)")
    verdict = gate(fitted, config, mlflow_tracking, storage)
    version, run_id, pictures, threshold = log_and_register(context, fitted, verdict, config, mlflow_tracking,
                                                            policy.review_budget)
    notifier.send(
        "promotion" if verdict.decision.promote else "promotion_refused",
        f"{mlflow_tracking.model_name} v{version} -> {verdict.alias}: {verdict.decision.reason}",
        {"model_version": version, "previous_champion": verdict.champion_version, **verdict.tags()},
        log=context.log,
    )
    champion = verdict.champion_scores
    return dg.MaterializeResult(
        metadata={
            **{k: dg.MetadataValue.float(v) for k, v in metrics.as_dict("holdout_").items()},
            "model_version": version,
            "alias": verdict.alias,
            "promotion_reason": verdict.decision.reason,
            "promoted": verdict.decision.promote,
            "champion_version_before": verdict.champion_version or "none",
            "latest_window_pr_auc": _figure_or(verdict.candidate.latest_pr_auc, "one class"),
            "champion_latest_window_pr_auc": _figure_or(champion.latest_pr_auc if champion else None, "none"),
            "champion_pr_auc_on_same_holdout": _figure_or(champion.holdout_pr_auc if champion else None, "none"),
            "best_iteration": int(fitted.model.best_iteration),
            "train_seconds": round(fitted.train_seconds, 3),
            "mlflow_run_id": run_id,
            "model_uri": f"models:/{mlflow_tracking.model_name}/{version}",
            names.TAG_REVIEW_THRESHOLD: dg.MetadataValue.float(float(threshold)),
            names.TAG_TRAINING_SET_ID: manifest.snapshot_id,
            "training_set_path": dg.MetadataValue.path(manifest.path),
            "holdout_charts": dg.MetadataValue.md(pictures),
        }
    )
