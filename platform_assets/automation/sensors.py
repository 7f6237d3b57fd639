"""The retrain trigger: a drift event requests exactly one retrain, behind a cooldown and the upstream checks.

The monitoring assets (feature drift, prediction drift, label-delayed performance) evaluate their verdict as an
asset check per daily partition (`names.RETRAIN_CHECKS`: `no_feature_drift`, `no_prediction_drift`,
`fraud_recall_above_floor`). This sensor reads their new check executions from the instance's check-execution
records, in the order the checks were planned, and keeps a small state in its cursor:

- the first failed check of a day outside the cooldown opens a **drift event**;
- once the event is `retrain_wait_days` old (0: at once; longer lets the drifted days' labels mature, so the
  retrain can learn the new world), the sensor requests `retrain_fraud_model` with run key
  `drift-retrain:<first drifted day>`, cut as of the day that triggered it;
- drift in the `retrain_cooldown_days` after a request opens no new event (the retrain's own training set still
  lags the drift by the label-maturity window, so the reports keep saying drift for a while).

Dagster creates at most one run per run key, ever: a daemon killed between creating the run and saving the cursor
replays the same events on restart, asks with the same key, and no second run appears. The request waits while
any blocking check upstream of `training_set` (the dbt tests of the marts) last failed: bad data never trains.

What the sensor decided is shown on the model's own page: it keeps the `fraud_model_not_due_for_retrain` check
of `fraud_model` (automation/checks.py), reported with the tick whenever its verdict changes.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time, timedelta

import dagster as dg

from platform_assets.automation.checks import due_for_retrain, latest_model
from platform_assets.automation.jobs import retrain_job
from platform_assets.lib import names
from platform_assets.lib.run_config import retrain_run_config
from platform_assets.resources import FeastResource, LoopPolicy, Notifier

RUN_KEY_PREFIX = "drift-retrain:"
SENSOR_NAME = "retrain_on_drift"
PAGE = 500


@dataclass(frozen=True)
class Verdict:
    """One evaluation of a retrain check on one day: `drift` when it failed."""

    record_id: int  # its check-execution record: the order the checks were planned in
    asset: str
    day: date
    drift: bool
    check: str = ""
    description: str = ""
    figures: dict = field(default_factory=dict, hash=False, compare=False)

    def cause(self) -> dict:
        """What opened a drift event, as the model's due check shows it."""
        return {"check": f"{self.asset}:{self.check}", "partition": self.day.isoformat(),
                "description": self.description, "figures": self.figures}


@dataclass
class TriggerState:
    """The sensor's cursor: how far it read, the open drift event (and what opened it), the pending request, the
    last request (and whether a new model answered it), and the due verdict last reported on `fraud_model`."""

    after_check_id: int = 0
    event_start: str | None = None
    event_cause: dict | None = None
    request_from: str | None = None
    pending_as_of: str | None = None
    last_request_day: str | None = None
    last_request: dict | None = None  # run_key, as_of, cause, model_before (fraud_model's storage id then)
    reported_due: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_cursor(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "notes"})

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "TriggerState":
        """Unknown keys are dropped: a cursor of the metadata-reading sensor (`after_storage_id`, an event-log
        id) keeps its event and cooldown and reads the check history from its start."""
        known = {f.name for f in fields(cls)} - {"notes"}
        return cls(**{k: v for k, v in json.loads(cursor).items() if k in known}) if cursor else cls()


def retrain_run_key(event_start: str) -> str:
    return f"{RUN_KEY_PREFIX}{event_start}"


def advance(state: TriggerState, verdicts: list[Verdict], cooldown_days: int, wait_days: int) -> TriggerState:
    """Fold new verdicts (in record order) into the state; a due request is left in `pending_as_of`."""
    state.notes = []
    for v in sorted(verdicts, key=lambda v: v.record_id):
        state.after_check_id = max(state.after_check_id, v.record_id)
        if not v.drift:
            continue
        if state.event_start is None:
            last = date.fromisoformat(state.last_request_day) if state.last_request_day else None
            if last is not None and v.day < last + timedelta(days=cooldown_days):
                continue
            state.event_start, state.event_cause = v.day.isoformat(), v.cause()
            state.request_from = (v.day + timedelta(days=wait_days)).isoformat()
            state.notes.append(f"drift event opened on {v.day} by {v.asset}")
        if state.pending_as_of is None and v.day >= date.fromisoformat(state.event_start) + timedelta(days=wait_days):
            state.pending_as_of = v.day.isoformat()
    return state


