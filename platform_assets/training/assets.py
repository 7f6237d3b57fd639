"""Training: an XGBoost fraud classifier, tracked and registered in MLflow, behind a promotion gate.

Each materialization trains on the newest training-set snapshot, logs params, metrics and the model (a pyfunc
model from code that answers fraud probabilities, holding the native XGBoost model, with a signature) to MLflow,
registers a new version and tags it with its review threshold. The version becomes `champion` only if
it beats the current champion's PR AUC on the same holdout and is not worse on the latest matured window
(training/promotion.py); otherwise it is the `challenger`. The decision, its reason and both models' figures are
tags on the version and on the MLflow run, metadata here, and a notification.

The run also lists the training set's two splits as MLflow input datasets (name = the snapshot id, context train or
holdout, schema and digest only: no rows are copied), and the registered model and each version carry a
description (what it was trained on, its holdout figures, the gate's decision). Dagit's metadata links the MLflow
UI's run and version pages (`PLATFORM_MLFLOW_UI_URL`).

Training runs in the step's process, or on the Dask cluster of `PLATFORM_DASK_SCHEDULER` (the `training_cluster`
resource, chosen in resources/profile.py): there the workers read the training split in partitions and
`xgboost.dask` fits the same classifier (evaluation.fit_classifier_dask); what is logged, registered and gated is the
same either way, and the run records which trainer ran (tags `trainer`, `dask_scheduler`, `dask_workers`).

The asset reads as its four steps: fit, gate, log and register, report. xgboost, scikit-learn, pandas and MLflow
take seconds to import, so they load when the asset runs, never when the UI loads the Definitions.
"""


import hashlib
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from platform_assets.lib import names, object_store
from platform_assets.lib.run_config import ModelConfig
from platform_assets.resources import (
    FeastResource,
    LoopPolicy,
    MlflowResource,
    Notifier,
    PlatformStorage,
    TrainingCluster,
)

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


MODEL_DESCRIPTION = (
    "XGBoost fraud classifier of the fraud platform: the probability that a card transaction is fraud, from the "
    "features of its Feast feature service (tag `feature_service`). The Dagster asset `fraud_model` registers a "
    "version per training run, trained on a point-in-time-correct training-set snapshot (tag `training_set_id`; "
    "the run's input datasets). The `champion` alias, which batch scoring and the scoring service use, moves only "
    "when a new version beats the champion's PR AUC on the same holdout and is not worse on the latest matured "
    "window; otherwise the new version is the `challenger`. Each version's description says what it was trained "
    "on, its holdout figures and the gate's decision."
)


def _importances(model, features: list[str]) -> dict[str, float]:
    """Gain per input; an input no tree splits on has gain 0 (xgboost leaves it out)."""
    gain = model.get_booster().get_score(importance_type="gain")
    return {f: float(gain.get(f, 0.0)) for f in features}


def latest_window(holdout, days: int):
    """The newest `days` whole days of the holdout: the latest window whose labels have matured."""
    import pandas as pd

    ts = pd.to_datetime(holdout["event_timestamp"], utc=True)
    return holdout[ts >= ts.max().normalize() - pd.Timedelta(days=days - 1)]


def gate_scores(model, frame, latest, features: list[str], label: str, feature_service: str | None = None):
    from sklearn.metrics import average_precision_score, roc_auc_score

    from platform_assets.lib.champion import score
    from platform_assets.training.promotion import GateScores

    scores = score(model, frame, features)
    holdout_pr_auc = float(average_precision_score(frame[label], scores))
    roc_auc = float(roc_auc_score(frame[label], scores)) if frame[label].nunique() == 2 else None
    latest_pr_auc = None
    if latest[label].nunique() == 2:
        latest_pr_auc = float(average_precision_score(latest[label], score(model, latest, features)))
    return GateScores(holdout_pr_auc, latest_pr_auc, roc_auc, feature_service)


