"""The run config of the two assets a retrain parametrizes: `training_set` and `fraud_model`.

They sit on the ground floor because they cross a stage boundary: the features and training stages read them,
and the retrain sensor (automation) and the closed-loop tests write them. A retrain request is built from these
classes, keyed by the assets' op names from `names`, so a renamed field or asset fails when the request is
built, not silently in a run that ignores it.

Loop settings (label maturity, warm-up, holdout) have one source of truth, the `LoopPolicy` resource: the
fields here default to None, which means "the policy's value"; set one in the launchpad to override a single
run.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from platform_assets.lib import names

DEFAULT_CHUNK_ROWS = 1_000_000


class TrainingSetConfig(dg.Config):
    label_maturity_days: int | None = Field(
        default=None, description="Days after which a missing chargeback means 'not fraud' (default: the policy's)"
    )
    warmup_days: int | None = Field(
        default=None, description="Leading days skipped while the 30-day windows fill up (default: the policy's)"
    )
    holdout_days: int | None = Field(
        default=None, description="Newest whole days kept for evaluation and as drift reference (default: the policy's)"
    )
    feature_service: str = Field(default=names.DEFAULT_FEATURE_SERVICE)
    min_positives_per_split: int = Field(default=10, description="Frauds each split needs for the check to pass")
    as_of: str | None = Field(
        default=None, description="ISO time to cut the world at (a retrain's drift window end); default: newest data"
    )
    chunk_rows: int = Field(
        default=DEFAULT_CHUNK_ROWS, gt=0,
        description="Entity rows per point-in-time join: bounds the build's memory (~1 GB per million rows)",
    )


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

    def xgboost_params(self) -> dict:
        return {name: getattr(self, name) for name in (
            "n_estimators", "max_depth", "learning_rate", "subsample", "colsample_bytree", "min_child_weight",
            "early_stopping_rounds")}


def retrain_run_config(as_of: str, retrain_half_life_days: float) -> dg.RunConfig:
    """A retrain: the training set cut as of the drift window's end (the policy's windows), and a model that
    weights the newest days most and is refit on all of them (training/evaluation.py)."""
    return dg.RunConfig(ops={
        names.asset_name(names.TRAINING_SET): TrainingSetConfig(as_of=as_of),
        names.asset_name(names.FRAUD_MODEL): ModelConfig(
            recency_half_life_days=retrain_half_life_days, refit_on_all_rows=True),
    })
