"""The transaction event stream: one interface, two backends (docs/sources.md, "Transaction stream").

The simulator appends to it, ingestion consumes it, the sensor and the observable source asset peek at it: all
three meet here, on the ground floor. Each event is one transaction as the acquirer's switch emits it: the landing
CSV row's values as text (malformed ones included, the stream does not judge) plus `sent_at`, the producer's
clock when it sent the event.

- "embedded" (local profile): an append-only log in a SQLite file in WAL mode; a position is the row's integer
  id, assigned in append order. Readers never block the writer, and a batch is appended in one transaction, so a
  killed producer leaves whole events or none.
- "redis" (production): a Redis Stream. Positions are the entry ids (`<ms>-<seq>`). The consumer reads through a
  consumer group (XREADGROUP): an entry delivered to a consumer that died before acknowledging it stays in the
  group's pending entries list and is delivered again, first, to the next read. Acknowledgement (XACK) comes
  only after the load committed.

Neither backend is the source of truth for how far ingestion got: the committed position lives in DuckDB, in the
same transaction as the rows (ingestion/transaction_stream.py). The stream only has to deliver every event at
least once in order; the committed position makes the load exactly once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

TRANSACTION_FIELDS = ("transaction_id", "customer_id", "merchant_id", "amount", "currency", "channel", "event_ts")
SENT_AT = "sent_at"
# The consumer group and its one consumer: ingestion runs one at a time (the DuckDB writer pool), so a single,
# stable consumer name lets a restarted consumer find the entries its killed predecessor left unacknowledged.
CONSUMER_GROUP = "platform-ingestion"
CONSUMER = "raw_transactions"
# The scoring service's own traffic (serving/log.py appends every scored transaction), read by the online velocity
# consumer next to the transaction stream: same backend, its own name (PLATFORM_SCORED_STREAM_NAME overrides).
SCORED_STREAM = "platform:scored_transactions"


@dataclass(frozen=True)
class Event:
    """One stream entry. `fields` is the event's field -> text map, or the raw text of an entry that is not one
    (the loader quarantines it as `not_a_record`). `written_at`: the stream's own wall clock (epoch seconds)."""

    position: str
    fields: Mapping[str, str] | str
    written_at: float


@dataclass(frozen=True)
class Backlog:
    """Events not yet loaded and the wall-clock time the oldest of them was written."""

    events: int
    oldest_written_at: float | None
    newest_position: str | None
    written_total: int


