"""Promotion gate and the model fitting/scoring helpers, on known arrays and a synthetic signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from platform_assets.training import evaluation
from platform_assets.training.evaluation import Metrics, evaluate, fit_classifier, score
from platform_assets.training.promotion import decide

# --- promotion ---------------------------------------------------------------------------------------------------


def test_first_model_is_promoted_without_a_champion():
    decision = decide(0.10, None)
    assert decision.promote and decision.reason == "no champion yet"


@pytest.mark.parametrize(
    ("candidate", "champion", "min_improvement", "promote"),
    [
        (0.60, 0.50, 0.0, True),
        (0.50, 0.50, 0.0, False),  # a tie keeps the champion
        (0.40, 0.50, 0.0, False),
        (0.52, 0.50, 0.05, False),  # better, but not by the required margin
        (0.56, 0.50, 0.05, True),
        (0.75, 0.50, 0.25, False),  # the margin must be exceeded, not just met (exact in binary floats)
    ],
)
def test_candidate_must_beat_champion_by_more_than_the_margin(candidate, champion, min_improvement, promote):
    decision = decide(candidate, champion, min_improvement)
    assert decision.promote is promote
    assert f"{champion:.4f}" in decision.reason


# --- evaluation --------------------------------------------------------------------------------------------------


def test_evaluate_matches_sklearn_on_known_arrays():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    m = evaluate(y, s)
    assert m.roc_auc == pytest.approx(0.75)
    assert m.pr_auc == pytest.approx(0.8333333, abs=1e-6)
    assert m.logloss == pytest.approx(log_loss(y, s))
    assert (m.rows, m.positives) == (4, 2)

    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.1).astype(int)
    s = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    m = evaluate(y, s)
    assert m.roc_auc == pytest.approx(roc_auc_score(y, s))
    assert m.pr_auc == pytest.approx(average_precision_score(y, s))
    assert m.logloss == pytest.approx(log_loss(y, s))
    assert m.positives == int(y.sum()) and m.rows == 500


def test_evaluate_clips_certain_scores_so_logloss_stays_finite():
    m = evaluate(np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 1.0, 0.0]))
    assert np.isfinite(m.logloss) and m.logloss > 5
    assert m.roc_auc == pytest.approx(0.5)


@pytest.mark.parametrize("y", [np.zeros(10, int), np.ones(10, int)])
def test_evaluate_refuses_a_single_class(y):
    with pytest.raises(ValueError, match="single class"):
        evaluate(y, np.linspace(0, 1, 10))


def test_metrics_as_dict_prefixes_and_floats():
    d = Metrics(roc_auc=0.9, pr_auc=0.5, logloss=0.1, rows=10, positives=2).as_dict("holdout_")
    assert d == {"holdout_roc_auc": 0.9, "holdout_pr_auc": 0.5, "holdout_logloss": 0.1, "holdout_rows": 10.0,
                 "holdout_positives": 2.0}
    assert all(isinstance(v, float) for v in d.values())


def synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    noise = rng.normal(size=n)
    y = ((signal + 0.3 * rng.normal(size=n)) > 1.5).astype(int)
    ts = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="min")
    return pd.DataFrame({"event_timestamp": ts, "signal": signal, "noise": noise, "is_fraud": y})


PARAMS = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.2, "early_stopping_rounds": 10, "random_state": 0}


def test_fit_classifier_learns_a_simple_signal():
    train = synthetic(3_000, 1)
    model = fit_classifier(train[["signal", "noise"]], train["is_fraud"], train["event_timestamp"], PARAMS)
    holdout = synthetic(2_000, 2)
    m = evaluate(holdout["is_fraud"].to_numpy(), score(model, holdout, ["signal", "noise"]))
    assert m.roc_auc > 0.95
    assert m.pr_auc > 0.7
    gain = model.get_booster().get_score(importance_type="gain")
    assert gain["signal"] > 10 * gain.get("noise", 0.0)


def test_float32_inputs_train_the_same_model_as_float64_ones():
    """The training stage reads features as float32 to halve its memory: XGBoost bins float32 values whatever it
    is given, so the trees, and every score, must be the same."""
    train = synthetic(3_000, 4)
    train.loc[::7, "noise"] = np.nan  # missing values take the same default branch either way
    wide = fit_classifier(train[["signal", "noise"]].astype("float64"), train["is_fraud"], train["event_timestamp"],
                          PARAMS)
    narrow = fit_classifier(train[["signal", "noise"]].astype("float32"), train["is_fraud"],
                            train["event_timestamp"], PARAMS)
    assert wide.get_booster().get_dump() == narrow.get_booster().get_dump()
    holdout = synthetic(1_000, 5)
    np.testing.assert_array_equal(score(wide, holdout, ["signal", "noise"]), score(narrow, holdout, ["signal", "noise"]))


def test_fit_classifier_validates_on_the_newest_rows(monkeypatch):
    frame = synthetic(2_000, 3).sample(frac=1.0, random_state=0)  # shuffled: the function must sort by time
    seen = {}
    original_fit = evaluation.xgb.XGBClassifier.fit

    def spy(self, X, y, *args, eval_set=None, **kwargs):
        seen["fit"], seen["valid"] = X.index, eval_set[0][0].index
        return original_fit(self, X, y, *args, eval_set=eval_set, **kwargs)

    monkeypatch.setattr(evaluation.xgb.XGBClassifier, "fit", spy)
    fit_classifier(frame[["signal", "noise"]], frame["is_fraud"], frame["event_timestamp"], PARAMS)

    ts = frame["event_timestamp"]
    assert len(seen["fit"]) == 1_700 and len(seen["valid"]) == 300
    assert set(seen["fit"]).isdisjoint(seen["valid"])
    assert ts.loc[seen["fit"]].max() < ts.loc[seen["valid"]].min()


def test_a_champion_that_cannot_read_the_new_holdout_does_not_block_and_says_why():
    decision = decide(0.4, None, champion_version="3")
    assert decision.promote and "v3" in decision.reason and "no champion yet" not in decision.reason
