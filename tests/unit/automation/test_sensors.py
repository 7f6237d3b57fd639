"""The retrain trigger's state machine (one retrain per drift event, a cooldown, an optional label wait), and the
sensor on a real Dagster instance: it reads the monitoring checks' executions and keeps fraud_model's due check."""

import json
from datetime import date, timedelta

import dagster as dg
import pytest

from platform_assets.automation.checks import fraud_model_not_due_for_retrain
from platform_assets.automation.sensors import (
    TriggerState,
    Verdict,
    advance,
    new_verdicts,
    retrain_on_drift,
    retrain_run_key,
)
from platform_assets.lib import names
from platform_assets.monitoring.checks import check_spec, verdict_check
from platform_assets.resources import LoopPolicy, Notifier

D0 = date(2026, 3, 10)


def _verdicts(flags: list[bool], start: date = D0, first_id: int = 1, asset: str = "feature_drift_report"):
    return [Verdict(first_id + i, asset, start + timedelta(days=i), f) for i, f in enumerate(flags)]


def test_no_drift_requests_nothing():
    state = advance(TriggerState(), _verdicts([False] * 10), cooldown_days=7, wait_days=0)
    assert state.event_start is None and state.pending_as_of is None and state.after_check_id == 10


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
    state = TriggerState(after_check_id=42, event_start="2026-03-10", pending_as_of=None, last_request_day="x",
                         event_cause={"check": "feature_drift_report:no_feature_drift", "figures": {"share": 0.3}})
    assert TriggerState.from_cursor(state.to_cursor()) == state


def test_a_cursor_of_the_metadata_reading_sensor_keeps_its_cooldown():
    """Before the checks, the cursor counted event-log ids (`after_storage_id`); those mean nothing to the check
    records, so they are dropped and the check history is read from its start, behind the same cooldown."""
    old = json.dumps({"after_storage_id": 9_000, "event_start": None, "pending_as_of": None,
                      "last_request_day": "2026-03-10"})
    state = TriggerState.from_cursor(old)
    assert state.after_check_id == 0 and state.last_request_day == "2026-03-10"


PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-03-01")
DRIFT_DAYS = {"2026-03-11", "2026-03-12"}


@dg.asset(key=names.FEATURE_DRIFT_REPORT, partitions_def=PARTITIONS,
          check_specs=[check_spec(names.FEATURE_DRIFT_REPORT, PARTITIONS)])
def drift_report(context: dg.AssetExecutionContext):
    """A stand-in report with the platform's own check spec and result helper: drift on DRIFT_DAYS."""
    drifted = context.partition_key in DRIFT_DAYS
    share = 0.35 if drifted else 0.05
    return dg.MaterializeResult(check_results=[verdict_check(
        names.FEATURE_DRIFT_REPORT, True, drifted, "drift" if drifted else "no_drift", f"share {share}",
        {"drift_share": share, "drifted_columns": ["amount"] if drifted else []})])


@dg.asset(key=names.TRAINING_SET)
def training_set():
    return None


@dg.asset(key=names.FRAUD_MODEL, deps=[training_set])
def fraud_model():
    return None


def _materialize(instance, *days: str) -> None:
    for day in days:
        assert dg.materialize([drift_report], instance=instance, partition_key=day).success


def test_verdicts_are_read_from_the_check_records_in_order():
    """The sensor sees what Dagster stored: one check execution per partition, failed on the drifted days."""
    with dg.instance_for_test() as instance:
        _materialize(instance, "2026-03-10", "2026-03-11")
        verdicts, read_to = new_verdicts(instance, 0)
        assert [(v.day.isoformat(), v.drift, v.check) for v in verdicts] == [
            ("2026-03-10", False, names.FEATURE_DRIFT_CHECK), ("2026-03-11", True, names.FEATURE_DRIFT_CHECK)]
        assert verdicts[1].figures["drift_share"] == 0.35 and verdicts[1].figures["verdict"] == "drift"
        assert read_to == verdicts[-1].record_id
        assert new_verdicts(instance, read_to) == ([], read_to)


