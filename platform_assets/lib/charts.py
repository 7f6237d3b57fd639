"""Pictures of a model and of a drift report, as PNG bytes: shown in Dagit as markdown, logged to MLflow.

People read a curve faster than a table of numbers. Every chart here is a pure function of arrays (no Dagster, no
MLflow, no file system), drawn with matplotlib's non-interactive Agg backend so it works on a server without a
display. matplotlib and scikit-learn are imported inside the functions: loading the Definitions stays light.

The PNGs are small (a few tens of kB) because Dagit keeps them in its event log: `markdown_image` embeds them as
base64 in a `dg.MetadataValue.md`, which the asset page and the run log render as pictures.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np

# Small figures at a modest resolution: legible in Dagit's metadata panel, light in its event log.
FIGSIZE = (4.8, 3.6)
DPI = 90


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def to_png(fig) -> bytes:
    """Render and close the figure (pyplot keeps every open figure alive until it is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def rendered(figures: Mapping[str, object]) -> dict[str, bytes]:
    """PNG bytes of each figure, closing them all."""
    return {name: to_png(fig) for name, fig in figures.items()}


def markdown_image(png: bytes, title: str) -> str:
    """A markdown image whose source is the PNG itself, so Dagit shows it without serving any file."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def markdown_gallery(charts: Mapping[str, bytes]) -> str:
    """Several charts, each under its title, as one markdown document."""
    return "\n\n".join(f"**{title}**\n\n{markdown_image(png, title)}" for title, png in charts.items())


def _checked(y_true: Sequence, scores: Sequence) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y_true), np.asarray(scores, dtype=float)
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if len(np.unique(y)) != 2:
        raise ValueError("curves need both classes among the labels")
    return y, s


def roc_curve_figure(y_true: Sequence, scores: Sequence, title: str = "ROC curve"):
    from sklearn.metrics import roc_auc_score, roc_curve

    y, s = _checked(y_true, scores)
    fpr, tpr, _ = roc_curve(y, s)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.plot(fpr, tpr, color="#4f43dd", lw=2, label=f"model (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return fig


def pr_curve_figure(y_true: Sequence, scores: Sequence, title: str = "Precision-recall curve"):
    """With ~1% fraud, the PR curve is what a fraud team feels; the base rate is the no-skill line."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y, s = _checked(y_true, scores)
    precision, recall, _ = precision_recall_curve(y, s)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.step(recall, precision, where="post", color="#4f43dd", lw=2,
            label=f"model (AP {average_precision_score(y, s):.3f})")
    ax.axhline(y.mean(), color="#999999", lw=1, ls="--", label=f"base rate {y.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right")
    return fig


def calibration_figure(y_true: Sequence, scores: Sequence, bins: int = 10, title: str = "Calibration"):
    """Observed fraud rate per score bin (quantile bins, so rare high scores still get a point)."""
    from sklearn.calibration import calibration_curve

    y, s = _checked(y_true, scores)
    observed, predicted = calibration_curve(y, s, n_bins=bins, strategy="quantile")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", color="#4f43dd", lw=2, label="model")
    ax.set(xlabel="mean predicted probability", ylabel="observed fraud rate", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper left")
    return fig


def feature_importance_figure(importances: Mapping[str, float], top: int = 20, title: str = "Feature importance (gain)"):
    if not importances:
        raise ValueError("no feature importances to draw")
    ranked = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    names, values = [k for k, _ in ranked], [float(v) for _, v in ranked]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], max(2.0, 0.22 * len(names) + 0.8)))
    ax.barh(names, values, color="#4f43dd")
    ax.set(xlabel="gain", title=title)
    ax.tick_params(axis="y", labelsize=8)
    return fig


def drift_summary_figure(
    column_scores: Mapping[str, float],
    drifted_columns: Sequence[str],
    title: str = "Drift score per column",
):
    """One bar per column, red where Evidently's per-column test failed. The score is Evidently's statistic for the
    column (a distance such as Wasserstein or Jensen-Shannon on large samples, a p-value on small ones), so the
    colour, not the bar length, carries the verdict."""
    if not column_scores:
        raise ValueError("no column scores to draw")
    drifted = set(drifted_columns)
    ranked = sorted(column_scores.items(), key=lambda kv: kv[1])
    names, values = [k for k, _ in ranked], [float(v) for _, v in ranked]
    colors = ["#d1453b" if n in drifted else "#4f43dd" for n in names]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(FIGSIZE[0] + 0.6, max(2.0, 0.22 * len(names) + 0.8)))
    ax.barh(names, values, color=colors)
    ax.set(xlabel="drift score", title=f"{title} ({len(drifted & set(names))}/{len(names)} drifted, red)")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def model_figures(y_true: Sequence, scores: Sequence, importances: Mapping[str, float]) -> dict[str, object]:
    """The four pictures of a model on its holdout, by file-friendly name."""
    return {
        "roc_curve": roc_curve_figure(y_true, scores),
        "pr_curve": pr_curve_figure(y_true, scores),
        "calibration": calibration_figure(y_true, scores),
        "feature_importance": feature_importance_figure(importances),
    }