def parse_zoned(text: object) -> datetime | None:
    """A timestamp with a zone as UTC, or None: a zoneless or unparsable value names no instant."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def event_days(events: Iterable[Event], lookback_days: int, newest_day: date | None = None) -> list[date]:
    """The daily partition each event (in stream order) belongs to: the UTC day of its `event_ts`, so a late
    event (sent after its day ended) still lands in its own day, which is rebuilt. An `event_ts` that is
    unparsable, later than `sent_at`'s day, or more than `lookback_days` before it names no day the stream can
    vouch for: such an event goes to the day it was sent (where the contract quarantines its timestamp, as a file
    of that day would). Something without a usable `sent_at` (not a record at all) goes to the day of the event
    before it, so garbage is quarantined where the stream is; first in line, to the day the stream wrote it, at
    most `newest_day` (the newest partition), so it never holds up the events behind it."""
    days: list[date] = []
    for event in events:
        fields = event.fields if isinstance(event.fields, Mapping) else {}
        sent = parse_zoned(fields.get(SENT_AT))
        if sent is not None:
            sent_day = sent.date()
        elif days:
            sent_day = days[-1]
        else:
            sent_day = datetime.fromtimestamp(event.written_at, UTC).date()
            sent_day = min(sent_day, newest_day) if newest_day else sent_day
        happened = parse_zoned(fields.get("event_ts"))
        ok = happened is not None and sent_day - timedelta(days=lookback_days) <= happened.date() <= sent_day
        days.append(happened.date() if ok else sent_day)
    return days


class TransactionStream(ABC):
    """What every backend offers. Positions are strings; `position_key` orders them."""

    kind: str

    @abstractmethod
    def append(self, events: Iterable[Mapping[str, str] | str]) -> list[str]:
        """Append a batch (all of it or none) and return the positions it got."""

    @abstractmethod
    def peek(self, after: str | None, limit: int) -> list[Event]:
        """Up to `limit` events after `after`, in order, without consuming anything."""

    @abstractmethod
    def consume(self, after: str | None, until: str | None, limit: int) -> list[Event]:
        """The next events for the loader, after `after` and up to `until` (inclusive), at most `limit`."""

    def ack(self, positions: Iterable[str]) -> None:
        """The loader committed these positions."""

    @abstractmethod
    def backlog(self, after: str | None) -> Backlog:
        """What is not loaded yet, `after` being the committed position."""

    @abstractmethod
    def written_since(self, seconds: float, cap: int = 100_000) -> int:
        """Events written in the last `seconds` (at most `cap` counted): the arrival rate."""

    @staticmethod
    @abstractmethod
    def position_key(position: str) -> tuple[int, int]:
        """A position as a sortable key."""

    @abstractmethod
    def delete(self) -> None:
        """Remove the stream and its events (tests, a fresh simulation)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class EmbeddedStream(TransactionStream):
    kind = "sqlite"

    def __init__(self, path: str | Path, name: str, busy_timeout_seconds: float = 30.0) -> None:
        """`busy_timeout_seconds`: how long an append (or read) waits for another writer's lock before it fails
        (sqlite3.OperationalError); a writer that must not stall (the prediction log's thread) sets it short."""
        self.path = Path(path)
        self.name = name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA busy_timeout=30000")  # the schema below, whoever else is starting

        self._con.execute(
            "CREATE TABLE IF NOT EXISTS stream_events (position INTEGER PRIMARY KEY AUTOINCREMENT, "
            "stream TEXT NOT NULL, payload TEXT NOT NULL, written_at REAL NOT NULL)")
        self._con.execute("CREATE INDEX IF NOT EXISTS stream_events_by_stream ON stream_events (stream, position)")
        self._con.execute(f"PRAGMA busy_timeout={max(0, round(busy_timeout_seconds * 1000))}")

    @staticmethod
    def position_key(position: str) -> tuple[int, int]:
        return (int(position), 0)

    def append(self, events: Iterable[Mapping[str, str] | str]) -> list[str]:
        now = time.time()
        rows = [(self.name, json.dumps(dict(e)) if isinstance(e, Mapping) else str(e), now) for e in events]
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            first = con.execute("SELECT coalesce(max(position), 0) FROM stream_events").fetchone()[0]
            con.executemany("INSERT INTO stream_events (stream, payload, written_at) VALUES (?, ?, ?)", rows)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        # One writer at a time (BEGIN IMMEDIATE) and AUTOINCREMENT: the batch got consecutive ids after `first`.
        return [str(first + i + 1) for i in range(len(rows))]

    @staticmethod
    def _event(position: int, payload: str, written_at: float) -> Event:
        try:
            fields = json.loads(payload)
        except json.JSONDecodeError:
            fields = payload
        if not isinstance(fields, dict):
            fields = payload
        return Event(str(position), fields, written_at)

    def peek(self, after: str | None, limit: int) -> list[Event]:
        rows = self._con.execute(
            "SELECT position, payload, written_at FROM stream_events WHERE stream = ? AND position > ? "
            "ORDER BY position LIMIT ?", (self.name, int(after or 0), limit)).fetchall()
        return [self._event(*row) for row in rows]

    def consume(self, after: str | None, until: str | None, limit: int) -> list[Event]:
        events = self.peek(after, limit)
        return events if until is None else [e for e in events if int(e.position) <= int(until)]

    def backlog(self, after: str | None) -> Backlog:
        count, oldest, newest = self._con.execute(
            "SELECT count(*), min(written_at), max(position) FROM stream_events WHERE stream = ? AND position > ?",
            (self.name, int(after or 0))).fetchone()
        total = self._con.execute("SELECT count(*) FROM stream_events WHERE stream = ?", (self.name,)).fetchone()[0]
        if newest is None:
            newest = self._con.execute("SELECT max(position) FROM stream_events WHERE stream = ?",
                                       (self.name,)).fetchone()[0]
        return Backlog(count, oldest, None if newest is None else str(newest), total)

    def written_since(self, seconds: float, cap: int = 100_000) -> int:
        return self._con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM stream_events WHERE stream = ? AND written_at >= ? LIMIT ?)",
            (self.name, time.time() - seconds, cap)).fetchone()[0]

    def delete(self) -> None:
        self._con.execute("DELETE FROM stream_events WHERE stream = ?", (self.name,))

    def close(self) -> None:
        self._con.close()