def holdout_with_features(holdout, feature_service: str, feast, exports_dir):
    """The same holdout rows (transactions and labels) with the features of `feature_service`, joined point in time
    as the training set joined its own: how a champion that reads features the challenger's service lacks (a v3
    champion, a v2 challenger) is scored on the challenger's holdout. A holdout transaction the warehouse no longer
    has (a corrected day withdrew it) is left out; the gate then scores both models on the rows that remain. None
    when none remains."""
    import pandas as pd

    from platform_assets.lib.training_sets import KEYS, join_features, transactions_between

    ts = pd.to_datetime(holdout["event_timestamp"], utc=True)
    rows = transactions_between(exports_dir, ts.min().to_pydatetime(), (ts.max() + pd.Timedelta(seconds=1)).to_pydatetime())
    rows = rows[rows["transaction_id"].isin(holdout["transaction_id"])]
    if rows.empty:
        return None
    joined = join_features(feast.store(), rows, feature_service).drop(columns=KEYS[1:], errors="ignore")
    labels = holdout.drop(columns=[c for c in joined.columns if c != "transaction_id"], errors="ignore")
    return labels.merge(joined, on="transaction_id", how="inner", validate="one_to_one")


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
    # Which trainer ran (resources/training_cluster.describe): {"trainer": "in-process"} or the Dask cluster's
    # scheduler address, workers and threads. Never a credential.
    trainer: dict = field(default_factory=lambda: {"trainer": "in-process"})


def fit(manifest, config: ModelConfig, client=None) -> Fitted:
    """Fit on the train split and score the holdout.

    Without `client` the train split is read into this process as one float32 block (read_training_inputs).
    With a `distributed.Client` the workers read it in partitions and train with xgboost.dask: this process never
    holds the train split. The holdout (the newest `holdout_days` days, a small share of the snapshot) is read and
    scored here in the driver in both cases, as the gate, the charts and the review threshold need its rows."""
    from platform_assets.lib.champion import score
    from platform_assets.lib.training_sets import read_split, read_split_partitions, read_training_inputs
    from platform_assets.resources.training_cluster import describe
    from platform_assets.training.evaluation import evaluate, fit_classifier, fit_classifier_dask

    holdout = read_split(manifest.path, "holdout")
    params = config.xgboost_params()
    started = time.perf_counter()
    if client is None:
        train = read_training_inputs(manifest, "train")
        started = time.perf_counter()
        model = fit_classifier(train.inputs, train.labels, train.timestamps, params, config.recency_half_life_days,
                               config.refit_on_all_rows)
        del train
    else:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        frame = read_split_partitions(manifest, "train", min_partitions=2 * max(workers, 1))
        model = fit_classifier_dask(client, frame, manifest.feature_columns, manifest.label_column, params,
                                    config.recency_half_life_days, config.refit_on_all_rows)
    train_seconds = time.perf_counter() - started
    holdout_scores = score(model, holdout, manifest.feature_columns)
    metrics = evaluate(holdout[manifest.label_column].to_numpy(), holdout_scores)
    return Fitted(manifest, model, holdout, holdout_scores, metrics, params, train_seconds, describe(client))


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
            "gate_challenger_holdout_roc_auc": figure(self.candidate.holdout_roc_auc),
            "gate_champion_holdout_roc_auc": figure(champion.holdout_roc_auc if champion else None),
            "gate_challenger_feature_service": self.candidate.feature_service or "",
            "gate_champion_feature_service": (champion.feature_service or "") if champion else "",
        }


def gate(fitted: Fitted, config: ModelConfig, mlflow_tracking: MlflowResource, storage: PlatformStorage,
         feast=None) -> Gate:
    """Score the new model and the champion on the same holdout and latest window, and decide.

    The champion is fed its own inputs for the holdout's rows: from the holdout itself when it holds them (a v2
    champion against a v3 challenger: v3 is v2 plus velocity features), else joined from the champion's feature
    service for the same transactions (`holdout_with_features`: a v3 champion against a v2 challenger). Only a
    champion whose features no longer exist cannot be scored, and then cannot block."""
    from platform_assets.lib.champion import find_champion
    from platform_assets.training.promotion import decide

    label = fitted.manifest.label_column
    service = fitted.manifest.feature_service
    latest = latest_window(fitted.holdout, config.latest_window_days)
    candidate = gate_scores(fitted.model, fitted.holdout, latest, fitted.manifest.feature_columns, label, service)
    champion = find_champion(mlflow_tracking, storage.training_sets_dir())
    champion_version, champion_scores = None, None
    if champion is not None:
        champion_version = champion.number
        inputs = list(champion.model.get_booster().feature_names or [])
        champion_service = champion.version.tags.get(names.TAG_FEATURE_SERVICE) or service
        holdout = fitted.holdout
        if not all(f in holdout.columns for f in inputs) and feast is not None and champion_service != service:
            from feast.errors import FeatureServiceNotFoundException, FeatureViewNotFoundException

            try:
                holdout = holdout_with_features(holdout, champion_service, feast, storage.exports_dir())
            except (FeatureServiceNotFoundException, FeatureViewNotFoundException):
                holdout = None  # the champion's service is gone from the registry: it cannot be scored
        if holdout is not None and all(f in holdout.columns for f in inputs):
            if len(holdout) < len(fitted.holdout):  # some holdout rows are gone: both models on the same rows
                same = fitted.holdout[fitted.holdout["transaction_id"].isin(holdout["transaction_id"])]
                candidate = gate_scores(fitted.model, same, latest_window(same, config.latest_window_days),
                                        fitted.manifest.feature_columns, label, service)
            champion_latest = latest_window(holdout, config.latest_window_days)
            champion_scores = gate_scores(champion.model, holdout, champion_latest, inputs, label, champion_service)
    decision = decide(candidate, champion_scores, config.min_pr_auc_improvement, champion_version,
                      config.max_latest_regression)
    return Gate(decision, candidate, champion_version, champion_scores)


