"""The closed loop on the real stack, tick by tick: drift -> one retrain -> promotion gate -> better champion.

A 60-day world changes on day 40 (`fraud_pattern_shift`, `amount_inflation`, or `none`). The days before the
first tick are loaded at once (ingestion, dbt, Feast) and the first champion is trained on them. Then, for each
simulated day D, the platform runs as its daemons would on the morning of D+1: the ingestion schedule loads day
D, its success triggers `refresh_after_ingestion` (the day's dbt partition, the rest of the warehouse, Feast),
Declarative Automation decides what to materialize (the newest day's predictions and monitoring), those runs
execute, and the retrain sensor ticks; a retrain request runs unless a run with its run key already exists (the
daemon's rule). After the last tick the remaining days are loaded, only to measure the models on them.

The daily ingestion and refresh cost about 45 s per simulated day (two dbt builds), so only the first
`DAILY_TICKS` morning(s) of the `fraud_pattern_shift` world run them (the schedule's run for the day, the refresh
its success asks for, then the automation on the new day); then the remaining days are loaded at once (a
backfill, as from the UI) and, as in the `amount_inflation` and `none` worlds, which load all 60
days up front, every later step is cut at its simulated day instead (daily partitions read days up to their own,
chargebacks count once reported, a retrain is cut `as_of` the day that asked for it). Everything after ingestion
is the same in all three.

The trap of label maturity: a real issuer waits 21 days for chargebacks, so with a shift on day 40 of 60 no
drifted label would mature inside the scenario. This world has a faster chargeback process (1-3 days, a
simulator knob), and the loop is configured for it through the same environment variables production uses
(label maturity 3 days, holdout 3 days, retrain wait 10 days so the drifted days' labels exist when the retrain
runs). "Post-shift" quality is measured with the simulator's own truth (an oracle: every fraud, reported or not)
on the days after the retrain's cut, which neither model has seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest
from platform_env import local_settings
from sklearn.metrics import average_precision_score

from platform_assets.automation.sensors import retrain_on_drift
from platform_assets.definitions import build_definitions
from platform_assets.lib import names
from platform_assets.lib import training_sets as td
from platform_assets.lib.run_config import retrain_run_config
from platform_assets.settings import PROJECT_ROOT
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.generator import build_world, simulate_day

pytestmark = pytest.mark.e2e
# Each world costs about two minutes on 2 cores; `make test` runs all three.
ARTIFACTS = PROJECT_ROOT / "test-artifacts"

START = date(2026, 3, 1)
DAYS = 60
SHIFT_DAY = 40
FIRST_TICK = SHIFT_DAY - 2
LAST_TICK = 54
DAILY_TICKS = 1  # mornings of the fraud_pattern_shift world that ingest their day as the schedule would
LOOP_ENV = {
    "PLATFORM_LABEL_MATURITY_DAYS": "3",
    "PLATFORM_WARMUP_DAYS": "7",
    "PLATFORM_HOLDOUT_DAYS": "3",
    "PLATFORM_DRIFT_WINDOW_DAYS": "3",
    "PLATFORM_DRIFT_MIN_ROWS": "500",
    "PLATFORM_RETRAIN_WAIT_DAYS": "10",
    "PLATFORM_RETRAIN_COOLDOWN_DAYS": "14",
    "PLATFORM_RETRAIN_HALF_LIFE_DAYS": "5",
}
DRIFT_ASSETS = ["feature_drift_report", "prediction_drift_report", "model_performance"]


def day(i: int) -> date:
    return START + timedelta(days=i)


@dataclass
class LoopRun:
    scenario: str
    config: SimulationConfig
    instance: dg.DagsterInstance
    defs: dg.Definitions
    settings: object
    verdicts: dict[str, dict[str, dict]] = field(default_factory=dict)  # day -> asset -> metadata
    retrain_runs: list[dg.DagsterRun] = field(default_factory=list)
    skipped_duplicate_requests: int = 0
    seconds: float = 0.0
    daily_ticks: int = 0  # the first ticks that ingest their day (schedule, refresh sensor); then all days are loaded

    def drift_days(self) -> list[date]:
        return sorted(date.fromisoformat(d) for d, by_asset in self.verdicts.items()
                      if any(m.get("drift") for m in by_asset.values()))


def _meta(event) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def _verdict(instance, key: dg.AssetKey, d: date, event) -> dict:
    """The report's figures of day d, and its verdict: whether its retrain check failed for that partition."""
    from dagster._core.event_api import PartitionKeyFilter

    check = next(k for k in names.RETRAIN_CHECKS if k.asset_key == key)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [check], partition_filter=PartitionKeyFilter(key=d.isoformat()))[check]
    return {**_meta(event), "drift": record.status.value == "FAILED"}


