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
from platform_assets.resources import LoopPolicy, Notifier

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


monitoring_automation = dg.AutomationConditionSensorDefinition(
    name="monitoring_automation",
    target=dg.AssetSelection.groups(names.SCORING, names.MONITORING) | dg.AssetSelection.assets(names.SERVED_PREDICTIONS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Declarative Automation of scoring and monitoring: the newest day re-materializes when its inputs land.",
)
