"""The monitoring verdicts as check results: a finding fails, too little data passes with a note."""

import dagster as dg
import pytest

from platform_assets.lib import names
from platform_assets.monitoring.checks import ERROR, WARN, check_spec, insufficient, verdict_check


@pytest.mark.parametrize(("enough", "finding", "passed"), [(True, True, False), (True, False, True),
                                                           (False, True, True), (False, False, True)])
def test_only_a_finding_on_enough_data_fails(enough, finding, passed):
    result = verdict_check(names.FEATURE_DRIFT_REPORT, enough, finding, "drift", "3/38 inputs drifted",
                           {"drift_share": 0.3})
    assert result.passed is passed and result.severity == WARN
    assert result.check_name == names.FEATURE_DRIFT_CHECK and result.asset_key == names.FEATURE_DRIFT_REPORT
    assert result.metadata["drift_share"].value == 0.3 and result.metadata[names.VERDICT].value == "drift"
    assert result.description.startswith("insufficient data") is (not enough)


def test_an_empty_window_passes_and_says_so():
    result = insufficient(names.MODEL_PERFORMANCE, "no predictions in 2026-03-01..2026-03-07", severity=ERROR)
    assert result.passed and result.severity == ERROR and result.check_name == names.FRAUD_RECALL_CHECK
    assert result.metadata[names.VERDICT].value == "insufficient_data"
    assert result.description == "insufficient data, no verdict (passes): no predictions in 2026-03-01..2026-03-07"


def test_the_specs_are_partitioned_like_their_asset_and_never_block():
    partitions = dg.DailyPartitionsDefinition(start_date="2026-03-01")
    for key in (names.FEATURE_DRIFT_REPORT, names.PREDICTION_DRIFT_REPORT, names.MODEL_PERFORMANCE,
                names.SERVED_TRAFFIC_REPORT):
        spec = check_spec(key, partitions)
        assert spec.partitions_def == partitions and not spec.blocking and spec.description
