"""Transactions from the event stream into `raw.transactions`, exactly once, one micro-batch per run.

A run reads the events after the committed position (at most `until`, the position the sensor saw, and at most
`max_events`), keeps each as received (`received.py`), rebuilds the days they belong to through the landing-file
contract, and records the new committed position in `raw.stream_offsets`: all in ONE DuckDB transaction. Only
after the commit does it acknowledge the events to Redis. So a consumer killed anywhere leaves either nothing
(the next run reads the same events again: Redis re-delivers its pending entries, the embedded log is simply
re-read) or a committed batch whose acknowledgement is missing (the next run acknowledges the positions at or
before the committed one without loading them again). Events are loaded in stream order: a run stops before the
first event whose day is not one of its partitions, which the next run (or the sensor's) picks up.

An event's day is the UTC day of its `event_ts` (a late event reopens its day, which is rebuilt from all its
events), unless that timestamp is unusable or more than `lookback_days` older than `sent_at`: then it is the day
the event was sent (`lib.transaction_stream.event_days`), where the contract quarantines the timestamp.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg
import duckdb
from pydantic import Field

from platform_assets.ingestion.assets import _result
from platform_assets.ingestion.loader import LoadResult
from platform_assets.ingestion.received import Received, rebuild_days, receive
from platform_assets.ingestion.sources import TRANSACTIONS
from platform_assets.lib import names
from platform_assets.lib.identifiers import partition_date
from platform_assets.lib.transaction_stream import Event, TransactionStream, event_days, last_committed
from platform_assets.resources import WarehouseResource
from platform_assets.resources.transaction_stream import (
    TransactionStreamResource,
    transaction_stream_resource,
)
from platform_assets.settings import Settings

OFFSETS_DDL = """CREATE TABLE IF NOT EXISTS raw.stream_offsets (
    stream VARCHAR PRIMARY KEY,
    position VARCHAR NOT NULL,
    events BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL
)"""


@dataclass
class Drained:
    """One micro-batch: what was read, received and committed."""

    after: str | None
    committed: str | None
    events: int = 0
    received: int = 0
    redelivered: int = 0
    days: list[date] = field(default_factory=list)
    # Events read but left for a later run: their day is not one of this run's partitions.
    left_for_later: int = 0
    oldest_written_at: float | None = None
    load: LoadResult = field(default_factory=lambda: LoadResult(source=TRANSACTIONS.name))


def committed_position(con: duckdb.DuckDBPyConnection, stream_name: str) -> str | None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(OFFSETS_DDL)
    row = con.execute("SELECT position FROM raw.stream_offsets WHERE stream = $s", {"s": stream_name}).fetchone()
    return row[0] if row else None


def drain(con: duckdb.DuckDBPyConnection, stream: TransactionStream, stream_name: str, *, until: str | None,
          limit: int, lookback_days: int, first_day: date | None = None, last_day: date | None = None,
          on_received: Callable[[Drained], None] | None = None) -> Drained:
    """Load one micro-batch of `stream` (see the module docstring). `on_received` runs after the events are
    received and before the commit (where a kill must lose nothing: the tests kill a consumer there)."""
    now = datetime.now(UTC)
    con.execute("SET TimeZone = 'UTC'")
    con.begin()
    try:
        after = committed_position(con, stream_name)
        result = Drained(after=after, committed=after)
        events = stream.consume(after, until, limit)
        batch: list[tuple[Event, date]] = []
        for event, day in zip(events, event_days(events, lookback_days, last_day), strict=True):
            if (first_day and day < first_day) or (last_day and day > last_day):
                break
            batch.append((event, day))
        result.events, result.left_for_later = len(batch), len(events) - len(batch)
        if not batch:
            con.rollback()
            return result
        received, days = receive(con, TRANSACTIONS, (Received(e.position, d, e.fields) for e, d in batch),
                                 origin=f"stream {stream_name}", received_at=now)
        result.received, result.redelivered = received, len(batch) - received
        result.days = sorted(days)
        result.oldest_written_at = min(e.written_at for e, _ in batch)
        if days:
            result.load = rebuild_days(con, TRANSACTIONS, days, f"stream {stream_name}", now)
        result.committed = batch[-1][0].position
        con.execute(
            """INSERT INTO raw.stream_offsets VALUES ($s, $p, $n, $t)
               ON CONFLICT (stream) DO UPDATE SET position = excluded.position,
                   events = raw.stream_offsets.events + excluded.events, committed_at = excluded.committed_at""",
            {"s": stream_name, "p": result.committed, "n": received, "t": now})
        if on_received is not None:
            on_received(result)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    stream.ack(e.position for e, _ in batch)
    return result


class StreamDrainConfig(dg.Config):
    until: str | None = Field(default=None, description="The last stream position this run loads (the sensor "
                                                        "sets the newest it saw); unset: all there is")
    max_events: int | None = Field(default=None, description="Most events this run loads (default: the "
                                                             "resource's batch_events)")
    max_quarantine_share: float = Field(default=0.02, description="Share of refused rows above which the "
                                                                  "blocking check fails")


def build_defs(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    resource = transaction_stream_resource(settings)
    kind = resource.kind
    key = names.RAW_TRANSACTIONS

    @dg.observable_source_asset(
        key=names.TRANSACTION_STREAM,
        group_name=names.INGESTION,
        kinds={kind},
        description=f"The transaction event stream {settings.stream_name!r} ({settings.stream_backend}): each "
                    "observation reports the events not yet loaded into raw.transactions, the age of the oldest "
                    "and the arrival and load rates. Reads the stream and the Dagster instance, never DuckDB.",
    )
    def transaction_stream(context: dg.AssetExecutionContext,
                           transaction_stream: TransactionStreamResource) -> dg.ObserveResult:
        last = last_committed(context.instance)
        with transaction_stream.open() as stream:
            backlog = stream.backlog(last.get(names.STREAM_COMMITTED_POSITION))
            arrivals = stream.written_since(60)
        lag = max(0.0, time.time() - backlog.oldest_written_at) if backlog.oldest_written_at else 0.0
        return dg.ObserveResult(
            data_version=dg.DataVersion(backlog.newest_position or "empty"),
            metadata={
                "events_not_loaded": backlog.events,
                "oldest_not_loaded_age_seconds": float(round(lag, 3)),
                "events_written": backlog.written_total,
                "events_written_last_minute": arrivals,
                "newest_position": backlog.newest_position or "",
                names.STREAM_COMMITTED_POSITION: last.get(names.STREAM_COMMITTED_POSITION) or "",
                "last_load_events_per_second": float(last.get(names.STREAM_EVENTS_PER_SECOND) or 0.0),
            },
        )

    @dg.asset(
        key=key,
        deps=[*names.SNAPSHOT_RAW, names.TRANSACTION_STREAM],
        group_name=names.INGESTION,
        kinds={kind, "duckdb"},
        description="Card transactions from the event stream, one daily partition per UTC day of event_ts, in "
                    "raw.transactions: each run loads one micro-batch exactly once (committed position in "
                    "raw.stream_offsets, in the load's transaction).",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=names.DUCKDB_WRITER_POOL,
        check_specs=[dg.AssetCheckSpec(names.QUARANTINE_CHECK, asset=key, blocking=True,
                                       description="Refused rows stay below max_quarantine_share")],
        metadata={"stream": settings.stream_name, "table": "raw.transactions"},
        tags={"layer": "raw"},
    )
    def raw_transactions(context: dg.AssetExecutionContext, config: StreamDrainConfig,
                         warehouse: WarehouseResource,
                         transaction_stream: TransactionStreamResource) -> dg.MaterializeResult:
        days = [partition_date(k) for k in context.partition_keys]
        started = time.perf_counter()
        with transaction_stream.open() as stream, warehouse.get_connection() as con:
            drained = drain(con, stream, transaction_stream.name, until=config.until,
                            limit=config.max_events or transaction_stream.batch_events,
                            lookback_days=transaction_stream.lookback_days, first_day=min(days), last_day=max(days))
            con.execute("CHECKPOINT")
            backlog = stream.backlog(drained.committed)
        seconds = time.perf_counter() - started
        lag = time.time() - drained.oldest_written_at if drained.oldest_written_at else 0.0
        context.log.info(
            f"stream {transaction_stream.name}: {drained.events:,} events after {drained.after} up to "
            f"{drained.committed} ({drained.redelivered} already held), days {[str(d) for d in drained.days]}; "
            f"{drained.load.rows_loaded:,} rows in those days, {drained.load.rows_quarantined} quarantined; "
            f"{drained.left_for_later} left for later runs, {backlog.events:,} not yet loaded")
        result = _result(TRANSACTIONS, drained.load, config.max_quarantine_share, key)
        return dg.MaterializeResult(check_results=result.check_results, metadata={
            **result.metadata,
            names.STREAM_COMMITTED_POSITION: drained.committed or "",
            "stream_after_position": drained.after or "",
            "events": drained.events,
            "events_redelivered": drained.redelivered,
            "days_rebuilt": dg.MetadataValue.json([d.isoformat() for d in drained.days]),
            "events_left_for_later": drained.left_for_later,
            "events_not_loaded": backlog.events,
            "oldest_event_lag_seconds": float(round(lag, 3)),
            names.STREAM_EVENTS_PER_SECOND: float(round(drained.events / seconds, 1)) if seconds else 0.0,
        })

    return dg.Definitions(assets=[transaction_stream, raw_transactions],
                          resources={"transaction_stream": resource})

