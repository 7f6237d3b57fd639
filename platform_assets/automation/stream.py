"""The stream sensor: drains the transaction event stream into raw_transactions in micro-batches.

Each tick peeks at the events after the committed position (the newest raw_transactions materialization's
metadata in the instance: the sensor never opens DuckDB, whose one writer is the run it launches) and, when there
are some and no micro-batch is in flight, requests ONE run of raw_transactions over the days of those events
(a partition range, single run), bounded by the newest position it saw (`until`). The run key is the batch
(from, until) and how many runs of that same start already failed: a failed batch is asked for again from the
same committed position on the next tick, a successful one never twice. One batch at a time keeps the stream's
order; the load itself is exactly once whoever runs it (ingestion/transaction_stream.py), so the daily schedule
or a manual backfill running alongside only finds fewer events.

Events of a day that is not yet a partition (today, until it ends) wait, in order, behind the last one that is.
"""

from datetime import date

import dagster as dg

from platform_assets.lib import names
from platform_assets.lib.partitions import daily_partitions
from platform_assets.lib.transaction_stream import event_days, last_committed
from platform_assets.resources.transaction_stream import TransactionStreamResource

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def transaction_stream_sensor(first_partition: date, stream_name: str,
                              minimum_interval_seconds: int = 15) -> dg.SensorDefinition:
    partitions = daily_partitions(first_partition)

    @dg.sensor(
        name=names.STREAM_SENSOR,
        target=dg.AssetSelection.assets(names.RAW_TRANSACTIONS),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Load the transaction stream {stream_name!r} into raw_transactions in micro-batches, one "
                    "run at a time, exactly once.",
    )
    def stream_sensor(context: dg.SensorEvaluationContext, transaction_stream: TransactionStreamResource):
        consumer = {names.STREAM_CONSUMER_TAG: transaction_stream.name}
        if context.instance.get_runs(dg.RunsFilter(tags=consumer, statuses=IN_FLIGHT), limit=1):
            return dg.SkipReason("a micro-batch is in flight")
        after = last_committed(context.instance).get(names.STREAM_COMMITTED_POSITION)
        with transaction_stream.open() as stream:
            events = stream.peek(after, transaction_stream.batch_events)
        if not events:
            return dg.SkipReason(f"no events after position {after}")
        keys = partitions.get_partition_keys()
        existing, newest = set(keys), date.fromisoformat(keys[-1]) if keys else None
        days, until = [], None
        for event, day in zip(events, event_days(events, transaction_stream.lookback_days, newest), strict=True):
            day = day.isoformat()
            if day not in existing:
                break
            days.append(day)
            until = event.position
        if until is None:
            return dg.SkipReason(f"{len(events)} event(s) wait: the next (position {events[0].position}) belongs to "
                                 f"day {event_days(events[:1], transaction_stream.lookback_days, newest)[0]}, not a partition "
                                 f"yet (or before the first, {first_partition})")
        start = after or "start"
        failed = len(context.instance.get_run_ids(dg.RunsFilter(
            tags={**consumer, names.STREAM_AFTER_TAG: start}, statuses=[dg.DagsterRunStatus.FAILURE])))
        return dg.RunRequest(
            run_key=f"stream:{transaction_stream.name}:{start}:{until}:{failed}",
            asset_selection=[names.RAW_TRANSACTIONS],
            tags={**names.partition_range_tags(min(days), max(days)), **consumer, names.STREAM_AFTER_TAG: start},
            run_config={"ops": {names.asset_name(names.RAW_TRANSACTIONS): {"config": {"until": until}}}},
        )

    return stream_sensor