def _parquet_schema(path: str):
    """The snapshot's columns as an MLflow schema, from the parquet footer alone (no rows are read)."""
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    arrow = pq.read_schema(path, filesystem=object_store.arrow_filesystem(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hint about integer columns is meant for model signatures
        inferred = infer_signature(arrow.empty_table().to_pandas()).inputs
    nullable = {f.name: f.nullable for f in arrow}
    return Schema([ColSpec(c.type, c.name, required=not nullable.get(c.name, True)) for c in inferred.inputs])


def training_set_datasets(manifest) -> list[tuple[object, str, dict[str, str]]]:
    """The snapshot's train and holdout splits as MLflow datasets: (dataset, context, input tags).

    Both are named by the snapshot id and point at its parquet file; the schema comes from the footer. A digest
    must tell the two splits apart (MLflow keeps one input per name and digest), so it is derived from the
    snapshot's content hash (also an input tag) and the split: the same snapshot always gets the same digests."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and warns that a path "can be interpreted in multiple ways"
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(manifest.path)
    schema = _parquet_schema(manifest.path)
    fingerprint = manifest.content_hash or manifest.snapshot_id
    counts = {
        names.DATASET_TRAIN: (manifest.rows - manifest.holdout_rows, manifest.positives - manifest.holdout_positives),
        names.DATASET_HOLDOUT: (manifest.holdout_rows, manifest.holdout_positives),
    }
    datasets = []
    for split, (rows, positives) in counts.items():
        digest = hashlib.sha256(f"{fingerprint}:{split}".encode()).hexdigest()[:16]
        tags = {"split": split, "rows": str(rows), "positives": str(positives),
                names.TAG_FEATURE_SERVICE: manifest.feature_service, "content_hash": manifest.content_hash}
        datasets.append((MetaDataset(source, name=manifest.snapshot_id, digest=digest, schema=schema), split, tags))
    return datasets


def version_description(fitted: Fitted, verdict: Gate, threshold: float, review_budget: float, run_id: str) -> str:
    """What a registered version is, for the MLflow UI: its training set, holdout figures and the gate's decision."""
    m, metrics, champion = fitted.manifest, fitted.metrics, verdict.champion_scores
    trained = (f"Trained on training set `{m.snapshot_id}` (feature service `{m.feature_service}`, transactions "
               f"{m.window_start} to {m.window_end}): {m.rows - m.holdout_rows} train rows "
               f"({m.positives - m.holdout_positives} fraud); holdout from {m.holdout_start}: {m.holdout_rows} rows "
               f"({m.holdout_positives} fraud).")
    figures = f"Holdout: PR AUC {metrics.pr_auc:.4f}, ROC AUC {metrics.roc_auc:.4f}, log loss {metrics.logloss:.4f}."
    if champion is not None:
        figures += f" Champion v{verdict.champion_version} on the same holdout: PR AUC {champion.holdout_pr_auc:.4f}."
    decided = f"Gate: **{verdict.alias}**: {verdict.decision.reason}."
    review = (f"Review threshold {threshold:.6g} (the top {review_budget:.1%} of holdout scores go to review). "
              f"MLflow run `{run_id}`.")
    return f"{trained}\n\n{figures}\n\n{decided}\n\n{review}"


@dataclass
class Registered:
    """What `log_and_register` wrote: the version, its run, the charts (markdown) and the review threshold."""

    version: str
    run_id: str
    experiment_id: str
    pictures: str
    threshold: float


def log_and_register(
    context: dg.AssetExecutionContext, fitted: Fitted, verdict: Gate, config: ModelConfig,
    mlflow_tracking: MlflowResource, review_budget: float,
) -> Registered:
    """One MLflow run (params, metrics, tags, input datasets, charts, the model) and one registered version,
    aliased by the gate and described."""
    from mlflow.models import infer_signature
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

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
                         **verdict.tags(), **{k: str(v) for k, v in fitted.trainer.items()}})
        datasets, contexts, input_tags = zip(*training_set_datasets(manifest), strict=True)
        mlflow.log_inputs(datasets=list(datasets), contexts=list(contexts), tags_list=list(input_tags))
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
    description = version_description(fitted, verdict, threshold, review_budget, run.info.run_id)
    client.update_registered_model(mlflow_tracking.model_name, description=MODEL_DESCRIPTION)
    client.update_model_version(mlflow_tracking.model_name, version, description=description)
    client.set_tag(run.info.run_id, MLFLOW_RUN_NOTE, description)  # the run page's "Description"
    return Registered(version, run.info.run_id, run.info.experiment_id, pictures, threshold)


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
    feast: FeastResource,
    training_cluster: TrainingCluster,
) -> dg.MaterializeResult:
    from platform_assets.lib.training_sets import latest_manifest

    manifest = latest_manifest(storage.training_sets_dir())
    with training_cluster.client() as client:
        fitted = fit(manifest, config, client)
    metrics = fitted.metrics
    context.log.info(f"holdout PR AUC {metrics.pr_auc:.4f}, ROC AUC {metrics.roc_auc:.4f} "
                     f"({fitted.train_seconds:.1f}s, {fitted.trainer})")
    verdict = gate(fitted, config, mlflow_tracking, storage, feast)
    registered = log_and_register(context, fitted, verdict, config, mlflow_tracking, policy.review_budget)
    version = registered.version
    version_url = mlflow_tracking.model_version_url(version)
    notifier.send(
        "promotion" if verdict.decision.promote else "promotion_refused",
        f"{mlflow_tracking.model_name} v{version} -> {verdict.alias}: {verdict.decision.reason}",
        {"model_version": version, "model_version_url": version_url, "previous_champion": verdict.champion_version,
         **verdict.tags()},
        log=context.log,
    )
    champion = verdict.champion_scores
    return dg.MaterializeResult(
        metadata={
            **{k: dg.MetadataValue.float(v) for k, v in metrics.as_dict("holdout_").items()},
            names.MODEL_VERSION: version,
            "alias": verdict.alias,
            "promotion_reason": verdict.decision.reason,
            "promoted": verdict.decision.promote,
            "champion_version_before": verdict.champion_version or "none",
            "latest_window_pr_auc": _figure_or(verdict.candidate.latest_pr_auc, "one class"),
            "champion_latest_window_pr_auc": _figure_or(champion.latest_pr_auc if champion else None, "none"),
            "champion_pr_auc_on_same_holdout": _figure_or(champion.holdout_pr_auc if champion else None, "none"),
            "champion_roc_auc_on_same_holdout": _figure_or(champion.holdout_roc_auc if champion else None, "none"),
            names.TAG_FEATURE_SERVICE: manifest.feature_service,
            "champion_feature_service": (champion.feature_service or "") if champion else "none",
            "best_iteration": int(fitted.model.best_iteration),
            "train_seconds": round(fitted.train_seconds, 3),
            **fitted.trainer,
            "mlflow_run_id": registered.run_id,
            "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(registered.experiment_id, registered.run_id)),
            "mlflow_model_version": dg.MetadataValue.url(version_url),
            "model_uri": f"models:/{mlflow_tracking.model_name}/{version}",
            names.TAG_REVIEW_THRESHOLD: dg.MetadataValue.float(float(registered.threshold)),
            names.TAG_TRAINING_SET_ID: manifest.snapshot_id,
            "training_set_path": dg.MetadataValue.path(manifest.path),
            "holdout_charts": dg.MetadataValue.md(registered.pictures),
        }
    )
