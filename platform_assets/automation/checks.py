"""Why the model is due for a retrain, on the model's own page: the `fraud_model_not_due_for_retrain` check.

A Dagster user looks for "is this model still good?" on `fraud_model`, not in a sensor's cursor. The failed drift
checks live on the monitoring assets; this check on `fraud_model` carries the retrain loop's conclusion:

- it **fails** (severity WARN: the model is due, nothing is broken) from the tick a failed retrain check opens a
  drift event until a new `fraud_model` version has been trained for it: while the event waits for its labels
  (`retrain_wait_days`), while blocking checks upstream hold the request, and while the requested retrain has
  not produced a model. Its description and metadata name the failed check, the partition and the figures
  that made the model due (`drift_check`, `drift_partition`, `drift_figures`), and the run key of the retrain;
- it **passes** when no event is open: no failed check yet, or the retrain ran (a fraud_model materialization
  newer than the request, whether the gate promoted it or not), with the cooldown's end in the description.

The retrain sensor evaluates it with every tick whose verdict differs from the last one it reported (sensor
`asset_events`), so it changes as the drift checks do, without a run. As an asset check it can also be executed
from the UI, and it runs in every retrain run right after the new model (the retrain job selects fraud_model and
so its checks): both read the sensor's saved cursor, the same state the sensor decides from. While the retrain
run is queued or running, Dagster shows the check as planned by that run; the failed evaluation that asked for
it stays in the check's history.

The model's age is the other half of "due": `fraud_model` carries a freshness policy (training/definitions.py,
`PLATFORM_MODEL_MAX_AGE_DAYS`), failing once the last training is too old, drift or not.
"""

from datetime import date, timedelta

import dagster as dg

from platform_assets.lib import names
from platform_assets.resources import LoopPolicy


def latest_model(instance: dg.DagsterInstance):
    """fraud_model's newest materialization record (None before the first training)."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=names.FRAUD_MODEL), limit=1).records
    return records[0] if records else None


def _unknown_cause(day: str) -> dict:
    """An event opened by a sensor of an older release, whose cursor did not keep what opened it."""
    return {"check": "a retrain check", "partition": day, "description": "not recorded", "figures": {}}


def _cause_metadata(cause: dict | None) -> dict:
    if not cause:
        return {}
    return {"drift_check": cause["check"], "drift_partition": cause["partition"],
            "drift_description": cause["description"], "drift_figures": dg.MetadataValue.json(cause["figures"])}


def _retrained(instance: dg.DagsterInstance, request: dict, model) -> bool:
    if model is None:
        return False
    if request.get("model_before") is None or model.storage_id > request["model_before"]:
        return True
    run = instance.get_run_by_id(model.run_id)  # a replayed request answered by the run it names
    return run is not None and run.tags.get(names.RUN_KEY_TAG) == request["run_key"]


def due_for_retrain(instance: dg.DagsterInstance, state, model, cooldown_days: int,
                    held: list[str] | tuple = ()) -> dg.AssetCheckEvaluation:
    """The check's verdict from the retrain sensor's state (automation/sensors.py::TriggerState)."""
    request = state.last_request
    if state.event_start is not None:
        cause = state.event_cause or _unknown_cause(state.event_start)
        if held:
            when = f"its retrain is held: blocking checks failed upstream: {', '.join(held)}"
        elif state.pending_as_of is None:
            when = f"its retrain is requested from {state.request_from} (retrain_wait_days: labels mature first)"
        else:
            when = "its retrain is requested now"
        passed = False
        description = (f"due for retrain: {cause['check']} failed for {cause['partition']} ({cause['description']});"
                       f" drift event since {state.event_start}, {when}")
        metadata = {"drift_event_start": state.event_start, "retrain_requested_from": state.request_from or "",
                    "held_by": dg.MetadataValue.json(list(held)), **_cause_metadata(cause)}
    elif request:
        cause = request.get("cause") or _unknown_cause(request["event_start"])
        cooldown_until = date.fromisoformat(request["as_of"]) + timedelta(days=cooldown_days)
        metadata = {"drift_event_start": request["event_start"], "run_key": request["run_key"],
                    "retrain_as_of": request["as_of"], "cooldown_until": cooldown_until.isoformat(),
                    **_cause_metadata(cause)}
        passed = _retrained(instance, request, model)
        if passed:
            description = (f"retrained: fraud_model was materialized after {request['run_key']} (drift event opened "
                           f"by {cause['check']} failing for {cause['partition']}); failed checks of days before "
                           f"{cooldown_until} open no new drift event")
        else:
            # The run's status is metadata, not description: a new description is a new report (see the sensor).
            runs = instance.get_runs(dg.RunsFilter(tags={names.RUN_KEY_TAG: request["run_key"]}), limit=1)
            metadata["retrain_run"] = f"{runs[0].run_id} ({runs[0].status.value})" if runs else "not launched yet"
            description = (f"due for retrain: {cause['check']} failed for {cause['partition']} "
                           f"({cause['description']}); retrain {request['run_key']} as of {request['as_of']} "
                           f"requested, no new fraud_model version yet")
    else:
        passed, metadata = True, {}
        description = "not due: no retrain check (drift, recall) has failed"
    target = None
    if model is not None:
        from dagster._core.definitions.asset_checks.asset_check_evaluation import (
            AssetCheckEvaluationTargetMaterializationData,
        )

        target = AssetCheckEvaluationTargetMaterializationData(storage_id=model.storage_id, run_id=model.run_id,
                                                               timestamp=model.timestamp)
    return dg.AssetCheckEvaluation(
        asset_key=names.FRAUD_MODEL, check_name=names.RETRAIN_DUE_CHECK, passed=passed,
        severity=dg.AssetCheckSeverity.WARN, description=description, metadata=metadata,
        target_materialization_data=target,
    )


def saved_sensor_state(instance: dg.DagsterInstance):
    """The retrain sensor's state as its daemon last saved it (empty if it never ticked)."""
    from platform_assets.automation.sensors import SENSOR_NAME, TriggerState

    cursors = [getattr(s.instigator_data, "cursor", None) for s in instance.all_instigator_state()
               if s.name == SENSOR_NAME]
    return TriggerState.from_cursor(next((c for c in cursors if c), None))


@dg.asset_check(
    asset=names.FRAUD_MODEL,
    name=names.RETRAIN_DUE_CHECK,
    description="Fails (WARN) while a failed drift or recall check asks for a retrain that has not produced a new "
    "model yet; names the check, partition and figures. Kept by the retrain_on_drift sensor.",
)
def fraud_model_not_due_for_retrain(context: dg.AssetCheckExecutionContext, policy: LoopPolicy) -> dg.AssetCheckResult:
    evaluation = due_for_retrain(context.instance, saved_sensor_state(context.instance),
                                 latest_model(context.instance), policy.retrain_cooldown_days)
    return dg.AssetCheckResult(passed=evaluation.passed, severity=evaluation.severity,
                               description=evaluation.description, metadata=evaluation.metadata)
