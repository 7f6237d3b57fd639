"""Model fitting and scoring, free of Dagster and MLflow so it can be unit-tested on its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from platform_assets.training_data import model_inputs


@dataclass(frozen=True)
class Metrics:
    roc_auc: float
    pr_auc: float
    logloss: float
    rows: int
    positives: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": float(v) for k, v in self.__dict__.items()}


def evaluate(y_true: np.ndarray, scores: np.ndarray) -> Metrics:
    y_true = np.asarray(y_true)
    if y_true.min() == y_true.max():
        raise ValueError("the evaluation set holds a single class: widen the window or simulate more days")
    return Metrics(
        roc_auc=float(roc_auc_score(y_true, scores)),
        pr_auc=float(average_precision_score(y_true, scores)),
        logloss=float(log_loss(y_true, np.clip(scores, 1e-7, 1 - 1e-7))),
        rows=len(y_true),
        positives=int(y_true.sum()),
    )


def fit_classifier(train: pd.DataFrame, features: list[str], label: str, params: dict) -> xgb.XGBClassifier:
    """Fit on the older 85% of `train`, stop early on the newer 15%: validation always lies in the future."""
    train = train.sort_values("event_timestamp", kind="stable")
    cut = int(len(train) * 0.85)
    fit_part, valid_part = train.iloc[:cut], train.iloc[cut:]
    model = xgb.XGBClassifier(
        objective="binary:logistic",
        tree_method="hist",
        eval_metric="aucpr",
        n_jobs=2,
        **params,
    )
    model.fit(
        model_inputs(fit_part, features), fit_part[label],
        eval_set=[(model_inputs(valid_part, features), valid_part[label])],
        verbose=False,
    )
    return model


def score(model: xgb.XGBClassifier, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    return model.predict_proba(model_inputs(frame, features))[:, 1]
