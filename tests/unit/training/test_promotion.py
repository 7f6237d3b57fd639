"""The promotion gate's rules: same holdout, latest matured window, configurable margins, reasons."""

from platform_assets.training.promotion import GateScores, decide


def test_no_champion_promotes():
    assert decide(GateScores(0.3, 0.3), None).promote
    d = decide(GateScores(0.3), None, champion_version="4")
    assert d.promote and "v4 reads features this holdout lacks" in d.reason


def test_better_on_holdout_and_latest_window_promotes():
    d = decide(GateScores(0.40, 0.42), GateScores(0.35, 0.36))
    assert d.promote and "beats champion 0.3500 by +0.0500" in d.reason and "latest matured window" in d.reason


def test_worse_or_equal_on_holdout_is_refused():
    d = decide(GateScores(0.30, 0.50), GateScores(0.35, 0.10))
    assert not d.promote and "does not beat champion 0.3500" in d.reason
    assert not decide(GateScores(0.35), GateScores(0.35)).promote


def test_margin_is_configurable():
    assert decide(GateScores(0.36), GateScores(0.35), min_improvement=0.0).promote
    d = decide(GateScores(0.36), GateScores(0.35), min_improvement=0.02)
    assert not d.promote and "by more than 0.0200" in d.reason


def test_better_on_average_but_worse_on_the_latest_window_is_refused():
    d = decide(GateScores(0.40, 0.20), GateScores(0.35, 0.30), max_latest_regression=0.05)
    assert not d.promote and "on the latest matured window" in d.reason
    assert decide(GateScores(0.40, 0.28), GateScores(0.35, 0.30), max_latest_regression=0.05).promote


def test_latest_window_with_one_class_does_not_block():
    assert decide(GateScores(0.40, None), GateScores(0.35, 0.30)).promote


def test_plain_floats_still_work():
    assert decide(0.4, 0.3).promote and not decide(0.3, 0.4).promote


def test_a_challenger_of_another_feature_service_is_judged_by_the_same_rule_and_the_reason_names_both():
    v3, v2 = GateScores(0.62, 0.60, 0.97, "fraud_detector_v3"), GateScores(0.48, 0.50, 0.95, "fraud_detector_v2")
    d = decide(v3, v2, champion_version="1")
    assert d.promote
    assert "(fraud_detector_v3) beats champion 0.4800 (fraud_detector_v2)" in d.reason
    back = decide(v2, v3, champion_version="2")
    assert not back.promote and "(fraud_detector_v2 vs fraud_detector_v3)" in back.reason
    # the same service on both sides: the reason stays as it was
    assert "(" not in decide(GateScores(0.5, feature_service="s"), GateScores(0.4, feature_service="s")).reason
