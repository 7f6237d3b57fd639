"""The chart helpers draw real PNGs from known arrays, say which columns drifted, and refuse what cannot be drawn."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from platform_assets.lib import charts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def labelled_scores():
    rng = np.random.default_rng(0)
    y = (rng.random(2_000) < 0.05).astype(int)
    scores = np.clip(0.05 + 0.5 * y + rng.normal(0, 0.15, len(y)), 0, 1)
    return y, scores


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_MAGIC)
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_model_figures_render_four_small_pngs(labelled_scores):
    y, scores = labelled_scores
    pngs = charts.rendered(charts.model_figures(y, scores, {"amount": 3.0, "hour_of_day": 1.0, "is_online": 0.0}))
    assert set(pngs) == {"roc_curve", "pr_curve", "calibration", "feature_importance"}
    for name, png in pngs.items():
        width, height = _png_size(png)
        assert 200 < width < 1000 and 150 < height < 1000, (name, width, height)
        assert len(png) < 120_000, f"{name} is {len(png)} bytes: too heavy for Dagit's event log"


def test_roc_legend_carries_the_auc(labelled_scores):
    from sklearn.metrics import roc_auc_score

    y, scores = labelled_scores
    fig = charts.roc_curve_figure(y, scores)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    charts.to_png(fig)
    assert f"model (AUC {roc_auc_score(y, scores):.3f})" in labels


def test_pr_curve_draws_the_base_rate(labelled_scores):
    y, scores = labelled_scores
    fig = charts.pr_curve_figure(y, scores)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    charts.to_png(fig)
    assert f"base rate {y.mean():.3f}" in labels


def test_feature_importance_puts_the_strongest_on_top():
    fig = charts.feature_importance_figure({"weak": 1.0, "strong": 9.0, "middle": 4.0})
    # barh draws bottom-up: the last tick is the top bar.
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    charts.to_png(fig)
    assert names == ["weak", "middle", "strong"]


def test_drift_summary_marks_drifted_columns_red():
    fig = charts.drift_summary_figure({"amount": 0.4, "hour_of_day": 0.02, "is_night": 0.05}, ["amount"])
    ax = fig.axes[0]
    colors = {t.get_text(): bar.get_facecolor() for t, bar in zip(ax.get_yticklabels(), ax.patches)}
    title = ax.get_title()
    charts.to_png(fig)
    assert colors["amount"] != colors["hour_of_day"] == colors["is_night"]
    assert "(1/3 drifted" in title


def test_markdown_image_embeds_the_png_itself(labelled_scores):
    png = charts.to_png(charts.calibration_figure(*labelled_scores))
    md = charts.markdown_gallery({"Calibration": png})
    match = re.search(r"!\[Calibration\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert match and base64.b64decode(match.group(1)) == png


@pytest.mark.parametrize("draw", [charts.roc_curve_figure, charts.pr_curve_figure, charts.calibration_figure])
def test_curves_refuse_a_single_class(draw):
    with pytest.raises(ValueError, match="both classes"):
        draw(np.zeros(10), np.linspace(0, 1, 10))


def test_empty_inputs_are_refused():
    with pytest.raises(ValueError):
        charts.feature_importance_figure({})
    with pytest.raises(ValueError):
        charts.drift_summary_figure({}, [])
    with pytest.raises(ValueError, match="labels but"):
        charts.roc_curve_figure([0, 1, 1], [0.1, 0.2])


def test_no_figure_is_left_open(labelled_scores):
    import matplotlib.pyplot as plt

    charts.rendered(charts.model_figures(*labelled_scores, {"amount": 1.0}))
    assert plt.get_fignums() == []
