"""Evidently drift summary on synthetic frames: what is compared, what is flagged, what is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from platform_assets.monitoring.drift import DriftSummary, drift_report, sample, usable_columns


def test_usable_columns_skips_missing_empty_and_all_null_columns():
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan], "c": [1, 2], "d": [None, 3.0]})
    current = pd.DataFrame({"a": [1.0, 5.0], "b": [1.0, 2.0], "c": [None, None], "d": [4.0, None]})
    keep, skipped = usable_columns(reference, current, ["a", "b", "c", "d", "missing"])
    assert keep == ["a", "d"]
    assert skipped == ["b", "c", "missing"]

    keep, skipped = usable_columns(reference.iloc[:0], current, ["a"])
    assert (keep, skipped) == ([], ["a"])


def test_sample_bounds_rows_and_is_reproducible():
    frame = pd.DataFrame({"x": range(1_000)})
    assert sample(frame, 1_000) is frame
    assert sample(frame, 5_000) is frame
    small = sample(frame, 100, seed=3)
    assert len(small) == 100
    assert small.index.is_unique and set(small.index) <= set(frame.index)
    assert small.equals(sample(frame, 100, seed=3))
    assert not small.equals(sample(frame, 100, seed=4))


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(42)
    n = 3_000
    reference = pd.DataFrame({
        "shifted": rng.normal(0, 1, n),
        "stable": rng.normal(5, 2, n),
        "flag": rng.integers(0, 2, n),
        "empty_now": rng.normal(0, 1, n),
    })
    current = pd.DataFrame({
        "shifted": rng.normal(1.0, 1, n),
        "stable": rng.normal(5, 2, n),
        "flag": rng.integers(0, 2, n),
        "empty_now": np.nan,
    })
    return reference, current


def test_drift_report_flags_the_shifted_column_only(frames, tmp_path):
    reference, current = frames
    html = tmp_path / "reports" / "feature_drift" / "2026-03-10.html"
    summary = drift_report(reference, current, ["shifted", "stable", "flag", "empty_now"], html)

    assert summary.drifted_columns == ["shifted"]
    assert summary.columns_tested == 3
    assert summary.skipped_columns == ["empty_now"]
    assert summary.drift_share == pytest.approx(1 / 3)
    assert set(summary.column_scores) == {"shifted", "stable", "flag"}
    assert summary.column_scores["shifted"] > 0.5
    assert summary.column_scores["stable"] < 0.1  # the Wasserstein threshold
    assert (summary.reference_rows, summary.current_rows) == (3_000, 3_000)
    assert summary.is_drift(0.3) and not summary.is_drift(0.5)

    assert html.is_file() and html.stat().st_size > 10_000
    assert "<html" in html.read_text(errors="ignore")[:2_000].lower()
    assert sorted(p.name for p in html.parent.iterdir()) == ["2026-03-10.html"]  # no .tmp left behind


def test_drift_report_without_comparable_columns_raises(frames):
    reference, current = frames
    with pytest.raises(ValueError, match="nothing to compare"):
        drift_report(reference, current, ["empty_now", "not_there"])


def test_is_drift_threshold_is_inclusive():
    summary = DriftSummary(drift_share=0.3, drifted_columns=["a"], column_scores={}, columns_tested=3)
    assert summary.is_drift(0.3) and not summary.is_drift(0.31)


def test_data_summary_skips_all_null_columns_and_writes_html(frames, tmp_path):
    from platform_assets.monitoring.drift import summary_report

    _, current = frames
    html = tmp_path / "quality.html"
    skipped, snapshot = summary_report(current.assign(nothing=None), ["shifted", "empty_now", "nothing", "gone"],
                                       html)
    assert skipped == ["empty_now", "nothing", "gone"]
    assert html.exists() and html.stat().st_size > 10_000
    assert snapshot is not None and snapshot.dict()["metrics"]
    assert summary_report(current, ["empty_now"], tmp_path / "none.html") == (["empty_now"], None)
    assert not (tmp_path / "none.html").exists()


def _weekly_world(rng, start: str, days: int, rows_per_day: int = 400, level: float = 0.0) -> pd.DataFrame:
    """Rows of a world whose `seasonal` column follows the weekday (a quiet world that is not i.i.d.)."""
    frames = []
    for i, stamp in enumerate(pd.date_range(start, periods=days, freq="D", tz="UTC")):
        frames.append(pd.DataFrame({
            "event_timestamp": stamp + pd.to_timedelta(rng.integers(0, 86_400, rows_per_day), unit="s"),
            "seasonal": rng.normal(3.0 * np.sin(2 * np.pi * stamp.dayofweek / 7) + level, 1.0, rows_per_day),
            "steady": rng.normal(level, 1.0, rows_per_day),
            "count": rng.integers(0, 4, rows_per_day),
            "sparse": np.where(rng.random(rows_per_day) < 0.5, np.nan, rng.normal(0, 1, rows_per_day)),
        }))
        assert i < days
    return pd.concat(frames, ignore_index=True)


def test_calibrated_thresholds_learn_a_columns_natural_wander_from_the_reference_period():
    from platform_assets.monitoring.drift import THRESHOLD_FLOOR, calibrated_thresholds

    rng = np.random.default_rng(7)
    history = _weekly_world(rng, "2026-01-01", 28)
    reference = _weekly_world(rng, "2026-01-29", 3)
    columns = ["seasonal", "steady", "count", "sparse"]
    thresholds = calibrated_thresholds(reference, history, columns, window_days=3)

    assert set(thresholds) == set(columns)
    assert thresholds["seasonal"] > 0.5  # weekdays move it far more than the fixed 0.1
    assert thresholds["steady"] == pytest.approx(THRESHOLD_FLOOR)  # i.i.d. noise stays under the floor
    assert all(t >= THRESHOLD_FLOOR for t in thresholds.values())

    quiet = _weekly_world(rng, "2026-02-02", 3)  # other weekdays, same world
    fixed = drift_report(reference, quiet, columns)
    calibrated = drift_report(reference, quiet, columns, thresholds=thresholds)
    assert "seasonal" in fixed.drifted_columns  # the false alarm of a fixed threshold
    assert calibrated.drifted_columns == []

    # The world really moved: a shift of 1 sigma is drift for the steady column, not for one that wanders by 3.
    moved = drift_report(reference, _weekly_world(rng, "2026-02-05", 3, level=1.0), columns, thresholds=thresholds)
    assert moved.drifted_columns == ["steady"]
    moved_far = _weekly_world(rng, "2026-02-05", 3, level=6.0)
    assert drift_report(reference, moved_far, columns, thresholds=thresholds).drifted_columns == ["seasonal", "steady"]


def test_calibration_scores_are_evidentlys_own_column_scores(frames):
    from platform_assets.monitoring.drift import normed_wasserstein

    reference, current = frames
    summary = drift_report(reference, current, ["shifted", "stable"], thresholds={})
    for column in ("shifted", "stable"):
        assert normed_wasserstein(reference[column], current[column]) == pytest.approx(
            summary.column_scores[column], rel=1e-6)


def test_calibration_without_two_history_windows_keeps_the_floor():
    from platform_assets.monitoring.drift import THRESHOLD_FLOOR, calibrated_thresholds

    rng = np.random.default_rng(1)
    history = _weekly_world(rng, "2026-01-01", 3)
    reference = _weekly_world(rng, "2026-01-04", 3)
    assert calibrated_thresholds(reference, history, ["seasonal"], window_days=7) == {"seasonal": THRESHOLD_FLOOR}
    assert calibrated_thresholds(reference, history.iloc[:0], ["seasonal"], window_days=3) == {"seasonal": THRESHOLD_FLOOR}


def _status(test: dict) -> str:
    return str(getattr(test["status"], "value", test["status"]))


def _headline(summary) -> str:
    """The dataset-level sentence the report shows a person (the same widget text the HTML and the UI render)."""
    import re

    widgets = json.dumps(summary.snapshot.to_snapshot_model().dict()["widgets"], default=str)
    return re.search(r"Dataset Drift is (?:NOT )?detected\. Dataset drift detection threshold is [0-9.]+", widgets)[0]


@pytest.mark.parametrize("share_threshold, drifts", [(0.3, True), (0.5, False)])
def test_the_reports_own_dataset_verdict_is_ours(frames, share_threshold, drifts):
    """One column of three drifts (share 1/3): drift at our threshold 0.3, none at 0.5. The report's dataset test,
    read from its own dict, and its headline say the same as DriftSummary.is_drift at the threshold we pass."""
    reference, current = frames
    summary = drift_report(reference, current, ["shifted", "stable", "flag"], thresholds={"shifted": 0.12},
                           share_threshold=share_threshold)
    assert summary.is_drift(share_threshold) is drifts
    assert summary.dataset_drift is drifts

    result = summary.snapshot.dict()
    dataset_test = next(t for t in result["tests"] if t["metric_config"]["params"]["type"].endswith(
        "DriftedColumnsCount"))
    assert dataset_test["metric_config"]["params"]["drift_share"] == share_threshold
    assert _status(dataset_test) == ("FAIL" if drifts else "SUCCESS")
    assert f"{share_threshold:.3f}" in dataset_test["name"]
    not_ = "" if drifts else "NOT "
    assert _headline(summary) == f"Dataset Drift is {not_}detected. Dataset drift detection threshold is {share_threshold}"

    # Each column's test uses our threshold (the calibrated one, else the floor), and fails only for `shifted`.
    column_tests = {t["metric_config"]["params"]["column"]: t for t in result["tests"] if t["id"] == "drift"}
    assert {c: t["metric_config"]["params"]["threshold"] for c, t in column_tests.items()} == {
        "shifted": 0.12, "stable": 0.1, "flag": 0.1}
    assert sorted(c for c, t in column_tests.items() if _status(t) == "FAIL") == summary.drifted_columns


def test_without_a_share_threshold_the_report_keeps_evidentlys_default(frames):
    reference, current = frames
    summary = drift_report(reference, current, ["shifted", "stable"], thresholds={})
    assert (summary.drift_share, summary.share_threshold, summary.dataset_drift) == (0.5, 0.5, True)
    assert _headline(summary).endswith("threshold is 0.5")
