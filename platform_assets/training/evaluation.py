"""Model fitting and scoring, free of Dagster and MLflow so it can be unit-tested on its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from platform_assets.lib.champion import score


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


def recency_weights(timestamps: pd.Series, half_life_days: float) -> np.ndarray:
    """Weight 1 for the newest row, halving every `half_life_days` back: after a drift the newest days count most.
    0 (or less) means equal weights."""
    if half_life_days <= 0:
        return np.ones(len(timestamps))
    ts = pd.to_datetime(timestamps, utc=True)
    age_days = (ts.max() - ts).dt.total_seconds().to_numpy() / 86_400
    return np.power(0.5, age_days / half_life_days)


def fit_classifier(
    inputs: pd.DataFrame,
    labels,
    timestamps,
    params: dict,
    recency_half_life_days: float = 0.0,
    refit_on_all_rows: bool = False,
) -> xgb.XGBClassifier:
    """Fit on the older 85% of the rows, stop early on the newer 15%: validation always lies in the future.

    `inputs` holds only the feature columns, float32 or float64 (XGBoost computes on float32 either way); rows
    already in time order are sliced, never copied, so a training set of millions of rows is held once.
    With `refit_on_all_rows` the model is then refit on every training row for the number of rounds early
    stopping chose: after a drift the newest days are exactly the validation slice, and a retrain that never fits
    them cannot learn the new world."""
    labels = np.asarray(labels)
    timestamps = pd.Series(pd.to_datetime(np.asarray(timestamps), utc=True))
    if not timestamps.is_monotonic_increasing:
        order = np.argsort(timestamps.to_numpy(), kind="stable")
        inputs, labels, timestamps = inputs.iloc[order], labels[order], timestamps.iloc[order].reset_index(drop=True)
    weights = recency_weights(timestamps, recency_half_life_days)
    cut = int(len(inputs) * 0.85)

    def classifier(**overrides) -> xgb.XGBClassifier:
        return xgb.XGBClassifier(
            objective="binary:logistic", tree_method="hist", eval_metric="aucpr", n_jobs=2, **{**params, **overrides}
        )

    model = classifier()
    model.fit(
        inputs.iloc[:cut], labels[:cut], sample_weight=weights[:cut],
        eval_set=[(inputs.iloc[cut:], labels[cut:])],
        sample_weight_eval_set=[weights[cut:]],
        verbose=False,
    )
    if not refit_on_all_rows:
        return model
    best = int(model.best_iteration)
    final = classifier(n_estimators=best + 1, early_stopping_rounds=None)
    final.fit(inputs, labels, sample_weight=weights, verbose=False)
    final.get_booster().set_attr(best_iteration=str(best))
    return final


__all__ = ["Metrics", "evaluate", "fit_classifier", "recency_weights", "score"]