# What the loop runs on: the predictions and the three verdicts. The automation also asks for the day's
# data_quality_summary, an Evidently report that bears on no verdict (the clean world's tests cover it); the
# daemon would launch it, this simulation leaves it out: it was a third of each world's time.
LOOP_ASSETS = {names.DAILY_PREDICTIONS, *names.VERDICT_ASSETS}


def _launch(run: LoopRun, result) -> None:
    """One run per requested partition, holding every loop asset requested for it (what the daemon launches)."""
    by_partition: dict[str | None, list[dg.AssetKey]] = {}
    for key in LOOP_ASSETS:
        for partition in result.get_requested_partitions(key):
            by_partition.setdefault(partition, []).append(key)
    assets = list(run.defs.assets)
    graph = run.defs.resolve_asset_graph()
    scoring = dg.AssetSelection.groups("scoring").resolve(graph)
    for partition, keys in sorted(by_partition.items(), key=lambda kv: str(kv[0])):
        # Scoring (single-run backfill policy) and monitoring (one partition per run) go in separate runs.
        for part in ([k for k in keys if k in scoring], [k for k in keys if k not in scoring]):
            if not part:
                continue
            materialized = dg.materialize(
                assets, selection=dg.AssetSelection.assets(*part), partition_key=partition,
                instance=run.instance, resources=run.defs.resources,
            )
            assert materialized.success


