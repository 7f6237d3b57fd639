"""The retrain trigger's state machine: one retrain per drift event, a cooldown, an optional label wait."""

from datetime import date, timedelta

import dagster as dg

from platform_assets.automation.sensors import TriggerState, Verdict, advance, new_verdicts, retrain_run_key

D0 = date(2026, 3, 10)


def _verdicts(flags: list[bool], start: date = D0, first_id: int = 1, asset: str = "feature_drift_report"):
    return [Verdict(first_id + i, asset, start + timedelta(days=i), f) for i, f in enumerate(flags)]


def test_no_drift_requests_nothing():
    state = advance(TriggerState(), _verdicts([False] * 10), cooldown_days=7, wait_days=0)
    assert state.event_start is None and state.pending_as_of is None and state.after_storage_id == 10


def test_first_drifted_day_opens_an_event_and_requests_at_once_without_wait():
    state = advance(TriggerState(), _verdicts([False, False, True, True]), cooldown_days=7, wait_days=0)
    assert state.event_start == (D0 + timedelta(days=2)).isoformat()
    assert state.pending_as_of == state.event_start
    assert retrain_run_key(state.event_start) == f"drift-retrain:{D0 + timedelta(days=2)}"
    assert state.notes == [f"drift event opened on {D0 + timedelta(days=2)} by feature_drift_report"]


def test_wait_defers_the_request_until_the_event_is_old_enough():
    state = advance(TriggerState(), _verdicts([True] * 3), cooldown_days=7, wait_days=5)
    assert state.event_start == D0.isoformat() and state.pending_as_of is None
    state = advance(state, _verdicts([True] * 4, start=D0 + timedelta(days=3), first_id=4), 7, 5)
    assert state.pending_as_of == (D0 + timedelta(days=5)).isoformat()


def _request(state: TriggerState) -> str:
    """What the sensor does when it emits the pending request."""
    key = retrain_run_key(state.event_start)
    state.last_request_day, state.event_start, state.pending_as_of = state.pending_as_of, None, None
    return key


def test_persisting_drift_within_the_cooldown_opens_no_second_event():
    state = advance(TriggerState(), _verdicts([True]), cooldown_days=7, wait_days=0)
    keys = [_request(state)]
    for i in range(1, 7):  # drift keeps being reported for six more days
        state = advance(state, [Verdict(1 + i, "feature_drift_report", D0 + timedelta(days=i), True)], 7, 0)
        assert state.pending_as_of is None
    state = advance(state, [Verdict(100, "model_performance", D0 + timedelta(days=7), True)], 7, 0)
    keys.append(_request(state))
    assert keys == [f"drift-retrain:{D0}", f"drift-retrain:{D0 + timedelta(days=7)}"]


def test_replaying_the_same_events_gives_the_same_run_key():
    """A daemon that crashed before saving its cursor replays from the old cursor: same key, deduplicated."""
    cursor = TriggerState().to_cursor()
    first = advance(TriggerState.from_cursor(cursor), _verdicts([False, True]), 7, 0)
    replay = advance(TriggerState.from_cursor(cursor), _verdicts([False, True]), 7, 0)
    assert first.event_start == replay.event_start and first.pending_as_of == replay.pending_as_of


def test_several_assets_on_the_same_day_are_one_event():
    verdicts = _verdicts([True], asset="feature_drift_report") + _verdicts([True], first_id=2, asset="model_performance")
    state = advance(TriggerState(), verdicts, 7, 0)
    assert state.event_start == D0.isoformat() and len(state.notes) == 1


def test_cursor_round_trips():
    state = TriggerState(after_storage_id=42, event_start="2026-03-10", pending_as_of=None, last_request_day="x")
    assert TriggerState.from_cursor(state.to_cursor()) == TriggerState(42, "2026-03-10", None, "x")


def test_verdicts_are_read_from_the_event_log_in_order():
    """The sensor sees what Dagster stored: partitioned materializations with wrapped metadata values."""
    partitions = dg.DailyPartitionsDefinition(start_date="2026-03-01")

    @dg.asset(name="feature_drift_report", partitions_def=partitions)
    def report(context: dg.AssetExecutionContext):
        return dg.MaterializeResult(metadata={"drift_detected": context.partition_key == "2026-03-11"})

    with dg.instance_for_test() as instance:
        for day in ("2026-03-10", "2026-03-11"):
            assert dg.materialize([report], instance=instance, partition_key=day).success
        verdicts = new_verdicts(instance, 0)
        assert [(v.day.isoformat(), v.drift) for v in verdicts] == [("2026-03-10", False), ("2026-03-11", True)]
        assert new_verdicts(instance, verdicts[-1].storage_id) == []


def test_landing_plan_leaves_out_days_before_the_first_partition(tmp_path):
    """A file for a day the loaded Definitions have no partition for is reported, never requested (a run for an
    unknown partition key would fail the tick)."""
    from datetime import date

    from platform_assets.automation.landing import plan
    from platform_assets.lib.landing import partition_path

    for day in (date(2026, 3, 1), date(2026, 3, 2)):
        path = partition_path(tmp_path, "transactions", day)
        path.parent.mkdir(parents=True)
        path.write_text("transaction_id\n")
    result = plan({}, tmp_path, lookback_days=35, first_partition=date(2026, 3, 2))
    assert list(result.days) == [date(2026, 3, 2)]
    assert result.before_partitions == ["transactions/date=2026-03-01/transactions.csv"]
    assert plan({}, tmp_path, lookback_days=35).before_partitions == []
