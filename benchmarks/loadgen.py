"""An open-loop HTTP/1.1 load generator for `make bench-serve` (benchmarks/serving.py).

Open loop: request i is due at t0 + i / rate whatever the server does, and its latency is counted from that
*scheduled* time, not from when it could be written; a server that stalls is charged for every request that
queued behind the stall (no coordinated omission). Requests go out over persistent keep-alive connections: a
request takes an idle connection, or waits for one while another is opened (up to `max_connections`); HTTP/1.1
without pipelining, so a connection carries one request at a time. A request is an error when the answer is not
2xx, when no answer came `timeout` seconds after its scheduled time (its connection is then closed: a late
answer cannot be told from the next one's), or when its connection failed or closed under it (a keep-alive
connection the server closed just as it was reused is retried once, as HTTP clients do, and counted).

The run is bounded: `rate * seconds` requests at most (and `max_requests`), then at most `timeout` seconds of
draining; `run_in_process` also kills the generator process if it overruns. The generator records its own lag
(when its loop got to a request, against the schedule), its service time (answer minus the actual write) and its
own CPU, so a generator that cannot keep up shows up as lag, not as server latency.

Pure helpers (`build_request`, `parse_head`, `chunked_end`, `percentile`, `summarize`, `sustained`) are plain
functions; `run_load` is the asyncio part (uvloop when installed), `run_in_process` runs it in a process of its
own, pinned to one CPU when asked.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field

ERROR_KINDS = ("non_2xx", "timeout", "connect", "connection")


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    requests: tuple[bytes, ...]  # complete HTTP/1.1 requests (build_request), cycled
    rate: float  # requests per second, offered
    seconds: float  # length of the schedule
    max_requests: int | None = None  # hard bound on the count (default: rate * seconds)
    timeout: float = 2.0  # seconds after the scheduled time
    max_connections: int = 256
    initial_connections: int = 4  # opened before t0, so the first requests do not pay the connect
    cpu: int | None = None  # pin the generator's process to this CPU (run_in_process)
    # Wake-ups: the event loop's timers have millisecond resolution, which would add up to ~1 ms of the
    # generator's own lateness to every latency. With `spin` the loop sleeps until ~1.5 ms before the next due
    # request and then polls (I/O still served); it keeps the generator's core busy, so only with a core of its own.
    spin: bool = False
    label: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return scheduled_count(self.rate, self.seconds, self.max_requests)


def scheduled_count(rate: float, seconds: float, max_requests: int | None = None) -> int:
    n = max(0, math.floor(rate * seconds + 1e-9))
    return n if max_requests is None else min(n, int(max_requests))


def build_request(method: str, path: str, host: str, port: int, body: bytes = b"",
                  content_type: str = "application/json", headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    if body or method in ("POST", "PUT", "PATCH"):
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, content length or None, chunked, keep-alive) of a response head (without the blank line)."""
    lines = head.split(b"\r\n")
    first = lines[0]
    version, _, rest = first.partition(b" ")
    status = int(rest[:3])
    length, chunked = None, False
    keep = version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.strip().lower()
            keep = token != b"close" and (keep or token == b"keep-alive")
    if status in (204, 304) or 100 <= status < 200:
        length = 0
    return status, length, chunked, keep


