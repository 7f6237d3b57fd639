"""Evidently data-drift reports and the summary the platform acts on. No Dagster here.

Without calibration Evidently picks the test per column by sample size (> 1000 reference rows: Wasserstein /
Jensen-Shannon at 0.1; otherwise K-S / chi-square at p < 0.05). Those fixed cut-offs assume independent rows and
a stationary world; fraud features are neither (a merchant's 7-day count is the same value on all its rows, and
weekdays differ), so two quiet windows routinely differ by more than 0.1. `calibrated_thresholds` therefore sets
each column's threshold from the reference period itself, the way NannyML sets alert thresholds: the normed
Wasserstein distance of each window of the champion's training history from its holdout, mean + 3 sigma, never
below 0.1. A column is drifted when today's window is further from the holdout than the training history ever
wandered. Large windows are sampled (the sample size is reported): a 50k sample
costs ~3.5 s where 1M rows cost ~45 s. Columns that are empty or all-null on either side are left out and
reported, since Evidently aborts on them (evidently#1480).

The report says what the platform decides: its dataset-level test ("Share of Drifted Columns: Less <t>", the
headline "Dataset Drift is [NOT] detected. Dataset drift detection threshold is <t>") is built with our share
threshold, and each column's test with our calibrated threshold, so a person reading the report sees the same
verdict the retrain sensor acts on. `DriftSummary.dataset_drift` is that test's own outcome, read back from the
report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DriftSummary:
    drift_share: float
    drifted_columns: list[str]
    column_scores: dict[str, float]
    columns_tested: int
    skipped_columns: list[str] = field(default_factory=list)
    reference_rows: int = 0
    current_rows: int = 0
    # What the report itself concluded: its dataset-level test failed (share >= the threshold it was built with).
    dataset_drift: bool | None = None
    share_threshold: float | None = None
    # The evidently Snapshot, for the workspace (monitoring/workspace.py); not part of the summary's value.
    snapshot: object = field(default=None, compare=False, repr=False)

    def is_drift(self, share_threshold: float) -> bool:
        return self.drift_share >= share_threshold


def usable_columns(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    keep, skipped = [], []
    for c in columns:
        if c in reference and c in current and reference[c].notna().any() and current[c].notna().any():
            keep.append(c)
        else:
            skipped.append(c)
    return keep, skipped


def sample(frame: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    return frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=seed)


THRESHOLD_FLOOR = 0.1  # Evidently's own default for the normed Wasserstein distance
CALIBRATION_SIGMAS = 3.0
MIN_WINDOW_ROWS = 100


def normed_wasserstein(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's `wasserstein` statistic: the first Wasserstein distance over the reference's std (NaNs left
    out), so a calibration computed here means the same as the report's column scores."""
    from scipy import stats

    ref, cur = reference.dropna().astype("float64"), current.dropna().astype("float64")
    if ref.empty or cur.empty:
        return float("nan")
    return float(stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))


