"""The online velocity consumer: the transaction stream and the scoring service's traffic -> per-customer state in
Feast's online store (`python -m platform_assets.features.velocity_online`, `make velocity-consumer`).

One long-running process, the single writer of the feature view `customer_recent_transactions`. Each batch:

1. reads up to `batch_events` events from each of its streams after its own committed positions (the transaction
   stream when transactions arrive by stream, and the scoring service's scored-transactions stream always): in
   Redis through its own consumer group (`platform-velocity`, never ingestion's), in the embedded log by position;
   when nothing arrived it sleeps `poll_seconds` (20 ms) and asks again;
2. validates each record by the landing contract's value rules (lib/transaction_rules.py; the day rule against
   sent_at, which for scored traffic is the served time) and refuses an event dated more than MAX_FUTURE (5 min)
   after its own wall clock (`event_ts_in_future`, lib/velocity_consumer.py); refused ones are counted by reason
   (log, heartbeat file), never applied;
3. reads the current states of the customers the batch touches (one online read), merges (velocity_state.merge:
   union by transaction_id, sort, trim to 24 h + MAX_FUTURE (5 min) of the newest) and writes the changed states
   (one write: Feast's push path `store.push(customer_transactions_push, df, to=PushMode.ONLINE)`, or with
   `--write direct` the online store's `online_write_batch` for the same view);
4. only then commits its positions (a SQLite file of its own under data/features/velocity) and acknowledges the
   Redis entries (XACK).

A kill -9 anywhere loses nothing (the positions move only after the write) and counts nothing twice (a replayed
event's id is already in the state: the merge is idempotent). SIGTERM/SIGINT finish the batch in hand and exit 0.
The heartbeat file (`heartbeat.json`, rewritten atomically at least every second) says what it did: counts,
refusals by reason, positions, backlog, the last batch's timings; Dagster's observable source asset
`velocity_online_consumer` and `make doctor` read it, never the process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from platform_assets.features.velocity_state import STATE_FIELDS, CustomerState, merge_batch
from platform_assets.lib import names
from platform_assets.lib.transaction_rules import ValidTransaction, check_transaction
from platform_assets.lib.transaction_stream import SENT_AT, Event, TransactionStream, open_stream
from platform_assets.lib.velocity_consumer import (
    FUTURE_REFUSAL,
    MAX_FUTURE_SECONDS,
    ONLINE_HORIZON_US,
    heartbeat_path,
    offsets_path,
    read_heartbeat,
)
from platform_assets.settings import Settings, load_settings

log = logging.getLogger("platform_assets.features.velocity_online")
HEARTBEAT_SECONDS = 1.0
CRASH_POINTS = ("before_write", "after_write")
WRITE_MODES = ("push", "direct")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


__all__ = ["Consumer", "Offsets", "StateStore", "heartbeat_path", "parse_events", "read_heartbeat"]


class Offsets:
    """The consumer's committed position per stream, in its own SQLite file (never raw.stream_offsets)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("CREATE TABLE IF NOT EXISTS offsets (stream TEXT PRIMARY KEY, position TEXT NOT NULL, "
                          "events INTEGER NOT NULL, committed_at REAL NOT NULL)")

    def get(self, stream: str) -> str | None:
        row = self._con.execute("SELECT position FROM offsets WHERE stream = ?", (stream,)).fetchone()
        return row[0] if row else None

    def all(self) -> dict[str, dict]:
        return {s: {"position": p, "events": n, "committed_at": t}
                for s, p, n, t in self._con.execute("SELECT stream, position, events, committed_at FROM offsets")}

    def commit(self, positions: Mapping[str, tuple[str, int]]) -> None:
        """{stream: (position, events read)}, all in one transaction."""
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            for stream, (position, events) in positions.items():
                con.execute("INSERT INTO offsets VALUES (?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET "
                            "position = excluded.position, events = offsets.events + excluded.events, "
                            "committed_at = excluded.committed_at", (stream, position, events, time.time()))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._con.close()