def _ingest(run: LoopRun, d: date) -> None:
    """01:00 after day d: the ingestion schedule's run for day d, then the run `refresh_after_ingestion` asks for
    when it sees that run succeed."""
    schedule = run.defs.get_schedule_def("daily_ingestion_schedule")
    at = datetime(d.year, d.month, d.day, 1, tzinfo=UTC) + timedelta(days=1)
    requests = schedule.evaluate_tick(
        dg.build_schedule_context(instance=run.instance, scheduled_execution_time=at)
    ).run_requests
    assert [r.partition_key for r in requests] == [d.isoformat()]
    ingestion = run.defs.resolve_job_def("daily_ingestion").execute_in_process(
        instance=run.instance, partition_key=requests[0].partition_key, tags=requests[0].tags
    )
    assert ingestion.success
    success = run.instance.get_records_for_run(ingestion.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    refresh_after_ingestion = run.defs.get_sensor_def("refresh_after_ingestion")
    refresh = refresh_after_ingestion(dg.build_run_status_sensor_context(
        sensor_name="refresh_after_ingestion", dagster_event=success[0].event_log_entry.dagster_event,
        dagster_instance=run.instance, dagster_run=run.instance.get_run_by_id(ingestion.run_id),
    ))
    assert refresh.partition_key == d.isoformat()
    assert run.defs.resolve_job_def("refresh_warehouse_and_features").execute_in_process(
        instance=run.instance, partition_key=refresh.partition_key, tags=refresh.tags
    ).success


def _partitioned_keys(defs: dg.Definitions) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return [key for key in graph.materializable_asset_keys if graph.get(key).partitions_def is not None]


def _tick(run: LoopRun, d: date, automation_cursor, sensor_cursor):
    """The morning after day d: ingestion and refresh, Declarative Automation, then the retrain sensor, as the
    daemons would run them."""
    if (d - day(FIRST_TICK)).days < run.daily_ticks:
        _ingest(run, d)
    else:
        # This world loaded all its days at once, so at an earlier simulated morning some materialized partitions
        # lie in the future. Dagster's partition-status cache drops partitions that do not exist yet when it is
        # built and never adds them back, so later days would look missing forever. A deployment never
        # materializes a day before it exists; rebuilding the cache each morning gives the automation that view.
        run.instance.wipe_asset_cached_status(_partitioned_keys(run.defs))
    morning = datetime(d.year, d.month, d.day, 2, tzinfo=UTC) + timedelta(days=1)
    result = dg.evaluate_automation_conditions(
        defs=run.defs, instance=run.instance, cursor=automation_cursor, evaluation_time=morning
    )
    _launch(run, result)
    for key in DRIFT_ASSETS:
        event = run.instance.get_latest_materialization_event(dg.AssetKey(key))
        if event is not None and event.asset_materialization.partition == d.isoformat():
            run.verdicts.setdefault(d.isoformat(), {})[key] = _verdict(run.instance, dg.AssetKey(key), d, event)
    context = dg.build_sensor_context(
        instance=run.instance, cursor=sensor_cursor, definitions=run.defs, resources=run.defs.resources
    )
    ticked = retrain_on_drift(context)
    for event in ticked.asset_events:  # what the daemon does with them: fraud_model's due check
        run.instance.report_runless_asset_event(event)
    for out in ticked.run_requests or []:
        existing = run.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": out.run_key}))
        if existing:
            run.skipped_duplicate_requests += 1
        else:
            job = run.defs.resolve_job_def("retrain_fraud_model")
            retrain = job.execute_in_process(
                run_config=out.run_config, instance=run.instance,
                tags={**out.tags, "dagster/run_key": out.run_key, "dagster/sensor_name": "retrain_on_drift"},
            )
            assert retrain.success
            run.retrain_runs.append(run.instance.get_run_by_id(retrain.run_id))
    return result.cursor, context.cursor


def _loop(tmp_path_factory, scenario: str, daily_ticks: int) -> LoopRun:
    import time

    started = time.perf_counter()
    data_dir = tmp_path_factory.mktemp(f"loop-{scenario}")
    with pytest.MonkeyPatch.context() as mp:
        settings = local_settings(mp, data_dir, **LOOP_ENV)
    config = SimulationConfig(
        start_date=START, days=DAYS, n_customers=400, n_merchants=80, transactions_per_day=500, fraud_rate=0.02,
        scenario=scenario, scenario_start_day=SHIFT_DAY, max_label_delay_days=3, malformed_rate=0.0,
    )
    write_landing_zone(config, settings.landing_dir)
    print(f"[{scenario}] simulated {time.perf_counter() - started:.1f}s")
    defs = build_definitions(settings)
    (data_dir / "dagster").mkdir()
    instance = dg.instance_for_test(temp_dir=str(data_dir / "dagster")).__enter__()
    run = LoopRun(scenario, config, instance, defs, settings, daily_ticks=daily_ticks)
    _load_days(run, START, day(FIRST_TICK - 1) if daily_ticks else day(DAYS - 1))
    # The first champion, trained the evening before the first tick, exactly as a retrain would be.
    policy = defs.resources["policy"]
    as_of = f"{day(FIRST_TICK - 1).isoformat()}T23:59:59.999999+00:00"
    bootstrap = defs.resolve_job_def("retrain_fraud_model").execute_in_process(
        run_config=retrain_run_config(as_of, policy.retrain_half_life_days), instance=instance
    )
    assert bootstrap.success
    print(f"[{scenario}] base loaded and first champion trained {time.perf_counter() - started:.1f}s")
    # The automation's first evaluation only records the state it starts from (nothing is requested on the tick
    # a condition is deployed): that is the evening the first champion went live.
    automation_cursor = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=datetime.combine(day(FIRST_TICK), datetime.min.time(), UTC)
    ).cursor
    sensor_cursor = None
    for i in range(FIRST_TICK, LAST_TICK + 1):
        if daily_ticks and i == FIRST_TICK + daily_ticks:
            _load_days(run, day(i), day(DAYS - 1))
        automation_cursor, sensor_cursor = _tick(run, day(i), automation_cursor, sensor_cursor)
        print(f"[{scenario}] tick {day(i)} done {time.perf_counter() - started:.1f}s "
              f"{ {k: m.get('verdict') for k, m in run.verdicts.get(day(i).isoformat(), {}).items()} }")
    run.seconds = time.perf_counter() - started
    return run


