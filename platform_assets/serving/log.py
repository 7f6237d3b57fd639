"""The prediction log: every served prediction appended to a local file, off the request path.

A request hands its records to a queue and returns; one writer thread drains the queue every `drain_seconds`
(50 ms), writes the batch to the day's file and flushes it to the operating system. What the OS holds survives a
`kill -9` of the service, so an acknowledged prediction is lost only if the process dies within one drain
interval of answering (at most 50 ms plus the write; the tests kill it 0.3 s after the last answer and find
every row). Every second the file is also fsync'ed, which bounds the loss on a power cut to about one second.
The challenger, when there is one, is scored here, in shadow: its score is logged, never returned.

The same thread also appends every scored transaction (its id, customer, merchant, amount, currency, channel,
event_ts) to the scored-transactions stream when one is given (`scored_stream`: a callable opening a
`lib.transaction_stream` stream, opened in the thread, which owns its connection): the online velocity consumer
(features/velocity_online.py) reads it, so the service's own traffic reaches the real-time velocity state within
a batch. A failed append is logged and counted (`stream_dropped`); the file record is written first and never
waits long for it: the embedded scored stream is a SQLite file of its own (never the transaction log's, whose
loaders hold its lock) and its append gives up after 50 ms of another writer's lock (serving/app.py
SCORED_STREAM_BUSY_SECONDS), so the loss bound above holds; on Redis each XADD caps the stream near
`scored_stream_maxlen` entries (MAXLEN ~).

Layout: `<log_dir>/served_date=YYYY-MM-DD/<host>-<pid>-<start>.jsonl`, one JSON object per line, a new file per
process and UTC day (several workers never share a file). A line cut short by a crash is skipped, and counted,
by the `served_predictions` asset that loads a day into the warehouse.

On the shared store (`log_dir` an s3:// URL, the production profile with PLATFORM_SHARED_STORE_URL) an object
cannot be appended to: the writer thread keeps each day's lines in memory and uploads them every `upload_seconds`
(5 s) as one new object, `<log_dir>/served_date=YYYY-MM-DD/<host>-<pid>-<start>-<seq>.jsonl`, never rewritten.
The day is the union of its objects (the reader globs the folder, as locally), so a reader that runs twice reads
the same lines, and a batch whose upload failed is kept and retried with the next one. The loss bound of a
`kill -9` is then the upload interval, not the drain interval; a graceful stop (`close`) uploads everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from platform_assets.lib.transaction_rules import ZERO_DECIMAL_CURRENCIES

log = logging.getLogger("platform_assets.serving")


def day_dir(log_dir: Path, day):
    """The day's folder: a Path locally, an S3 UPath on the shared store."""
    from upath import UPath

    return UPath(log_dir) / f"served_date={day.isoformat()}"


def object_name(stem: str, seq: int) -> str:
    """The name of the `seq`-th object a process uploads to a day's folder on the shared store: unique per process
    and upload, sorted in upload order."""
    return f"{stem}-{seq:08d}.jsonl"