class StateStore:
    """Reads and writes `customer_recent_transactions` rows through Feast (any online store)."""

    def __init__(self, store, write_mode: str = "push"):
        from feast.infra.online_stores.helpers import get_online_store_from_config

        if write_mode not in WRITE_MODES:
            raise ValueError(f"write mode {write_mode!r} is not one of {WRITE_MODES}")
        self.store, self.write_mode = store, write_mode
        self.config = store.config
        self.view = store.get_feature_view(names.CUSTOMER_RECENT_TRANSACTIONS_VIEW)
        self.online_store = get_online_store_from_config(store.config.online_store)
        self.types = {f.name: f.dtype.to_value_type() for f in self.view.features}
        self.stored_us: dict[str, int] = {}  # customer -> event time (µs) of the row the last read or write saw

    def read(self, customer_ids: list[str]) -> dict[str, CustomerState | None]:
        """One online read of the states of `customer_ids`; the rows' stored event times are kept for the write."""
        if not customer_ids:
            return {}
        fast = getattr(self.online_store, "read_values", None)  # our SQLite store: Python values, no protobufs
        if fast is not None:
            row_ts, values = fast(self.config, self.view, {"customer_id": customer_ids}, list(STATE_FIELDS))
            stamps = [seconds * 1_000_000 if seconds > 0 else None for seconds in row_ts]  # kept to the second
        else:
            stamps, values = self._read_protos(customer_ids)
        self.stored_us.update((c, us) for c, us in zip(customer_ids, stamps, strict=True) if us is not None)
        return {cid: CustomerState.from_values(cid, {f: values[f][i] for f in STATE_FIELDS})
                for i, cid in enumerate(customer_ids)}

    def _read_protos(self, customer_ids: list[str]) -> tuple[list[int | None], dict[str, list]]:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        keys = [EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=c)]) for c in customer_ids]
        rows = self.online_store.online_read(self.config, self.view, keys, list(STATE_FIELDS))
        values: dict[str, list] = {f: [None] * len(customer_ids) for f in STATE_FIELDS}
        stamps: list[int | None] = [None] * len(customer_ids)
        for i, (ts, data) in enumerate(rows):
            if ts is not None:
                aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
                stamps[i] = (aware - EPOCH) // ONE_US
            for name in STATE_FIELDS:
                proto = (data or {}).get(name)
                if proto is not None:
                    values[name][i] = feast_value_type_to_python_type(proto)
        return stamps, values

    def stamp_us(self, state: CustomerState) -> int:
        """The event time a state row is written with: its newest event's instant, or 1 µs past the stored row's
        when a merge (a late event, a replay) does not move the newest forward. Online stores keep a row only if
        it is not older than the one they hold (ours: >=; Feast's Redis store: strictly newer), so a merged state
        must never carry an older or, for Redis, an equal time. The UDF windows the arrays, not this time."""
        stored = self.stored_us.get(state.customer_id)
        return state.newest_us if stored is None or state.newest_us > stored else stored + 1

    def write(self, states: list[CustomerState]) -> None:
        """One write of the new states; a row's event time is its newest event's instant."""
        if not states:
            return
        if self.write_mode == "push":
            import pandas as pd
            from feast.data_source import PushMode

            micros = [self.stamp_us(s) for s in states]
            stamps = pd.to_datetime(micros, unit="us", utc=True)
            frame = pd.DataFrame([s.as_row() for s in states])
            frame["event_timestamp"] = stamps
            frame["created_timestamp"] = stamps
            self.store.push(names.CUSTOMER_TRANSACTIONS_PUSH, frame, to=PushMode.ONLINE)
            self.stored_us.update((s.customer_id, us) for s, us in zip(states, micros, strict=True))
            return
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Int64List, StringList, Value

        rows, micros = [], []
        for s in states:
            us = self.stamp_us(s)
            micros.append(us)
            stamp = EPOCH + timedelta(microseconds=us)
            values = {
                "recent_transaction_ids": Value(string_list_val=StringList(val=list(s.transaction_ids))),
                "recent_event_us": Value(int64_list_val=Int64List(val=list(s.event_us))),
                "recent_amount_cents": Value(int64_list_val=Int64List(val=list(s.amount_cents))),
                "recent_merchant_ids": Value(string_list_val=StringList(val=list(s.merchant_ids))),
            }
            key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=s.customer_id)])
            rows.append((key, values, stamp, stamp))
        self.online_store.online_write_batch(self.config, self.view, rows, None)
        self.stored_us.update((s.customer_id, us) for s, us in zip(states, micros, strict=True))


@dataclass
class Source:
    """One stream the consumer reads, with its own committed position."""

    label: str  # "transactions" | "scored"
    stream: TransactionStream
    lookback_days: int | None  # the landing rule on event_ts's day vs sent_at's (scored traffic: the served time)


@dataclass
class Counts:
    started_at: float = field(default_factory=time.time)
    events_read: int = 0
    events_applied: int = 0
    duplicates: int = 0
    expired: int = 0
    refused: Counter = field(default_factory=Counter)
    customers_written: int = 0
    batches: int = 0
    last_batch: dict = field(default_factory=dict)


