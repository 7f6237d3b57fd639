"""The retrain-on-drift sensor's run key: one retrain per drift window, none without drift."""

import dagster as dg
import pytest

from platform_assets.automation.sensors import retrain_run_key


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"drift_detected": False, "current_window_end": "2026-03-10"},
        {"drift_detected": dg.MetadataValue.bool(False), "current_window_end": dg.MetadataValue.text("2026-03-10")},
        {"drift_detected": None},
    ],
)
def test_no_drift_requests_no_retrain(metadata):
    assert retrain_run_key(metadata) is None


def test_drift_requests_a_retrain_keyed_by_the_window():
    assert retrain_run_key({"drift_detected": True, "current_window_end": "2026-03-10"}) == "drift-retrain:2026-03-10"


def test_metadata_value_wrappers_are_unwrapped():
    metadata = {"drift_detected": dg.MetadataValue.bool(True), "current_window_end": dg.MetadataValue.text("2026-03-10")}
    assert retrain_run_key(metadata) == "drift-retrain:2026-03-10"


def test_same_window_gives_same_key_and_new_window_a_new_one():
    a = retrain_run_key({"drift_detected": True, "current_window_end": "2026-03-10", "drift_share": 0.4})
    b = retrain_run_key({"drift_detected": dg.MetadataValue.bool(True),
                         "current_window_end": dg.MetadataValue.text("2026-03-10"), "drift_share": 0.9})
    c = retrain_run_key({"drift_detected": True, "current_window_end": "2026-03-11"})
    assert a == b != c


def test_materialized_metadata_round_trips_through_the_event_log():
    """The sensor sees what Dagster stored, not what the asset returned: plain values come back wrapped."""
    @dg.asset(name="feature_drift_report")
    def report():
        return dg.MaterializeResult(metadata={"drift_detected": True, "current_window_end": "2026-03-10"})

    with dg.instance_for_test() as instance:
        assert dg.materialize([report], instance=instance).success
        event = instance.get_latest_materialization_event(dg.AssetKey("feature_drift_report"))
        metadata = event.asset_materialization.metadata
        assert isinstance(metadata["drift_detected"], dg.MetadataValue)
        assert retrain_run_key(metadata) == "drift-retrain:2026-03-10"