class PredictionLog:
    def __init__(self, log_dir: Path, shadow=None, drain_seconds: float = 0.05, fsync_seconds: float = 1.0,
                 scored_stream=None, upload_seconds: float = 5.0):
        from platform_assets.lib import object_store

        self.remote = object_store.is_remote(log_dir)
        self.log_dir = str(log_dir).rstrip("/") if self.remote else Path(log_dir)
        self.upload_seconds = upload_seconds
        self._pending: dict = {}  # remote: day -> [line bytes] not uploaded yet
        self._pending_rows: dict = {}
        self._seq = 0
        self._last_upload = time.monotonic()
        self.scored_stream = scored_stream  # callable() -> TransactionStream, opened in the writer thread
        self._stream = None
        self._stream_owner: int | None = None
        self.streamed = 0
        self.stream_dropped = 0
        self.shadow = shadow  # callable(records) -> None, fills challenger fields in place
        self.drain_seconds, self.fsync_seconds = drain_seconds, fsync_seconds
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._name = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}.jsonl"
        self._file = None
        self._day = None
        self._last_sync = time.monotonic()
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> PredictionLog:
        if not self.remote:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def append(self, records: list[dict]) -> None:
        self._queue.put(records)

    def _open(self, day):
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        folder = day_dir(self.log_dir, day)
        folder.mkdir(parents=True, exist_ok=True)
        self._file = open(folder / self._name, "ab")  # noqa: SIM115 (held open across batches)
        self._day = day

    def _drain(self) -> list[dict]:
        records: list[dict] = []
        while True:
            try:
                records.extend(self._queue.get_nowait())
            except queue.Empty:
                return records

    def _write(self, records: list[dict]) -> None:
        if self.shadow is not None:
            try:
                self.shadow(records)
            except Exception:  # a broken challenger never costs a champion's record
                log.exception("shadow scoring failed")
        by_day: dict = {}
        for record in records:
            by_day.setdefault(record["served_at"][:10], []).append(record)
        for day_text, rows in sorted(by_day.items()):
            day = datetime.fromisoformat(day_text).date()
            if self.remote:
                self._pending.setdefault(day, []).append(
                    b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in rows))
                self._pending_rows[day] = self._pending_rows.get(day, 0) + len(rows)
                continue
            if day != self._day:
                self._open(day)
            self._file.write(b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in rows))
            self._file.flush()
            self.written += len(rows)
        if self.scored_stream is not None:
            self._publish(records)
        if self.remote and time.monotonic() - self._last_upload >= self.upload_seconds:
            self._upload()
        if self._file is not None and time.monotonic() - self._last_sync >= self.fsync_seconds:
            os.fsync(self._file.fileno())
            self._last_sync = time.monotonic()

    def _upload(self) -> None:
        """Each day's pending lines as one new object (shared store). A failed upload keeps them for the next."""
        from platform_assets.lib import object_store

        self._last_upload = time.monotonic()
        stem = self._name.removesuffix(".jsonl")
        for day in sorted(self._pending):
            data = b"".join(self._pending[day])
            target = f"{day_dir(self.log_dir, day)}/{object_name(stem, self._seq)}"
            try:
                object_store.write_bytes(target, data)
            except Exception:
                log.exception("prediction log upload to %s failed; kept for the next upload", target)
                continue
            self._seq += 1
            self.written += self._pending_rows.pop(day)
            del self._pending[day]

    def _publish(self, records: list[dict]) -> None:
        """The scored transactions to the scored stream, as the switch would send them (text fields)."""
        events = [{"transaction_id": r["transaction_id"], "customer_id": r["customer_id"],
                   "merchant_id": r["merchant_id"], "amount": amount_text(r["amount"], r["currency"]), "currency": r["currency"],
                   "channel": r["channel"], "event_ts": r["event_ts"], "sent_at": r["served_at"]} for r in records]
        try:
            if self._stream is not None and self._stream_owner != threading.get_ident():
                self._stream = None  # opened by the writer thread, which has ended: a connection of our own
            if self._stream is None:
                self._stream = self.scored_stream()
                self._stream_owner = threading.get_ident()
            self._stream.append(events)
            self.streamed += len(events)
        except Exception:  # the stream is down: the prediction is logged anyway, the velocity state misses it
            self.stream_dropped += len(events)
            log.exception("scored-transactions stream append failed (%s records)", len(events))
            if self._stream is not None:
                with contextlib.suppress(Exception):
                    self._stream.close()
                self._stream = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.drain_seconds)
            records = self._drain()
            if records:
                try:
                    self._write(records)
                except Exception:
                    self.dropped += len(records)
                    log.exception("prediction log write failed (%s records)", len(records))
            if self.remote and self._pending and time.monotonic() - self._last_upload >= self.upload_seconds:
                self._upload()  # quiet traffic: what is pending still goes up within the interval
        self._close_stream()

    def _close_stream(self) -> None:
        """The stream's connection belongs to the thread that opened it: closed there, dropped elsewhere."""
        if self._stream is not None and self._stream_owner == threading.get_ident():
            with contextlib.suppress(Exception):
                self._stream.close()
        self._stream = None

    def close(self) -> None:
        """Write what is queued, fsync, close: a graceful stop loses nothing."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        records = self._drain()
        if records:
            self._write(records)
        if self.remote:
            self._upload()
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        self._close_stream()


def amount_text(amount: float, currency: str = "EUR") -> str:
    """A request amount (validated to at most two decimals) as the plain decimal text the contract reads, with
    the currency's number of decimals (lib/transaction_rules.py): none for a zero-decimal currency (JPY 1500 is
    "1500", which the contract accepts, not "1500.00", which it refuses as amount_precision). A zero-decimal
    amount with a fraction keeps it, so the consumer refuses it exactly as the landing contract would."""
    cents = round(float(amount) * 100)
    if currency in ZERO_DECIMAL_CURRENCIES and cents % 100 == 0:
        return str(cents // 100)
    return f"{cents // 100}.{cents % 100:02d}"


def served_at() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
