"""Transactions from the event stream into `raw.transactions`, exactly once, one micro-batch per run.

A batch reads the events after the committed position (at most `until`, the position the sensor saw), keeps
each as received (`received.py`), rebuilds the days they belong to through the landing-file
contract, and records the new committed position in `raw.stream_offsets`: all in ONE DuckDB transaction. Only
after the commit does it acknowledge the events to Redis. So a consumer killed anywhere leaves either nothing
(the next run reads the same events again: Redis re-delivers its pending entries, the embedded log is simply
re-read) or a committed batch whose acknowledgement is missing (the next run acknowledges the positions at or
before the committed one without loading them again). Events are loaded in stream order: a run stops before the
first event whose day is not one of its partitions, which the next run (or the sensor's) picks up. The sensor's
run is one batch (its `until`); a run over a range of days without one (a backfill, the demo, the daily schedule)
drains all their events in batches of `batch_events`, each committed on its own.

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

from platform_assets.ingestion.assets import load_result, quarantine_check
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

# One row per stream, replaced in the batch's transaction (no PRIMARY KEY: DuckLake has no constraints).
OFFSETS_DDL = """CREATE TABLE IF NOT EXISTS raw.stream_offsets (
    stream VARCHAR NOT NULL,
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
    # Each rebuilt day's load: the day's whole partition as it now stands.
    by_day: dict[date, LoadResult] = field(default_factory=dict)
    batches: int = 0

    @property
    def load(self) -> LoadResult:
        total = LoadResult(source=TRANSACTIONS.name)
        for day in sorted(self.by_day):
            one = self.by_day[day]
            total.files += one.files
            total.rows_read += one.rows_read
            total.rows_loaded += one.rows_loaded
            total.rows_quarantined += one.rows_quarantined
            total.quarantine_by_reason.update(one.quarantine_by_reason)
        return total

    def add(self, later: "Drained") -> None:
        """Fold a later batch of the same run into this one."""
        self.committed = later.committed
        self.events += later.events
        self.received += later.received
        self.redelivered += later.redelivered
        self.days = sorted({*self.days, *later.days})
        self.left_for_later = later.left_for_later
        if self.oldest_written_at is None:
            self.oldest_written_at = later.oldest_written_at
        self.by_day.update(later.by_day)
        self.batches += later.batches


def committed_position(con: duckdb.DuckDBPyConnection, stream_name: str) -> str | None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(OFFSETS_DDL)
    row = con.execute("SELECT position FROM raw.stream_offsets WHERE stream = $s", {"s": stream_name}).fetchone()
    return row[0] if row else None


def drain(con: duckdb.DuckDBPyConnection, stream: TransactionStream, stream_name: str, *, until: str | None,
          limit: int, lookback_days: int, first_day: date | None = None, last_day: date | None = None,
          on_received: Callable[[Drained], None] | None = None, loaded_at: datetime | None = None) -> Drained:
    """Load one micro-batch of `stream` (see the module docstring). `on_received` runs after the events are
    received and before the commit (where a kill must lose nothing: the tests kill a consumer there).
    `loaded_at`: the load's time in raw (default now)."""
    now = loaded_at or datetime.now(UTC)
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
        result.by_day = {day: rebuild_days(con, TRANSACTIONS, [day], f"stream {stream_name}", now)
                         for day in sorted(days)}
        result.batches = 1
        result.committed = batch[-1][0].position
        before = con.execute("SELECT coalesce(sum(events), 0) FROM raw.stream_offsets WHERE stream = $s",
                             {"s": stream_name}).fetchone()[0]
        con.execute("DELETE FROM raw.stream_offsets WHERE stream = $s", {"s": stream_name})
        con.execute("INSERT INTO raw.stream_offsets VALUES ($s, $p, $n, $t)",
                    {"s": stream_name, "p": result.committed, "n": before + received, "t": now})
        if on_received is not None:
            on_received(result)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    stream.ack(e.position for e, _ in batch)
    return result


def drain_range(con: duckdb.DuckDBPyConnection, stream: TransactionStream, stream_name: str, *,
                until: str | None, max_events: int | None, batch_events: int, lookback_days: int,
                first_day: date, last_day: date) -> Drained:
    """Micro-batches of at most `batch_events`, each committed on its own, until `until`, `max_events`, the end of
    the stream or the first event of a day outside first_day..last_day: a run over a range of days (a backfill,
    the demo) loads all their events with bounded transactions, a sensor's run only its batch. Every batch of
    the run carries the run's start as its `_loaded_at`: the rows of one backfill are one load, as they would be
    from one file (the warehouse counts the first load as history known on time: dbt_project/macros/knowable_at.sql)."""
    loaded_at = datetime.now(UTC)
    total: Drained | None = None
    while True:
        budget = batch_events if max_events is None else min(batch_events, max_events - (total.events if total else 0))
        if budget <= 0:
            return total
        drained = drain(con, stream, stream_name, until=until, limit=budget, lookback_days=lookback_days,
                        first_day=first_day, last_day=last_day, loaded_at=loaded_at)
        if total is None:
            total = drained
        else:
            total.add(drained)
        if drained.events == 0 or drained.left_for_later:
            return total


class StreamDrainConfig(dg.Config):
    until: str | None = Field(default=None, description="The last stream position this run loads (the sensor "
                                                        "sets the newest it saw); unset: all there is")
    max_events: int | None = Field(default=None, ge=1, description="Most events this run loads (unset: all of its "
                                                             "days, committed every batch_events)")
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
                    "raw.transactions, loaded exactly once in micro-batches (each batch's committed position in "
                    "raw.stream_offsets, in the batch's own transaction).",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.warehouse_writer_pool,
        check_specs=[quarantine_check(key, "Refused rows stay below max_quarantine_share")],
        metadata={"stream": settings.stream_name, "table": "raw.transactions"},
        tags={"layer": "raw"},
    )
    def raw_transactions(context: dg.AssetExecutionContext, config: StreamDrainConfig,
                         warehouse: WarehouseResource,
                         transaction_stream: TransactionStreamResource) -> dg.MaterializeResult:
        days = [partition_date(k) for k in context.partition_keys]
        started = time.perf_counter()
        with warehouse.exclusive(f"stream:{transaction_stream.name}"), transaction_stream.open() as stream:
            # One reader of the stream at a time (on the lake its advisory lock, on the file the pool). Each batch commits its rows with its stream position: after a conflict the retry resumes from the
            # position that did commit.
            drained = warehouse.write(
                lambda con: drain_range(con, stream, transaction_stream.name, until=config.until,
                                        max_events=config.max_events, batch_events=transaction_stream.batch_events,
                                        lookback_days=transaction_stream.lookback_days, first_day=min(days),
                                        last_day=max(days)),
                log=context.log.warning)
            backlog = stream.backlog(drained.committed)
        seconds = time.perf_counter() - started
        lag = time.time() - drained.oldest_written_at if drained.oldest_written_at else 0.0
        context.log.info(
            f"stream {transaction_stream.name}: {drained.events:,} events in {drained.batches} batch(es) after "
            f"{drained.after} up to "
            f"{drained.committed} ({drained.redelivered} already held), days {[str(d) for d in drained.days]}; "
            f"{drained.load.rows_loaded:,} rows in those days, {drained.load.rows_quarantined} quarantined; "
            f"{drained.left_for_later} left for later runs, {backlog.events:,} not yet loaded")
        result = load_result(TRANSACTIONS, drained.load, config.max_quarantine_share, key)
        return dg.MaterializeResult(check_results=result.check_results, metadata={
            **result.metadata,
            names.STREAM_COMMITTED_POSITION: drained.committed or "",
            "stream_after_position": drained.after or "",
            "events": drained.events,
            "events_redelivered": drained.redelivered,
            "batches": drained.batches,
            "days_rebuilt": dg.MetadataValue.json([d.isoformat() for d in drained.days]),
            "events_left_for_later": drained.left_for_later,
            "events_not_loaded": backlog.events,
            "oldest_event_lag_seconds": float(round(lag, 3)),
            names.STREAM_EVENTS_PER_SECOND: float(round(drained.events / seconds, 1)) if seconds else 0.0,
        })

    return dg.Definitions(assets=[transaction_stream, raw_transactions],
                          resources={"transaction_stream": resource})