class RedisStream(TransactionStream):
    kind = "redis"

    def __init__(self, url: str, name: str, group: str = CONSUMER_GROUP, consumer: str = CONSUMER,
                 maxlen: int | None = None) -> None:
        """`maxlen`: each XADD trims the stream to about that many entries (MAXLEN ~, cheap: whole macro nodes);
        None or 0: never trimmed."""
        import redis  # here, not at import: Definitions load without it

        self.name = name
        self.maxlen = maxlen or None
        self.group, self.consumer = group, consumer
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._error = redis.ResponseError

    @staticmethod
    def position_key(position: str) -> tuple[int, int]:
        ms, _, seq = position.partition("-")
        return (int(ms), int(seq or 0))

    def _ensure_group(self) -> None:
        try:
            self._redis.xgroup_create(self.name, self.group, id="0", mkstream=True)
        except self._error as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def append(self, events: Iterable[Mapping[str, str] | str]) -> list[str]:
        # A Redis entry is always a field map: something that is not an object travels as its text in `raw`.
        pipe = self._redis.pipeline(transaction=True)
        for e in events:
            pipe.xadd(self.name, dict(e) if isinstance(e, Mapping) else {"raw": str(e)}, maxlen=self.maxlen,
                      approximate=True)
        return list(pipe.execute())

    def _event(self, position: str, fields: dict | None) -> Event:
        fields = fields or {}
        written_at = self.position_key(position)[0] / 1000
        if set(fields) == {"raw"}:
            return Event(position, fields["raw"], written_at)
        return Event(position, fields, written_at)

    def peek(self, after: str | None, limit: int) -> list[Event]:
        start = f"({after}" if after else "-"
        return [self._event(p, f) for p, f in self._redis.xrange(self.name, start, "+", count=limit)]

    def consume(self, after: str | None, until: str | None, limit: int) -> list[Event]:
        """The consumer's pending entries first (delivered before, never acknowledged: a killed predecessor's
        batch), then new ones. Entries at or before `after` were committed by a load killed before its XACK: they
        are acknowledged now, not loaded again. Entries past `until` stay pending for the next batch."""
        self._ensure_group()
        committed = self.position_key(after) if after else None
        kept: list[tuple[str, dict | None]] = []
        # "0" and then the last id read: the pending entries list in order; ">": entries never delivered.
        for start in ("0", ">"):
            while len(kept) < limit:
                reply = self._redis.xreadgroup(self.group, self.consumer, {self.name: start}, count=limit - len(kept))
                entries = [entry for _, stream_entries in reply or [] for entry in stream_entries]
                if not entries:
                    break
                done = [p for p, _ in entries if committed and self.position_key(p) <= committed]
                if done:
                    self.ack(done)
                kept.extend(e for e in entries if not committed or self.position_key(e[0]) > committed)
                start = entries[-1][0] if start != ">" else start
        bound = self.position_key(until) if until else None
        return [self._event(p, f) for p, f in kept if bound is None or self.position_key(p) <= bound]

    def ack(self, positions: Iterable[str]) -> None:
        positions = list(positions)
        for i in range(0, len(positions), 10_000):
            self._redis.xack(self.name, self.group, *positions[i:i + 10_000])

    def backlog(self, after: str | None) -> Backlog:
        """From the consumer group's own bookkeeping (O(1), no scan): entries never delivered (`lag`) plus
        those delivered but not acknowledged; the ack follows the commit, so this is what is not yet loaded."""
        info = self._redis.xinfo_stream(self.name) if self._redis.exists(self.name) else {}
        total = int(info.get("entries-added", info.get("length", 0)) or 0)
        newest = info.get("last-generated-id") if total else None
        groups = {g["name"]: g for g in self._redis.xinfo_groups(self.name)} if info else {}
        group = groups.get(self.group)
        if group is None:
            first = self._redis.xrange(self.name, "-", "+", count=1) if info else []
            oldest = self.position_key(first[0][0])[0] / 1000 if first else None
            return Backlog(int(info.get("length", 0) or 0), oldest, newest, total)
        pending = self._redis.xpending(self.name, self.group)
        lag = int(group.get("lag") or 0)
        if pending["pending"]:
            oldest_id = pending["min"]
        else:
            after_delivered = self._redis.xrange(self.name, f"({group['last-delivered-id']}", "+", count=1)
            oldest_id = after_delivered[0][0] if after_delivered else None
        oldest = self.position_key(oldest_id)[0] / 1000 if oldest_id else None
        return Backlog(lag + int(pending["pending"]), oldest, newest, total)

    def written_since(self, seconds: float, cap: int = 100_000) -> int:
        start = int((time.time() - seconds) * 1000)
        return len(self._redis.xrange(self.name, str(start), "+", count=cap))

    def delete(self) -> None:
        self._redis.delete(self.name)

    def close(self) -> None:
        self._redis.close()


def open_stream(backend: str, name: str, log_path: str | Path | None = None,
                redis_url: str | None = None, group: str = CONSUMER_GROUP,
                consumer: str = CONSUMER, maxlen: int | None = None,
                busy_timeout_seconds: float = 30.0) -> TransactionStream:
    """`group`/`consumer`: the Redis consumer group and consumer that read (ingestion's by default); the embedded
    log has no groups: each reader keeps its own committed position. `maxlen`: Redis only, the approximate cap
    of each XADD; `busy_timeout_seconds`: embedded only, how long a write waits for another writer's lock."""
    if backend == "embedded":
        if not log_path:
            raise ValueError("the embedded stream needs its log file's path")
        return EmbeddedStream(log_path, name, busy_timeout_seconds)
    if backend == "redis":
        if not redis_url:
            raise ValueError("the redis stream needs a Redis URL (PLATFORM_STREAM_REDIS_URL)")
        return RedisStream(redis_url, name, group, consumer, maxlen)
    raise ValueError(f"unknown stream backend {backend!r}")


def last_committed(instance: dg.DagsterInstance) -> dict:
    """The stream metadata of raw_transactions' newest materialization (any partition): how far the loads got,
    as the instance knows it. It may trail DuckDB's committed position (a run killed after its commit); a run
    started from it then only skips the events already committed. (Dagster and the names load here, not at
    import: the simulator, a plain Python producer, imports this module too.)"""
    from platform_assets.lib import names

    event = instance.get_latest_materialization_event(names.RAW_TRANSACTIONS)
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()
            if k in (names.STREAM_COMMITTED_POSITION, names.STREAM_EVENTS_PER_SECOND) and v.value != ""}
