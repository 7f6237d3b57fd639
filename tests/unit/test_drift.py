"""Evidently drift summary on synthetic frames: what is compared, what is flagged, what is written."""

from __future__ import annotations

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
    skipped = summary_report(current.assign(nothing=None), ["shifted", "empty_now", "nothing", "gone"], html)
    assert skipped == ["empty_now", "nothing", "gone"]
    assert html.exists() and html.stat().st_size > 10_000
