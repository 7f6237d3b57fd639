"""The daily predictions files: written by scoring, read by monitoring (ground floor, so neither imports the other).

One parquet file per day, `<predictions_dir>/<YYYY-MM-DD>.parquet`. Every row carries the transaction keys, the
features the model read, its score, whether it went to review, and its provenance (model name and version,
feature service, training-set id), so a single query walks from a prediction to the data that trained its model.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from upath import UPath

from platform_assets.lib.files import replacing

SCORE = "fraud_score"
FLAGGED = "flagged_for_review"
PROVENANCE = ["model_name", "model_version", "feature_service", "training_set_id"]


# The scoring service's answers, one parquet file per served UTC day (written by serving's `served_predictions`,
# read by monitoring's `served_traffic_report`): the answer's `score` and `decision`, the vector it read.
SERVED_SCORE = "score"


def served_day_path(served_dir: Path, day: date) -> UPath:
    """A Path locally, an S3 UPath on the shared store: give pandas and DuckDB `str()` of it."""
    return UPath(served_dir) / f"{day.isoformat()}.parquet"


def read_served_days(served_dir: Path, first: date, last: date) -> pd.DataFrame:
    """The served predictions of the days first..last that were loaded (empty frame if none)."""
    frames = []
    day = first
    while day <= last:
        path = served_day_path(served_dir, day)
        if path.exists():
            frames.append(pd.read_parquet(str(path)))
        day += timedelta(days=1)
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def day_path(predictions_dir: Path, day: date) -> UPath:
    return UPath(predictions_dir) / f"{day.isoformat()}.parquet"


def review_threshold(scores, budget: float) -> float:
    """The score from which a transaction goes to review in real time: the (1 - budget) quantile of a model's
    holdout scores, so the scoring service sends about the share of traffic the daily queue holds (`flag_top`).
    The tie-free "higher" quantile: a score equal to it is reviewed."""
    import numpy as np

    return float(np.quantile(np.asarray(scores, dtype="float64"), 1.0 - budget, method="higher"))


def flag_top(scores: pd.Series, budget: float) -> pd.Series:
    """The review queue of one day: the `budget` share of its transactions with the highest scores (at least one
    when there are any), ties broken by order."""
    if len(scores) == 0:
        return pd.Series([], dtype=bool, index=scores.index)
    k = max(1, round(len(scores) * budget))
    ranks = scores.rank(method="first", ascending=False)
    return ranks <= k


def write_day(frame: pd.DataFrame, predictions_dir: Path, day: date) -> Path:
    """Replace one day's file whole (lib/files.replacing, local or shared store): a re-run for the day rewrites it,
    never appends."""
    path = day_path(predictions_dir, day)
    with replacing(path) as tmp:
        frame.to_parquet(tmp, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    return path


def read_days(predictions_dir: Path, first: date, last: date) -> tuple[pd.DataFrame, list[date]]:
    """The predictions of the days first..last that were scored, and which days those were."""
    frames, days = [], []
    day = first
    while day <= last:
        path = day_path(predictions_dir, day)
        if path.exists():
            frames.append(pd.read_parquet(str(path)))
            days.append(day)
        day += timedelta(days=1)
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), days
