"""The retrain trigger: a drift event requests exactly one retrain, behind a cooldown and the upstream checks.

The monitoring assets (feature drift, prediction drift, label-delayed performance) write a verdict per daily
partition (`drift_detected`). This sensor reads their new materializations in event-log order and keeps a small
state in its cursor:

- the first drifted day outside the cooldown opens a **drift event**;
- once the event is `retrain_wait_days` old (0: at once; longer lets the drifted days' labels mature, so the
  retrain can learn the new world), the sensor requests `retrain_fraud_model` with run key
  `drift-retrain:<first drifted day>`, cut as of the day that triggered it;
- drift in the `retrain_cooldown_days` after a request opens no new event (the retrain's own training set still
  lags the drift by the label-maturity window, so the reports keep saying drift for a while).

Dagster creates at most one run per run key, ever: a daemon killed between creating the run and saving the cursor
replays the same events on restart, asks with the same key, and no second run appears. The request waits while
any blocking check upstream of `training_set` (the dbt tests of the marts) last failed: bad data never trains.
"""

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

import dagster as dg

from platform_assets.automation.jobs import retrain_job
from platform_assets.lib import names
from platform_assets.lib.run_config import retrain_run_config
from platform_assets.resources import FeastResource, LoopPolicy, Notifier

RUN_KEY_PREFIX = "drift-retrain:"


@dataclass(frozen=True)
class Verdict:
    storage_id: int
    asset: str
    day: date
    drift: bool


@dataclass
class TriggerState:
    """The sensor's cursor: how far it read, the open drift event, the pending request and the last request."""

    after_storage_id: int = 0
    event_start: str | None = None
    pending_as_of: str | None = None
    last_request_day: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_cursor(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "notes"})

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "TriggerState":
        return cls(**json.loads(cursor)) if cursor else cls()


def retrain_run_key(event_start: str) -> str:
    return f"{RUN_KEY_PREFIX}{event_start}"


def advance(state: TriggerState, verdicts: list[Verdict], cooldown_days: int, wait_days: int) -> TriggerState:
    """Fold new verdicts (in event-log order) into the state; a due request is left in `pending_as_of`."""
    state.notes = []
    for v in sorted(verdicts, key=lambda v: v.storage_id):
        state.after_storage_id = max(state.after_storage_id, v.storage_id)
        if not v.drift:
            continue
        if state.event_start is None:
            last = date.fromisoformat(state.last_request_day) if state.last_request_day else None
            if last is not None and v.day < last + timedelta(days=cooldown_days):
                continue
            state.event_start = v.day.isoformat()
            state.notes.append(f"drift event opened on {v.day} by {v.asset}")
        if state.pending_as_of is None and v.day >= date.fromisoformat(state.event_start) + timedelta(days=wait_days):
            state.pending_as_of = v.day.isoformat()
    return state


def _verdict_of(record) -> Verdict | None:
    entry = record.event_log_entry
    materialization = entry.asset_materialization
    if materialization is None or materialization.partition is None:
        return None
    detected = materialization.metadata.get(names.DRIFT_DETECTED)
    detected = getattr(detected, "value", detected)
    return Verdict(record.storage_id, materialization.asset_key.to_user_string(),
                   date.fromisoformat(materialization.partition), bool(detected))


def new_verdicts(instance: dg.DagsterInstance, after_storage_id: int) -> list[Verdict]:
    verdicts = []
    for key in names.VERDICT_ASSETS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after_storage_id), limit=1_000, ascending=True
        ).records
        verdicts += [v for v in map(_verdict_of, records) if v is not None]
    return verdicts