def parse_events(events: list[Event], lookback_days: int | None, refused: Counter,
                 now_us: int | None = None) -> list[ValidTransaction]:
    """The valid transactions of `events`; each refused one is counted under its reason. An event dated more than
    MAX_FUTURE_SECONDS after `now_us` (the consumer's wall clock) is refused as `event_ts_in_future`."""
    if now_us is None:
        now_us = time.time_ns() // 1_000
    latest_us = now_us + MAX_FUTURE_SECONDS * 1_000_000
    valid = []
    for event in events:
        if not isinstance(event.fields, Mapping):
            refused["not_a_record"] += 1
            continue
        checked = check_transaction(event.fields, event.fields.get(SENT_AT), lookback_days)
        if isinstance(checked, str):
            refused[checked] += 1
        elif checked.event_us > latest_us:
            refused[FUTURE_REFUSAL] += 1
        else:
            valid.append(checked)
    return valid


class Consumer:
    def __init__(self, settings: Settings, sources: list[Source], states: StateStore, offsets: Offsets,
                 batch_events: int, poll_seconds: float, crash_at: str | None = None, crash_batch: int = 1):
        self.settings, self.sources, self.states, self.offsets = settings, sources, states, offsets
        self.batch_events, self.poll_seconds = batch_events, poll_seconds
        self.crash_at, self.crash_batch = crash_at, crash_batch
        self.counts = Counts()
        self.stopping = False
        self._last_heartbeat = 0.0
        self.heartbeat = heartbeat_path(settings)
        self.heartbeat.parent.mkdir(parents=True, exist_ok=True)

    def _crash(self, point: str) -> None:
        """Test hook (`--crash-at`): die as kill -9 does, at `point` of batch number `crash_batch`."""
        if self.crash_at == point and self.counts.batches + 1 == self.crash_batch:
            self.write_heartbeat(force=True, state=f"crashing at {point}")
            os.kill(os.getpid(), signal.SIGKILL)

    def step(self) -> int:
        """One batch; returns how many events it read (0: nothing arrived)."""
        started = time.perf_counter()
        read: list[tuple[Source, list[Event]]] = []
        for source in self.sources:
            events = source.stream.consume(self.offsets.get(source.stream.name), None, self.batch_events)
            if events:
                read.append((source, events))
        if not read:
            return 0
        valid: list[ValidTransaction] = []
        now_us = time.time_ns() // 1_000
        for source, events in read:
            valid += parse_events(events, source.lookback_days, self.counts.refused, now_us)
        got = time.perf_counter()
        customers = sorted({t.customer_id for t in valid})
        current = self.states.read(customers)
        held = {cid: set(s.transaction_ids) for cid, s in current.items() if s is not None}
        changed = merge_batch(current, valid, ONLINE_HORIZON_US)
        # Each valid event is applied (its id entered the state), a duplicate (its id was held, or came earlier in
        # the batch) or expired (more than 24 h + MAX_FUTURE before the customer's newest: trimmed at once).
        applied = sum(len(set(s.transaction_ids) - held.get(cid, set())) for cid, s in changed.items())
        fresh = len({(t.customer_id, t.transaction_id) for t in valid
                     if t.transaction_id not in held.get(t.customer_id, ())})
        self.counts.duplicates += len(valid) - fresh
        self.counts.expired += fresh - applied
        new = applied
        merged = time.perf_counter()
        self._crash("before_write")
        self.states.write(list(changed.values()))
        written = time.perf_counter()
        self._crash("after_write")
        self.offsets.commit({s.stream.name: (events[-1].position, len(events)) for s, events in read})
        for source, events in read:
            source.stream.ack(e.position for e in events)
        done = time.perf_counter()
        n = sum(len(events) for _, events in read)
        oldest_written = min(e.written_at for _, events in read for e in events)
        c = self.counts
        c.events_read += n
        c.events_applied += new
        c.customers_written += len(changed)
        c.batches += 1
        c.last_batch = {"events": n, "valid": len(valid), "customers": len(customers), "written": len(changed),
                        "read_ms": round((got - started) * 1e3, 2), "state_read_ms": round((merged - got) * 1e3, 2),
                        "write_ms": round((written - merged) * 1e3, 2), "commit_ms": round((done - written) * 1e3, 2),
                        "oldest_event_age_s": round(time.time() - oldest_written, 3)}
        self.write_heartbeat()
        return n

    def run(self) -> None:
        while not self.stopping:
            if self.step() == 0:
                self.write_heartbeat()
                time.sleep(self.poll_seconds)
        self.write_heartbeat(force=True, state="stopped")

    def status(self, state: str) -> dict:
        c = self.counts
        backlog = {}
        for source in self.sources:
            try:
                b = source.stream.backlog(self.offsets.get(source.stream.name))
                backlog[source.label] = {"stream": source.stream.name, "events": b.events,
                                         "oldest_age_s": round(time.time() - b.oldest_written_at, 3)
                                         if b.oldest_written_at else 0.0}
            except Exception as exc:  # noqa: BLE001 (a heartbeat never kills the consumer)
                backlog[source.label] = {"stream": source.stream.name, "error": str(exc)}
        return {
            "state": state, "pid": os.getpid(), "heartbeat_at": time.time(), "started_at": c.started_at,
            "backend": self.settings.stream_backend, "write_mode": self.states.write_mode,
            "streams": {s.label: s.stream.name for s in self.sources},
            "events_read": c.events_read, "events_applied": c.events_applied, "duplicates": c.duplicates,
            "expired": c.expired, "refused": dict(c.refused), "refused_total": sum(c.refused.values()),
            "customers_written": c.customers_written, "batches": c.batches, "last_batch": c.last_batch,
            "offsets": self.offsets.all(), "backlog": backlog,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    def write_heartbeat(self, force: bool = False, state: str = "running") -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < HEARTBEAT_SECONDS:
            return
        self._last_heartbeat = now
        tmp = self.heartbeat.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(state), indent=1))
        tmp.replace(self.heartbeat)