def _tick(instance, defs, cursor=None):
    """One evaluation of the real sensor; its check evaluations are reported the way the daemon reports them."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources)
    result = retrain_on_drift(context)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result, context.cursor


def _due(instance) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(names.FRAUD_MODEL, names.RETRAIN_DUE_CHECK)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


@pytest.fixture
def defs():
    return dg.Definitions(assets=[drift_report, training_set, fraud_model], sensors=[retrain_on_drift],
                          asset_checks=[fraud_model_not_due_for_retrain],
                          resources={"policy": LoopPolicy(retrain_cooldown_days=7), "notifier": Notifier()})


def test_passing_checks_request_nothing_and_the_model_is_not_due(defs):
    with dg.instance_for_test() as instance:
        assert dg.materialize([fraud_model], instance=instance).success
        _materialize(instance, "2026-03-09", "2026-03-10")
        result, _ = _tick(instance, defs)
        assert not result.run_requests and "no drift event" in result.skip_reason.skip_message
        due = _due(instance)
        assert due.passed and due.description.startswith("not due")


def test_a_failed_check_requests_one_retrain_and_makes_the_model_due_until_it_is_retrained(defs):
    with dg.instance_for_test() as instance:
        assert dg.materialize([fraud_model], instance=instance).success
        _materialize(instance, "2026-03-10", "2026-03-11")
        result, cursor = _tick(instance, defs)
        assert [r.run_key for r in result.run_requests] == ["drift-retrain:2026-03-11"]
        assert result.run_requests[0].tags["drift_as_of"] == "2026-03-11"
        # The model's page says why: the failed check, its partition and its figures.
        due = _due(instance)
        assert not due.passed and due.severity == dg.AssetCheckSeverity.WARN
        assert due.metadata["drift_check"].value == "feature_drift_report:no_feature_drift"
        assert due.metadata["drift_partition"].value == "2026-03-11"
        assert due.metadata["drift_figures"].value["drift_share"] == 0.35
        assert due.metadata["run_key"].value == "drift-retrain:2026-03-11"
        assert "no new fraud_model version yet" in due.description

        # More drift inside the cooldown: no second request, and the verdict is not reported again.
        _materialize(instance, "2026-03-12")
        result, cursor = _tick(instance, defs, cursor)
        assert not result.run_requests and not result.asset_events

        # The retrain lands (here: a new fraud_model materialization): the next tick clears the verdict.
        assert dg.materialize([fraud_model], instance=instance).success
        result, cursor = _tick(instance, defs, cursor)
        assert not result.run_requests
        due = _due(instance)
        assert due.passed and due.description.startswith("retrained")
        assert due.metadata["cooldown_until"].value == "2026-03-18"


def test_the_check_run_from_the_ui_reads_the_sensors_saved_state(defs):
    """Executed as an asset check (the UI's button, the retrain run), it reads the cursor the daemon saved."""
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        SensorInstigatorData,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    with dg.instance_for_test() as instance:
        assert dg.materialize([fraud_model], instance=instance).success
        _materialize(instance, "2026-03-11")
        _, cursor = _tick(instance, defs)
        # What the daemon stores after a tick (the check finds the sensor by name, whatever its code location).
        location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="platform_assets.definitions"))
        instance.add_instigator_state(InstigatorState(
            RemoteInstigatorOrigin(RemoteRepositoryOrigin(location, "__repository__"), "retrain_on_drift"),
            InstigatorType.SENSOR, InstigatorStatus.RUNNING, SensorInstigatorData(cursor=cursor)))
        checked = dg.materialize([fraud_model, fraud_model_not_due_for_retrain], instance=instance,
                                 resources=defs.resources, selection=dg.AssetSelection.checks_for_assets(fraud_model))
        [evaluation] = checked.get_asset_check_evaluations()
        assert not evaluation.passed and evaluation.metadata["drift_partition"].value == "2026-03-11"
        assert evaluation.metadata["run_key"].value == "drift-retrain:2026-03-11"


def test_a_check_still_running_holds_back_the_checks_planned_after_it():
    """A check-execution record is created when its run plans the check and filled in when it is evaluated: a
    slow report's record has the lower id, so reading past it would skip its verdict forever."""
    import threading

    release, started = threading.Event(), threading.Event()

    @dg.asset(key=names.FEATURE_DRIFT_REPORT, partitions_def=PARTITIONS,
              check_specs=[check_spec(names.FEATURE_DRIFT_REPORT, PARTITIONS)])
    def slow_report(context):
        started.set()
        assert release.wait(60)
        return dg.MaterializeResult(check_results=[verdict_check(
            names.FEATURE_DRIFT_REPORT, True, True, "drift", "slow", {"drift_share": 0.4})])

    with dg.instance_for_test() as instance:
        slow = threading.Thread(target=dg.materialize, args=([slow_report],),
                                kwargs={"instance": instance, "partition_key": "2026-03-11"})
        slow.start()
        assert started.wait(60)
        _materialize(instance, "2026-03-10")  # planned after the slow one, evaluated before it
        assert new_verdicts(instance, 0) == ([], 0)
        release.set()
        slow.join(60)
        verdicts, _ = new_verdicts(instance, 0)
        assert [(v.day.isoformat(), v.drift) for v in verdicts] == [("2026-03-11", True), ("2026-03-10", False)]


def test_an_event_opened_before_the_checks_still_makes_the_model_due():
    """A cursor saved by the metadata-reading sensor with an open event: due, without a recorded cause."""
    old = json.dumps({"after_storage_id": 50, "event_start": "2026-03-11", "pending_as_of": None,
                      "last_request_day": None})
    with dg.instance_for_test() as instance:
        _, cursor = _tick(instance, dg.Definitions(
            assets=[drift_report, training_set, fraud_model], sensors=[retrain_on_drift],
            resources={"policy": LoopPolicy(retrain_wait_days=5), "notifier": Notifier()}), old)
        due = _due(instance)
        assert not due.passed and due.metadata["drift_partition"].value == "2026-03-11"
        assert TriggerState.from_cursor(cursor).event_start == "2026-03-11"


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


def test_landing_plan_watches_only_the_sources_that_arrive_as_files(tmp_path):
    """Files left in the folder of a source read from its own system (the stream, the API) are not requested."""
    from datetime import date

    from platform_assets.automation.landing import plan
    from platform_assets.lib.landing import partition_path
    from platform_assets.settings import SourceModes

    day = date(2026, 3, 2)
    for source in ("transactions", "chargebacks"):
        path = partition_path(tmp_path, source, day)
        path.parent.mkdir(parents=True)
        path.write_text("id\n")
    sources = SourceModes(transactions="stream").file_sources
    assert sources == ("customers", "merchants", "chargebacks")
    result = plan({}, tmp_path, lookback_days=35, sources=sources)
    assert result.days == {day: [f"chargebacks/date={day}/chargebacks.csv:{result.state[f'chargebacks/date={day}/chargebacks.csv'][2]}"]}
    assert plan({}, tmp_path, lookback_days=35, sources=()).days == {}
