"""Evidently data-drift reports and the summary the platform acts on. No Dagster here.

Evidently picks the test per column by sample size (> 1000 reference rows: Wasserstein / Jensen-Shannon at 0.1;
otherwise K-S / chi-square at p < 0.05). Large windows are sampled (the sample size is reported): a 50k sample
costs ~3.5 s where 1M rows cost ~45 s. Columns that are empty or all-null on either side are left out and
reported, since Evidently aborts on them (evidently#1480).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

os.environ.setdefault("DO_NOT_TRACK", "1")


@dataclass(frozen=True)
class DriftSummary:
    drift_share: float
    drifted_columns: list[str]
    column_scores: dict[str, float]
    columns_tested: int
    skipped_columns: list[str] = field(default_factory=list)
    reference_rows: int = 0
    current_rows: int = 0

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


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], html_path: Path | None = None
) -> DriftSummary:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    cols, skipped = usable_columns(reference, current, columns)
    if not cols:
        raise ValueError("no column has values on both sides: nothing to compare")
    snapshot = Report([DataDriftPreset(columns=cols)], include_tests=True).run(
        current_data=current[cols], reference_data=reference[cols]
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
        t["metric_config"]["params"]["column"]
        for t in result["tests"]
        if t["id"] == "drift" and str(t["status"].value if hasattr(t["status"], "value") else t["status"]) == "FAIL"
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
    )


def save_html(snapshot, html_path: Path) -> None:
    """Write an Evidently snapshot's HTML atomically: a reader never sees half a report."""
    html_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = html_path.with_suffix(".html.tmp")
    snapshot.save_html(str(tmp))
    os.replace(tmp, html_path)


def summary_report(frame: pd.DataFrame, columns: list[str], html_path: Path) -> list[str]:
    """Evidently's data summary (counts, missing values, per-column stats) of the usable columns; returns the
    columns left out because they are empty or all-null."""
    from evidently import Report
    from evidently.presets import DataSummaryPreset

    keep, skipped = usable_columns(frame, frame, columns)
    if keep:
        save_html(Report([DataSummaryPreset(columns=keep)]).run(current_data=frame[keep], reference_data=None),
                  html_path)
    return skipped