def _load_days(run: LoopRun, first: date, last: date) -> None:
    """Ingest first..last in one run, then warehouse and features (a backfill, as from the UI)."""
    assets, graph = list(run.defs.assets), run.defs.resolve_asset_graph()
    window = names.partition_range_tags(first.isoformat(), last.isoformat())
    assert dg.materialize(assets, selection=dg.AssetSelection.assets(*names.RAW),
                          instance=run.instance, resources=run.defs.resources, tags=window).success
    later = dg.AssetSelection.groups("training", "scoring", "serving", "monitoring") | dg.AssetSelection.assets(
        "training_set")
    rest = [k for k in graph.materializable_asset_keys
            if k not in later.resolve(graph) and k not in names.RAW]
    assert dg.materialize(assets, selection=dg.AssetSelection.assets(*rest), instance=run.instance,
                          resources=run.defs.resources, tags=window).success


def _oracle_frame(run: LoopRun, first: date, last: date) -> pd.DataFrame:
    """Every transaction of first..last with its true label (the simulator's, not the chargebacks) and features."""
    world = build_world(run.config)
    truth = []
    for i in range((first - START).days, (last - START).days + 1):
        batch = simulate_day(run.config, world, i)
        truth.append(pd.DataFrame({"transaction_id": batch.transactions.column("transaction_id").to_pylist(),
                                   "true_fraud": batch.is_fraud.astype(int)}))
    truth = pd.concat(truth, ignore_index=True)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    rows = td.transactions_between(run.settings.exports_dir, start, end)
    resources = run.defs.resources
    champion = resources["mlflow_tracking"].champion_version()
    manifest = td.TrainingSetManifest.read(run.settings.data_dir / "training_sets"
                                           / f"{champion.tags['training_set_id']}.json")
    frame = td.join_features(resources["feast"].store(), rows, manifest.feature_service)
    return frame.merge(truth, on="transaction_id", how="inner")


def _pr_auc(run: LoopRun, version: str, frame: pd.DataFrame) -> float:
    mlflow_tracking = run.defs.resources["mlflow_tracking"]
    model = mlflow_tracking.load_version(version)
    features = list(model.get_booster().feature_names)
    return float(average_precision_score(frame["true_fraud"], model.predict_proba(td.model_inputs(frame, features))[:, 1]))


def _report(run: LoopRun, figures: dict) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"closed-loop-{run.scenario}.json").write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps(figures, indent=2, default=str))


def _summary(run: LoopRun) -> dict:
    shift = day(SHIFT_DAY)
    drift_days = run.drift_days()
    return {
        "scenario": run.scenario,
        "shift_day": shift,
        "ticks": f"{day(FIRST_TICK)} .. {day(LAST_TICK)}",
        "first_drift_day": drift_days[0] if drift_days else None,
        "detection_delay_days": (drift_days[0] - shift).days if drift_days else None,
        "drift_days": [d.isoformat() for d in drift_days],
        "first_drift_by": sorted(k for k, m in run.verdicts.get(drift_days[0].isoformat(), {}).items()
                                 if m.get("drift")) if drift_days else [],
        "retrain_runs": len(run.retrain_runs),
        "retrain_run_keys": [r.tags["dagster/run_key"] for r in run.retrain_runs],
        "duplicate_requests_refused": run.skipped_duplicate_requests,
        "seconds": round(run.seconds, 1),
        "feature_drift_by_day": {
            d: {"share": round(m["feature_drift_report"].get("drift_share", 0.0), 3),
                "drifted": m["feature_drift_report"].get("drifted_columns", [])}
            for d, m in sorted(run.verdicts.items()) if "feature_drift_report" in m
        },
    }


@dataclass
class World:
    run: LoopRun
    summary: dict
    versions: list
    champion: object
    unseen: pd.DataFrame | None = None