def calibrated_thresholds(
    reference: pd.DataFrame,
    history: pd.DataFrame,
    columns: list[str],
    window_days: int,
    time_column: str = "event_timestamp",
    floor: float = THRESHOLD_FLOOR,
    sigmas: float = CALIBRATION_SIGMAS,
    times: pd.Series | None = None,
) -> dict[str, float]:
    """Per-column drift thresholds from the reference period's own variability: `history` (rows before the
    reference, e.g. the champion's training rows) is cut into windows of `window_days` days; each window with
    at least MIN_WINDOW_ROWS rows is compared with `reference`; a column's threshold is mean + `sigmas` std of
    those distances, never below `floor`. With fewer than two windows every column keeps `floor`. `times` (the
    rows' timestamps, in `history`'s row order) stands in for `history[time_column]`; one window is copied at a
    time, so a history of millions of rows is held once."""
    stamps = history[time_column] if times is None else times
    days = pd.Series(pd.to_datetime(np.asarray(stamps), utc=True)).dt.floor("D")
    if days.empty:
        return dict.fromkeys(columns, floor)
    window_index = ((days - days.min()).dt.days // window_days).to_numpy()
    positions = pd.Series(window_index).groupby(window_index).indices
    present = [c for c in columns if c in history and c in reference]
    distances: dict[str, list[float]] = {c: [] for c in present}
    for rows in positions.values():
        if len(rows) < MIN_WINDOW_ROWS:
            continue
        window = history.iloc[rows]
        for column in present:
            distances[column].append(normed_wasserstein(reference[column], window[column]))
    thresholds = {}
    for column in columns:
        found = np.array(distances.get(column, []), dtype="float64")
        found = found[~np.isnan(found)]
        natural = found.mean() + sigmas * found.std() if len(found) >= 2 else 0.0
        thresholds[column] = round(max(floor, float(natural)), 4)
    return thresholds


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    html_path: Path | None = None,
    thresholds: dict[str, float] | None = None,
    share_threshold: float = 0.5,
) -> DriftSummary:
    """Evidently's data drift of `columns`. With `thresholds` (calibrated_thresholds) every column is compared
    as a number by the normed Wasserstein distance against its own threshold, whatever the sample size.
    `share_threshold` is the share of drifted columns at which the dataset drifts (our policy's
    drift_share_threshold): the report's headline and dataset-level test use it, Evidently's 0.5 otherwise."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    cols, skipped = usable_columns(reference, current, columns)
    if not cols:
        raise ValueError("no column has values on both sides: nothing to compare")
    reference, current = reference[cols], current[cols]
    options = {}
    if thresholds is not None:
        # Evidently treats integer columns of <= 10 distinct values as categories; as floats they are numbers.
        reference, current = reference.astype("float64"), current.astype("float64")
        options = {
            "per_column_method": dict.fromkeys(cols, "wasserstein"),
            "per_column_threshold": {c: thresholds.get(c, THRESHOLD_FLOOR) for c in cols},
        }
    preset = DataDriftPreset(columns=cols, drift_share=share_threshold, **options)
    snapshot = Report([preset], include_tests=True).run(
        current_data=current, reference_data=reference
    )
    result = snapshot.dict()
    share = next(
        float(m["value"]["share"]) for m in result["metrics"] if m["config"]["type"].endswith("DriftedColumnsCount")
    )
    scores = {
        m["config"]["column"]: float(m["value"])
        for m in result["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    drifted = sorted(
        t["metric_config"]["params"]["column"] for t in result["tests"] if t["id"] == "drift" and _failed(t)
    )
    # The dataset-level test: "share of drifted columns less than share_threshold"; failing it is drift.
    dataset_drift = next(
        _failed(t) for t in result["tests"]
        if t["metric_config"]["params"]["type"].endswith("DriftedColumnsCount")
    )
    if html_path is not None:
        save_html(snapshot, html_path)
    return DriftSummary(
        drift_share=share,
        drifted_columns=drifted,
        column_scores=scores,
        columns_tested=len(cols),
        skipped_columns=skipped,
        reference_rows=len(reference),
        current_rows=len(current),
        dataset_drift=dataset_drift,
        share_threshold=share_threshold,
        snapshot=snapshot,
    )


def _failed(test: dict) -> bool:
    status = test["status"]
    return str(getattr(status, "value", status)) == "FAIL"


def save_html(snapshot, html_path: Path) -> None:
    """Write an Evidently snapshot's HTML atomically: a reader never sees half a report."""
    from platform_assets.lib.files import replacing

    with replacing(html_path) as tmp:
        snapshot.save_html(str(tmp))


def summary_report(frame: pd.DataFrame, columns: list[str], html_path: Path) -> tuple[list[str], object]:
    """Evidently's data summary (counts, missing values, per-column stats) of the usable columns; returns the
    columns left out because they are empty or all-null, and the evidently Snapshot (None without a usable
    column)."""
    from evidently import Report
    from evidently.presets import DataSummaryPreset

    keep, skipped = usable_columns(frame, frame, columns)
    if not keep:
        return skipped, None
    snapshot = Report([DataSummaryPreset(columns=keep)]).run(current_data=frame[keep], reference_data=None)
    save_html(snapshot, html_path)
    return skipped, snapshot