def failed_blocking_checks(context: dg.SensorEvaluationContext) -> list[str]:
    """Blocking asset checks upstream of the training set whose latest execution failed."""
    graph = context.repository_def.asset_graph
    upstream = dg.AssetSelection.assets(names.TRAINING_SET).upstream().resolve(graph)
    keys = [k for k in graph.asset_check_keys if k.asset_key in upstream and graph.get_check_spec(k).blocking]
    if not keys:
        return []
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return sorted(k.to_user_string() for k, record in latest.items() if record.status.value == "FAILED")


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrain the fraud model once per drift event found by the monitoring assets (cooldown, checks).",
)
def retrain_on_drift(context: dg.SensorEvaluationContext, policy: LoopPolicy, notifier: Notifier):
    state = TriggerState.from_cursor(context.cursor)
    state = advance(state, new_verdicts(context.instance, state.after_storage_id),
                    policy.retrain_cooldown_days, policy.retrain_wait_days)
    for note in state.notes:
        notifier.send("drift_event", note, {"event_start": state.event_start}, log=context.log)
    if state.pending_as_of is None:
        context.update_cursor(state.to_cursor())
        return dg.SkipReason("no drift event due for a retrain"
                             + (f" (event of {state.event_start} open)" if state.event_start else ""))
    failed = failed_blocking_checks(context)
    if failed:
        context.update_cursor(state.to_cursor())  # the request stays pending until the checks pass
        return dg.SkipReason(f"retrain for the drift event of {state.event_start} held: blocking checks failed "
                             f"upstream: {failed}")
    event_start, as_of_day = state.event_start, state.pending_as_of
    as_of = datetime.combine(date.fromisoformat(as_of_day), time.max).isoformat() + "+00:00"
    run_key = retrain_run_key(event_start)
    notifier.send("retrain_requested", f"retrain {run_key} as of {as_of_day}",
                  {"event_start": event_start, "as_of": as_of_day}, log=context.log, event_id=run_key)
    state.last_request_day, state.event_start, state.pending_as_of = as_of_day, None, None
    context.update_cursor(state.to_cursor())
    return dg.RunRequest(
        run_key=run_key,
        run_config=retrain_run_config(as_of, policy.retrain_half_life_days),
        tags={"trigger": "drift", "drift_event_start": event_start, "drift_as_of": as_of_day},
    )


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Send every failed run to the log and the webhook.",
)
def notify_run_failure(context: dg.RunFailureSensorContext, notifier: Notifier):
    run = context.dagster_run
    notifier.send(
        "run_failure",
        f"run {run.run_id[:8]} of {run.job_name} failed: {context.failure_event.message}",
        {"run_id": run.run_id, "job": run.job_name, "tags": dict(run.tags)},
        log=context.log,
    )


ONLINE_STORE_RUN_KEY_PREFIX = "online-store-rebuild:"
ACTIVE_RUN_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                       dg.DagsterRunStatus.STARTED]


def online_store_run_key(last_storage_id: int) -> str:
    """One incident = the store found lost after a given materialization: the rebuild makes a new one, so a
    later loss is a new incident with a new key, and every tick of the same incident asks with the same key."""
    return f"{ONLINE_STORE_RUN_KEY_PREFIX}{last_storage_id}"


@dg.sensor(
    asset_selection=dg.AssetSelection.assets(names.FEAST_ONLINE_STORE),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-materialize feast_online_store (a rebuild) when the online store is found missing, corrupt or "
    "emptied between materializations.",
)
def online_store_watch(context: dg.SensorEvaluationContext, feast: FeastResource, notifier: Notifier):
    """A sensor, not a scheduled run of the asset check: the check counts every entity key against the offline
    source (a full pass over the store and the parquet), too much to repeat every minute, while a lost store
    shows in a few bytes (`FeastResource.online_store_problem`: the file exists, has an SQLite header, is not
    truncated, opens and holds rows; Redis answers and holds a key of the project). Found lost, the sensor asks
    for `feast_online_store`, whose own diagnosis moves a corrupt file aside and rebuilds from the offline
    data, and whose check then compares the counts. Nothing is asked before the first materialization (an empty
    store is then expected) nor while a run of the asset is under way (a rebuild moves the file aside first)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=names.FEAST_ONLINE_STORE), limit=1).records
    if not records:
        return dg.SkipReason("feast_online_store was never materialized: nothing to watch yet")
    active = context.instance.get_run_records(dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES), limit=100)
    if any(names.FEAST_ONLINE_STORE in (r.dagster_run.asset_selection or ()) for r in active):
        return dg.SkipReason("a run of feast_online_store is under way")
    problem = feast.online_store_problem()
    if problem is None:
        return dg.SkipReason("the online store is whole")
    run_key = online_store_run_key(records[0].storage_id)
    if context.cursor != run_key:
        notifier.send("online_store_lost", f"online store {problem}: requesting a rebuild",
                      {"status": problem.status, "reason": problem.reason}, log=context.log, event_id=run_key)
        context.update_cursor(run_key)
    return dg.RunRequest(run_key=run_key, asset_selection=[names.FEAST_ONLINE_STORE],
                         tags={"trigger": "online_store_lost", "online_store_problem": problem.status})


monitoring_automation = dg.AutomationConditionSensorDefinition(
    name="monitoring_automation",
    target=dg.AssetSelection.groups(names.SCORING, names.MONITORING) | dg.AssetSelection.assets(names.SERVED_PREDICTIONS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Declarative Automation of scoring and monitoring: the newest day re-materializes when its inputs land.",
)