def _world(tmp_path_factory, scenario: str) -> World:
    """A world run tick by tick, measured once; its tests read the figures (test-artifacts/closed-loop-*.json)."""
    run = _loop(tmp_path_factory, scenario, daily_ticks=DAILY_TICKS if scenario == "fraud_pattern_shift" else 0)
    summary = _summary(run)
    mlflow_tracking = run.defs.resources["mlflow_tracking"]
    versions = sorted(mlflow_tracking.client().search_model_versions(f"name='{run.settings.model_name}'"),
                      key=lambda v: int(v.version))
    champion = mlflow_tracking.champion_version()
    summary["model_versions"] = {v.version: {k: v.tags.get(k) for k in ("promotion_decision", "promotion_reason")}
                                 for v in versions}
    world = World(run, summary, versions, champion)
    if run.retrain_runs:
        as_of = date.fromisoformat(run.retrain_runs[0].tags["drift_as_of"])
        world.unseen = _oracle_frame(run, as_of + timedelta(days=1), day(DAYS - 1))
        summary["post_shift_eval"] = {"days": f"{as_of + timedelta(days=1)} .. {day(DAYS - 1)}",
                                      "rows": len(world.unseen), "frauds": int(world.unseen["true_fraud"].sum())}
        summary["pr_auc_old_champion"] = _pr_auc(run, versions[0].version, world.unseen)
        summary["pr_auc_retrained"] = _pr_auc(run, versions[-1].version, world.unseen)
        summary["pr_auc_champion_after"] = _pr_auc(run, str(champion.version), world.unseen)
        summary["champion_after"] = champion.version
    _report(run, summary)
    return world


# Each world is its own xdist group of three tests: the worlds run in parallel with the rest of `make test`, and
# a worker busy building one (three tests pending) is not handed another.
@pytest.fixture(scope="module", params=[
    pytest.param(world, marks=pytest.mark.xdist_group(f"loop-{world}")) for world in ("fraud_pattern_shift", "amount_inflation")
])
def shifted_world(request, tmp_path_factory) -> World:
    return _world(tmp_path_factory, request.param)


@pytest.fixture(scope="module")
def quiet_world(tmp_path_factory) -> World:
    return _world(tmp_path_factory, "none")


def test_the_shift_is_caught_within_five_days_and_not_before(shifted_world):
    summary, run = shifted_world.summary, shifted_world.run
    assert summary["detection_delay_days"] is not None and 0 <= summary["detection_delay_days"] <= 5, summary
    assert not [d for d in run.drift_days() if d < day(SHIFT_DAY)], "drift flagged before the shift"
    assert len(summary["drift_days"]) > 3


def test_one_drift_event_asks_for_exactly_one_retrain(shifted_world):
    # Drift went on being reported every day after the event (see drift_days): still one retrain.
    summary, run = shifted_world.summary, shifted_world.run
    assert run.retrain_runs, summary
    assert summary["retrain_runs"] == 1 and run.skipped_duplicate_requests == 0, summary
    assert summary["retrain_run_keys"] == [f"drift-retrain:{summary['first_drift_day']}"]


def test_the_champion_after_the_loop_is_right_for_the_new_world(shifted_world):
    summary, versions, champion = shifted_world.summary, shifted_world.versions, shifted_world.champion
    assert shifted_world.unseen is not None, summary
    if shifted_world.run.scenario == "fraud_pattern_shift":
        # The old champion learnt night-time, online, big-ticket fraud; the new pattern defeats it.
        assert str(champion.version) == str(versions[-1].version) == "2", summary["model_versions"]
        assert summary["pr_auc_retrained"] > summary["pr_auc_old_champion"] + 0.01, summary
    else:
        # Inflated amounts shift every feature's distribution but not what separates fraud (night, online,
        # category, amount relative to the customer): the old champion keeps working. Whatever the gate decided,
        # the champion after the loop is not worse on the drifted world.
        assert summary["pr_auc_champion_after"] >= summary["pr_auc_old_champion"] - 0.02, summary


@pytest.mark.xdist_group("loop-none")
def test_a_quiet_world_flags_no_drift(quiet_world):
    assert quiet_world.run.drift_days() == [], quiet_world.summary


@pytest.mark.xdist_group("loop-none")
def test_a_quiet_world_never_retrains(quiet_world):
    assert quiet_world.run.retrain_runs == [] and quiet_world.run.skipped_duplicate_requests == 0


@pytest.mark.xdist_group("loop-none")
def test_every_day_of_a_quiet_world_is_monitored(quiet_world):
    assert len(quiet_world.run.verdicts) == LAST_TICK - FIRST_TICK + 1