def _plain(metadata) -> dict:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def _verdict_of(record) -> Verdict | None:
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    partition = record.partition or getattr(evaluation, "partition", None)
    if not isinstance(evaluation, dg.AssetCheckEvaluation) or partition is None:
        return None
    return Verdict(record.id, record.key.asset_key.to_user_string(), date.fromisoformat(partition),
                   not evaluation.passed, record.key.name, evaluation.description or "", _plain(evaluation.metadata))


def new_verdicts(instance: dg.DagsterInstance, after_check_id: int) -> tuple[list[Verdict], int]:
    """Executions of the retrain checks recorded after `after_check_id`, in record order, and how far they were
    read. A record is created when its run plans the check and filled in when the check is evaluated, so reading
    stops at the first one still waiting for a running run (it and all later ones are read next tick); a planned
    check whose run ended without evaluating it is passed over."""
    storage = instance.event_log_storage
    records = []
    for key in names.RETRAIN_CHECKS:
        cursor = None
        while True:
            page = storage.get_asset_check_execution_history(key, limit=PAGE, cursor=cursor)
            fresh = [r for r in page if r.id > after_check_id]
            records += fresh
            if len(page) < PAGE or len(fresh) < len(page):
                break
            cursor = page[-1].id
    verdicts, read_to = [], after_check_id
    for record in sorted(records, key=lambda r: r.id):
        if record.status.value == "PLANNED":  # the record's status enum has no public export
            run = instance.get_run_by_id(record.run_id) if record.run_id else None
            if run is not None and not run.is_finished:
                break
        else:
            verdict = _verdict_of(record)
            verdicts += [verdict] if verdict else []
        read_to = record.id
    return verdicts, read_to


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
    name=SENSOR_NAME,
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrain the fraud model once per drift event found by the monitoring checks (cooldown, checks); "
    "keeps fraud_model's fraud_model_not_due_for_retrain check.",
)
def retrain_on_drift(context: dg.SensorEvaluationContext, policy: LoopPolicy, notifier: Notifier):
    state = TriggerState.from_cursor(context.cursor)
    verdicts, read_to = new_verdicts(context.instance, state.after_check_id)
    state = advance(state, verdicts, policy.retrain_cooldown_days, policy.retrain_wait_days)
    state.after_check_id = max(state.after_check_id, read_to)
    for note in state.notes:
        notifier.send("drift_event", note, {"event_start": state.event_start}, log=context.log)
    model = latest_model(context.instance)
    request, skip, held = None, None, []
    if state.pending_as_of is None:
        skip = ("no drift event due for a retrain"
                + (f" (event of {state.event_start} open)" if state.event_start else ""))
    else:
        held = failed_blocking_checks(context)
    if held:  # the request stays pending until the checks pass
        skip = (f"retrain for the drift event of {state.event_start} held: blocking checks failed "
                f"upstream: {held}")
    elif state.pending_as_of is not None:
        event_start, as_of_day = state.event_start, state.pending_as_of
        as_of = datetime.combine(date.fromisoformat(as_of_day), time.max).isoformat() + "+00:00"
        run_key = retrain_run_key(event_start)
        notifier.send("retrain_requested", f"retrain {run_key} as of {as_of_day}",
                      {"event_start": event_start, "as_of": as_of_day}, log=context.log, event_id=run_key)
        state.last_request = {"run_key": run_key, "as_of": as_of_day, "event_start": event_start,
                              "cause": state.event_cause, "model_before": model.storage_id if model else None}
        state.last_request_day, state.event_start, state.pending_as_of = as_of_day, None, None
        state.event_cause, state.request_from = None, None
        request = dg.RunRequest(
            run_key=run_key,
            run_config=retrain_run_config(as_of, policy.retrain_half_life_days),
            tags={"trigger": "drift", "drift_event_start": event_start, "drift_as_of": as_of_day},
        )
    due = due_for_retrain(context.instance, state, model, policy.retrain_cooldown_days, held)
    events = []
    signature = json.dumps([due.passed, due.description])
    if signature != state.reported_due:
        events.append(due)
        state.reported_due = signature
    context.update_cursor(state.to_cursor())
    return dg.SensorResult(run_requests=[request] if request else None, skip_reason=skip, asset_events=events)


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