def open_sources(settings: Settings, streams: list[str] | None = None) -> list[Source]:
    """The streams of the active settings: the transaction stream when transactions arrive by stream, the scoring
    service's traffic when it publishes it; `streams` ("transactions", "scored") overrides."""
    if streams is None:
        streams = [*(["transactions"] if settings.sources.transactions == "stream" else []),
                   *(["scored"] if settings.scored_stream_enabled else [])]
    sources = []
    for label in streams:
        scored = label != "transactions"
        name = settings.scored_stream_name if scored else settings.stream_name
        log_path = settings.scored_stream_log_path if scored else settings.stream_log_path
        stream = open_stream(settings.stream_backend, name, log_path=log_path,
                             redis_url=settings.stream_redis_url, group=names.VELOCITY_CONSUMER_GROUP,
                             consumer=names.VELOCITY_CONSUMER)
        sources.append(Source(label, stream, settings.landing_lookback_days))
    return sources


def main(argv: list[str] | None = None) -> None:
    from platform_assets.resources.profile import build_resources

    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-events", type=int, default=settings.velocity_batch_events)
    parser.add_argument("--poll-seconds", type=float, default=settings.velocity_poll_seconds)
    parser.add_argument("--write", choices=WRITE_MODES, default="push",
                        help="push: store.push to the PushSource (default); direct: online_write_batch")
    parser.add_argument("--streams", default=None, help="comma-separated: transactions,scored (default: by mode)")
    parser.add_argument("--exit-when-idle", action="store_true", help="stop once every stream is drained")
    parser.add_argument("--crash-at", choices=CRASH_POINTS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--crash-batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping: list[int] = []
    consumer: Consumer | None = None

    def stop(signum, _frame):
        log.info("signal %s: finishing the batch in hand", signum)
        stopping.append(signum)
        if consumer is not None:
            consumer.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    store = build_resources(settings)["feast"].store()
    states = None
    while states is None and not stopping:
        try:
            states = StateStore(store, args.write)
        except Exception as exc:
            if args.exit_when_idle:
                raise
            log.warning("waiting for the feature view %s in the registry (%s)", names.CUSTOMER_RECENT_TRANSACTIONS_VIEW,
                        exc)
            for _ in range(50):  # 5 s, answering a stop signal within 0.1 s
                if stopping:
                    break
                time.sleep(0.1)
            with contextlib.suppress(Exception):
                store.refresh_registry()
    if states is None:
        return
    sources = open_sources(settings, args.streams.split(",") if args.streams else None)
    consumer = Consumer(settings, sources, states, Offsets(offsets_path(settings)),
                        args.batch_events, args.poll_seconds, args.crash_at, args.crash_batch)
    log.info("velocity consumer: streams %s (%s), write %s, batches of %s, poll %ss",
             [s.stream.name for s in sources], settings.stream_backend, args.write, args.batch_events,
             args.poll_seconds)
    consumer.write_heartbeat(force=True, state="started")
    try:
        if args.exit_when_idle:
            while not consumer.stopping and consumer.step():
                pass
            consumer.write_heartbeat(force=True, state="stopped")
        else:
            consumer.run()
    finally:
        for source in sources:
            source.stream.close()
        consumer.offsets.close()
    c = consumer.counts
    log.info("stopped: %s events read, %s applied, %s duplicates, refused %s", c.events_read, c.events_applied,
             c.duplicates, dict(c.refused))


if __name__ == "__main__":
    main()
