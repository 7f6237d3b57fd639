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


def recency_weights(timestamps: pd.Series, half_life_days: float, newest=None) -> np.ndarray:
    """Weight 1 for the newest row, halving every `half_life_days` back: after a drift the newest days count most.
    0 (or less) means equal weights. `newest` is the newest time of the whole training split when `timestamps` is
    only one partition of it (the Dask path); by default the newest of `timestamps`."""
    if half_life_days <= 0:
        return np.ones(len(timestamps))
    ts = pd.to_datetime(timestamps, utc=True)
    newest = ts.max() if newest is None else pd.Timestamp(newest)
    age_days = (newest - ts).dt.total_seconds().to_numpy() / 86_400
    return np.power(0.5, age_days / half_life_days)


def early_stopping_cut(rows: int) -> int:
    """Rows before this position (in time order) are fit, the rest (the newest 15%) decide early stopping."""
    return int(rows * 0.85)


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
    cut = early_stopping_cut(len(inputs))

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


@dataclass(frozen=True)
class PartitionPlan:
    """Where the time-ordered partitions of a training split are cut: global row offsets, the early-stopping cut,
    and the newest event time (the recency weights' reference)."""

    lengths: list[int]
    offsets: list[int]
    rows: int
    cut: int
    newest: pd.Timestamp

    def fit_slices(self) -> list[tuple[int, int, int]]:
        """(partition, start, stop) of the rows before the cut: the rows the in-process path fits."""
        return [(i, 0, min(n, self.cut - o)) for i, (o, n) in enumerate(zip(self.offsets, self.lengths, strict=True))
                if n and o < self.cut]

    def validation_slices(self) -> list[tuple[int, int, int]]:
        """(partition, start, stop) of the rows from the cut on: the in-process path's early-stopping rows."""
        return [(i, max(0, self.cut - o), n) for i, (o, n) in enumerate(zip(self.offsets, self.lengths, strict=True))
                if n and o + n > self.cut]


def partition_stats(timestamps: pd.Series) -> pd.DataFrame:
    """One row per partition: its length, first and last event time, and whether it is in time order."""
    ts = pd.to_datetime(timestamps, utc=True)
    return pd.DataFrame({"rows": [len(ts)], "first": [ts.min() if len(ts) else pd.NaT],
                         "last": [ts.max() if len(ts) else pd.NaT], "ordered": [bool(ts.is_monotonic_increasing)]})


def plan_partitions(stats: pd.DataFrame) -> PartitionPlan:
    """The cut of a split from its partitions' stats (`partition_stats`, in partition order).

    The in-process path sorts rows by time (stably) and cuts at 85%; on a cluster nothing is sorted, so the
    partitions must already be in time order (a snapshot is written so): each one ordered, and none starting
    before its predecessor ends. Then the global position of a row is its partition's offset plus its position
    in it, and the cut, the fit rows and the validation rows are exactly the in-process ones."""
    lengths = [int(n) for n in stats["rows"]]
    rows = sum(lengths)
    if rows == 0:
        raise ValueError("the training split holds no rows")
    filled = stats[stats["rows"] > 0]
    if not filled["ordered"].all() or (filled["first"].iloc[1:].to_numpy() < filled["last"].iloc[:-1].to_numpy()).any():
        raise ValueError("the training split's partitions are not in event-time order: the snapshot was not written "
                         "by the training-set builder; rebuild it (the Dask trainer does not sort)")
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    return PartitionPlan(lengths, offsets, rows, early_stopping_cut(rows), pd.Timestamp(filled["last"].max()))


def _weighted(part: pd.DataFrame, half_life_days: float, newest, timestamp: str) -> pd.DataFrame:
    return part.assign(_weight=recency_weights(part[timestamp], half_life_days, newest))


def _rows(part: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    return part.iloc[start:stop]


def _select(frame, slices: list[tuple[int, int, int]]):
    """The rows (partition, start, stop) of a Dask DataFrame, as a Dask DataFrame of those partitions."""
    import dask.dataframe as dd

    parts = [frame.partitions[i].map_partitions(_rows, start, stop) for i, start, stop in slices]
    return parts[0] if len(parts) == 1 else dd.concat(parts, interleave_partitions=False)


def fit_classifier_dask(
    client,
    frame,
    features: list[str],
    label: str,
    params: dict,
    recency_half_life_days: float = 0.0,
    refit_on_all_rows: bool = False,
    timestamp: str = "event_timestamp",
) -> xgb.XGBClassifier:
    """`fit_classifier` on a Dask cluster: the same classifier, parameters, recency weights, time cut and early
    stopping, trained by `xgboost.dask` (a DaskQuantileDMatrix per worker, as the in-process `hist` path builds a
    QuantileDMatrix) on `frame`, a Dask DataFrame of the training split in time order (`read_split_partitions`).

    The split is read once and kept on the workers (`persist`), then one pass of per-partition stats gives the
    cut and the newest time. Returns a plain `XGBClassifier` (the booster moved to the driver: it is the model,
    a few MB), which the pyfunc, the gate and scoring read exactly as an in-process one."""
    import tempfile
    from pathlib import Path

    from xgboost import dask as dxgb

    # Every computation goes through `client`: the step must not depend on (or replace) a default Dask client.
    # Persisted, the partitions are fixed (the optimizer may fuse row groups of a lazy frame differently for each
    # computation, and the plan's partition numbers must mean the same rows throughout); `persisted` holds them
    # on the workers until training is done.
    persisted = client.persist(frame)
    frame = persisted
    stats = client.compute(frame[timestamp].map_partitions(
        partition_stats, meta={"rows": "int64", "first": pd.DatetimeTZDtype("us", "UTC"),
                               "last": pd.DatetimeTZDtype("us", "UTC"), "ordered": "bool"})).result()
    plan = plan_partitions(stats.reset_index(drop=True))
    frame = frame.map_partitions(_weighted, recency_half_life_days, plan.newest, timestamp)

    def classifier(**overrides) -> dxgb.DaskXGBClassifier:
        model = dxgb.DaskXGBClassifier(objective="binary:logistic", tree_method="hist", eval_metric="aucpr",
                                       **{**params, **overrides})
        model.client = client
        return model

    # xgboost.dask looks up the current client in places (`model.client` does not reach all of them): this one,
    # for this block only, so the step never changes a process-wide default.
    with client.as_current():
        fit, valid = _select(frame, plan.fit_slices()), _select(frame, plan.validation_slices())
        model = classifier()
        model.fit(fit[features], fit[label], sample_weight=fit["_weight"], eval_set=[(valid[features], valid[label])],
                  sample_weight_eval_set=[valid["_weight"]], verbose=False)
        best = int(model.best_iteration)
        if refit_on_all_rows:
            model = classifier(n_estimators=best + 1, early_stopping_rounds=None)
            model.fit(frame[features], frame[label], sample_weight=frame["_weight"], verbose=False)
            model.get_booster().set_attr(best_iteration=str(best))
    del persisted, frame, fit, valid  # the workers may release the split now
    local = xgb.XGBClassifier(objective="binary:logistic", tree_method="hist", eval_metric="aucpr", n_jobs=2,
                              **params)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.ubj"
        model.save_model(path)
        local.load_model(path)
    return local


__all__ = ["Metrics", "PartitionPlan", "evaluate", "fit_classifier", "fit_classifier_dask", "partition_stats",
           "plan_partitions", "recency_weights", "score"]