def chunked_end(buf: bytes | bytearray, start: int) -> int:
    """Offset just past a chunked body that starts at `start`, or -1 while it is incomplete."""
    pos = start
    while True:
        crlf = buf.find(b"\r\n", pos)
        if crlf < 0:
            return -1
        size = int(bytes(buf[pos:crlf]).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            if buf[crlf + 2:crlf + 4] == b"\r\n":
                return crlf + 4
            end = buf.find(b"\r\n\r\n", crlf + 2)
            return -1 if end < 0 else end + 4
        pos = crlf + 2 + size + 2
        if pos > len(buf):
            return -1


def percentile(ordered: list[float] | array, q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence (q in 0..100); None when empty."""
    n = len(ordered)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100 * n))
    return float(ordered[min(n, rank) - 1])


# ----------------------------------------------------------------------------------------------- the generator


class _Connection(asyncio.Protocol):
    def __init__(self, gen: _Generator):
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.request: tuple[int, float, float, bool] | None = None  # (index, scheduled, written, retried)
        self.head: tuple[int, int | None, bool, bool] | None = None
        self.head_len = 0
        self.served = 0
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def send(self, index: int, scheduled: float, retried: bool) -> None:
        self.request = (index, scheduled, time.perf_counter(), retried)
        self.gen.busy.add(self)
        self.transport.write(self.gen.payloads[index % len(self.gen.payloads)])

    def data_received(self, data: bytes) -> None:
        if self.request is None:  # nothing asked: a stray byte means the stream is out of step
            self.transport.abort()
            return
        self.buf += data
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                self.head = parse_head(bytes(self.buf[:end]))
            except (ValueError, IndexError):
                self.head = (0, 0, False, False)
            self.head_len = end + 4
        status, length, chunked, keep = self.head
        if chunked:
            total = chunked_end(self.buf, self.head_len)
            if total < 0:
                return
        elif length is None:
            return  # body until the server closes: finished in connection_lost
        else:
            total = self.head_len + length
            if len(self.buf) < total:
                return
        self._finish(status, keep and len(self.buf) == total)

    def _finish(self, status: int, reusable: bool) -> None:
        request, self.request = self.request, None
        self.gen.busy.discard(self)
        self.buf.clear()
        self.head = None
        self.served += 1
        self.gen.answered(self, request, status, reusable)

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.request is not None and self.head is not None and self.head[1] is None and not self.head[2]:
            self._finish(self.head[0], False)  # a body delimited by the close
        self.gen.lost(self)


class _Generator:
    def __init__(self, spec: LoadSpec):
        self.spec = spec
        self.payloads = spec.requests
        self.idle: list[_Connection] = []  # a stack: the most recently used connection goes first
        self.connections: set[_Connection] = set()
        self.busy: set[_Connection] = set()
        self.pending: deque[tuple[int, float, bool]] = deque()
        self.opening = 0
        self.tasks: set[asyncio.Future] = set()
        self.latency = array("d")  # ms from the scheduled time, 2xx answers
        self.service = array("d")  # ms from the actual write, 2xx answers
        self.done_at = array("d")  # s after t0, 2xx answers (for windows)
        self.lag = array("d")  # ms between the scheduled time and when the loop got to the request
        self.errors: Counter = Counter()
        self.statuses: Counter = Counter()
        self.error_at: list[tuple[float, str]] = []
        self.sent = 0
        self.retries = 0
        self.opened = 0
        self.max_open = 0
        self.max_in_flight = 0
        self.last_answer = 0.0
        self.t0 = 0.0

    # -- connections --

    def _can_open(self) -> bool:
        return len(self.connections) + self.opening < self.spec.max_connections and self.opening < len(self.pending)

    async def _open(self, initial: bool = False) -> None:
        """Opens one connection; `self.opening` was counted up by the caller, synchronously, so that the requests
        dispatched in one go do not each see the same count (and open past the cap)."""
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self), self.spec.host, self.spec.port)
        except OSError:
            self.opening -= 1
            if not initial and self.pending:
                _, scheduled, _ = self.pending.popleft()
                self._error("connect", scheduled)
            return
        self.opening -= 1
        self.opened += 1
        if conn.closed:  # closed by the server before this task resumed
            if self.pending and self._can_open():
                self._spawn_open()
            return
        self.connections.add(conn)
        self.max_open = max(self.max_open, len(self.connections))
        self._release(conn)

    def _release(self, conn: _Connection) -> None:
        now = time.perf_counter()
        while self.pending:
            index, scheduled, retried = self.pending.popleft()
            if now - scheduled > self.spec.timeout:
                self._error("timeout", scheduled)
                continue
            conn.send(index, scheduled, retried)
            self.max_in_flight = max(self.max_in_flight, len(self.busy))
            return
        self.idle.append(conn)

    # -- events --

    def dispatch(self, index: int, scheduled: float, now: float) -> None:
        self.lag.append((now - scheduled) * 1000)
        self.sent += 1
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                conn.send(index, scheduled, False)
                self.max_in_flight = max(self.max_in_flight, len(self.busy))
                return
        self.pending.append((index, scheduled, False))
        if self._can_open():
            self._spawn_open()

    def _spawn_open(self) -> None:
        self.opening += 1
        task = asyncio.ensure_future(self._open())
        self.tasks.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self.tasks.discard)

    def answered(self, conn: _Connection, request, status: int, reusable: bool) -> None:
        now = time.perf_counter()
        _, scheduled, written, _ = request
        self.statuses[status] += 1
        if 200 <= status < 300:
            self.latency.append((now - scheduled) * 1000)
            self.service.append((now - written) * 1000)
            self.done_at.append(now - self.t0)
        else:
            self._error("non_2xx", scheduled)
        self.last_answer = now
        if reusable and not conn.closed:
            self._release(conn)
        else:
            conn.transport.close()

    def lost(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.request is not None:
            index, scheduled, _, retried = conn.request
            conn.request = None
            if conn.served > 0 and not conn.buf and not retried:
                # a keep-alive connection the server closed as it was reused: once more on another one
                self.retries += 1
                self.pending.appendleft((index, scheduled, True))
            else:
                self._error("connection", scheduled)
        if self.pending and self._can_open():
            self._spawn_open()

    def _error(self, kind: str, scheduled: float) -> None:
        self.errors[kind] += 1
        self.error_at.append((round(scheduled - self.t0, 3), kind))

    def sweep(self) -> None:
        """Time out what waited too long: requests still waiting for a connection, answers still outstanding."""
        now = time.perf_counter()
        limit = self.spec.timeout
        while self.pending and now - self.pending[0][1] > limit:
            _, scheduled, _ = self.pending.popleft()
            self._error("timeout", scheduled)
        for conn in [c for c in self.busy if now - c.request[1] > limit]:
            _, scheduled, _, _ = conn.request
            conn.request = None
            self.busy.discard(conn)
            self._error("timeout", scheduled)
            conn.transport.abort()

    # -- the run --

    async def run(self) -> dict:
        spec = self.spec
        n = spec.count
        initial = min(spec.initial_connections, spec.max_connections)
        self.opening += initial
        await asyncio.gather(*(self._open(initial=True) for _ in range(initial)))
        interval = 1.0 / spec.rate
        cpu_before = time.process_time()
        self.t0 = t0 = time.perf_counter() + 0.02
        t0_wall = time.time() + (t0 - time.perf_counter())
        end_of_schedule = t0 + n * interval
        sweeper = asyncio.ensure_future(self._sweeper())
        i = 0
        while i < n:
            now = time.perf_counter()
            while i < n and t0 + i * interval <= now:
                self.dispatch(i, t0 + i * interval, now)
                i += 1
            if i >= n:
                break
            delay = t0 + i * interval - time.perf_counter()
            if spec.spin:
                await asyncio.sleep(delay - 0.0015 if delay > 0.002 else 0)
            elif delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
        deadline = max(time.perf_counter(), end_of_schedule) + spec.timeout + 0.1
        while (self.busy or self.pending or self.opening) and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        sweeper.cancel()
        leftover = len(self.busy) + len(self.pending)
        for conn in list(self.busy):
            self._error("timeout", conn.request[1] if conn.request else end_of_schedule)
            conn.request = None
        while self.pending:
            self._error("timeout", self.pending.popleft()[1])
        finished = time.perf_counter()
        cpu = time.process_time() - cpu_before
        for conn in list(self.connections):
            conn.transport.abort()
        await asyncio.sleep(0)
        elapsed = max(end_of_schedule, self.last_answer) - t0
        return {
            "label": spec.label, "rate": spec.rate, "seconds": spec.seconds, "scheduled": n, "sent": self.sent,
            "timeout_s": spec.timeout, "max_connections": spec.max_connections, "spin": spec.spin,
            "latency_ms": self.latency, "service_ms": self.service, "done_at_s": self.done_at, "lag_ms": self.lag,
            "errors": {k: self.errors.get(k, 0) for k in ERROR_KINDS}, "first_errors": self.error_at[:20],
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "retries": self.retries, "connections_opened": self.opened, "max_connections_open": self.max_open,
            "max_in_flight": self.max_in_flight, "left_at_deadline": leftover,
            "elapsed_s": elapsed, "wall_s": finished - t0, "t0_wall": t0_wall, "generator_cpu_s": cpu,
        }

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.sweep()


def run_load(spec: LoadSpec) -> dict:
    """One open-loop run in this process (its own event loop; uvloop when installed). Raw figures: `summarize`."""
    try:
        import uvloop

        factory, loop_name = uvloop.new_event_loop, "uvloop"
    except ImportError:
        factory, loop_name = None, "asyncio"
    with asyncio.Runner(loop_factory=factory) as runner:
        raw = runner.run(_Generator(spec).run())
    raw["loop"] = loop_name
    return raw


def _child(spec: LoadSpec, conn) -> None:
    pinned = None
    try:
        if spec.cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {spec.cpu})
        pinned = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        raw = run_load(spec)
        raw["generator_cpus"] = pinned
    except Exception as error:  # noqa: BLE001 - reported to the parent, which records it
        raw = {"error": f"{type(error).__name__}: {error}", "generator_cpus": pinned}
    conn.send(raw)
    conn.close()


def run_in_process(spec: LoadSpec, grace: float = 20.0) -> dict:
    """`run_load` in a fresh (spawned) process, pinned to `spec.cpu`; killed if it overruns its own bound."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(spec, child), daemon=True)
    process.start()
    child.close()
    limit = spec.count / spec.rate + spec.timeout + grace if spec.rate > 0 else grace
    try:
        raw = parent.recv() if parent.poll(limit) else {"error": f"generator still running after {limit:.0f} s"}
    except EOFError:
        raw = {"error": f"generator exited with {process.exitcode} without a result"}
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)
    parent.close()
    return raw


# ----------------------------------------------------------------------------------------------- the figures


def _spread(values, prefix: str, digits: int = 3) -> dict:
    ordered = sorted(values)
    out = {}
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        v = percentile(ordered, q)
        out[f"{prefix}{name}_ms"] = None if v is None else round(v, digits)
    out[f"{prefix}max_ms"] = round(ordered[-1], digits) if ordered else None
    return out


def summarize(raw: dict, window_seconds: float | None = None) -> dict:
    """The figures of a raw run: rates, latency percentiles (from the schedule, and service time from the write),
    errors by kind, the generator's own lag and CPU; per-window percentiles when `window_seconds` is given."""
    if "error" in raw:
        return {"error": raw["error"]}
    ok = len(raw["latency_ms"])
    answered = sum(raw["statuses"].values())
    elapsed = raw["elapsed_s"] or float("nan")
    errors = dict(raw["errors"])
    out = {
        "offered_rps": raw["rate"], "scheduled": raw["scheduled"], "sent": raw["sent"], "ok": ok,
        "achieved_rps": round(ok / elapsed, 2), "answered_rps": round(answered / elapsed, 2),
        **_spread(raw["latency_ms"], ""),
        "mean_ms": round(sum(raw["latency_ms"]) / ok, 3) if ok else None,
        "errors": sum(errors.values()), "errors_by_kind": errors,
        "statuses": raw["statuses"],
        "unaccounted": raw["scheduled"] - ok - sum(errors.values()),  # 0: each request is an answer or an error
        "first_errors": raw.get("first_errors", []),
        **_spread(raw["service_ms"], "service_"),
        **_spread(raw["lag_ms"], "gen_lag_"),
        "generator_cpu_s": round(raw["generator_cpu_s"], 3),
        "generator_cpu_percent": round(100 * raw["generator_cpu_s"] / raw["wall_s"], 1) if raw["wall_s"] else None,
        "generator_cpus": raw.get("generator_cpus"), "generator_loop": raw.get("loop"),
        "generator_spin": raw.get("spin"),
        "retries": raw["retries"], "connections_opened": raw["connections_opened"],
        "max_connections_open": raw["max_connections_open"], "max_in_flight": raw["max_in_flight"],
        "elapsed_s": round(raw["elapsed_s"], 3), "timeout_s": raw["timeout_s"],
    }
    if window_seconds:
        windows: dict[int, list[float]] = {}
        for at, latency in zip(raw["done_at_s"], raw["latency_ms"]):
            windows.setdefault(int(at // window_seconds), []).append(latency)
        out["windows"] = [{"start_s": k * window_seconds, "ok": len(v), **_spread(v, "")}
                          for k, v in sorted(windows.items())]
    return out


def sustained(summary: dict, p99_bound_ms: float = 50.0, min_ratio: float = 0.99) -> tuple[bool, list[str]]:
    """Whether a run sustained its offered rate: achieved >= min_ratio of offered, p99 below the bound, no error."""
    if "error" in summary:
        return False, [summary["error"]]
    why = []
    if summary["achieved_rps"] < min_ratio * summary["offered_rps"]:
        why.append(f"achieved {summary['achieved_rps']} < {min_ratio:.0%} of {summary['offered_rps']}")
    if summary["p99_ms"] is None or summary["p99_ms"] >= p99_bound_ms:
        why.append(f"p99 {summary['p99_ms']} ms >= {p99_bound_ms} ms")
    if summary["errors"]:
        why.append(f"{summary['errors']} errors {summary['errors_by_kind']}")
    return not why, why
