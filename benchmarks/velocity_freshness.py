"""Velocity features: event -> visible in the online store (p50/p95/p99), at fixed rates, vs the raw stream underneath.

    PYTHONPATH=. .venv/bin/python -m benchmarks.velocity_freshness [--backend embedded|redis] [--rates 10,100,500]
        [--seconds 20] [--write push|direct] [--sample-per-second 20] [--out FILE]

For each rate, two phases on loopback, each with an open-loop producer (events due at t0 + i/rate, appended when
due, whatever the readers do), bounded by `--seconds` and `--max-events`:

- raw: the transaction stream alone. A separate reader process polls the stream (`peek` after the newest position
  it saw, every 1 ms) and notes when each sampled event is readable: the engine's own append -> read latency.
- online: the real consumer process (`python -m platform_assets.features.velocity_online`, batches of
  `--batch-events`, its 20 ms poll) between the stream and Feast's SQLite online store. A separate reader process
  polls the online store (`StateStore.read`, the read the serving path makes) every 1 ms for the customers of
  sampled events and notes when each sampled transaction id is in the state: event -> visible online.

The lag of a sampled event is the wall clock (time.time(), one machine) from just before its append to the first
poll that sees it. Throughput: events the consumer read per second of the phase (it keeps up when that equals the
rate). Peak RSS of the consumer from its heartbeat (ru_maxrss). Events are synthetic valid transactions of 2,000
customers and 300 merchants, at the wall clock's instant. One JSON line per (rate, write mode) on stdout and in
`--out`. The demo replays ~7,500 transactions per simulated day; 10 events/s is already 115x real time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values) * 1e3
    return {"n": len(values), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2)}


def _env(work: Path, backend: str, suffix: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    env.update({"PLATFORM_DATA_DIR": str(work), "PLATFORM_PROFILE": "local", "PLATFORM_TRANSACTIONS_SOURCE": "stream",
                "PLATFORM_STREAM_BACKEND": backend, "PLATFORM_STREAM_NAME": f"bench:velocity:tx:{suffix}",
                "PLATFORM_SCORED_STREAM_NAME": f"bench:velocity:scored:{suffix}", "PYTHONPATH": str(ROOT),
                "DO_NOT_TRACK": "1"})
    return env


def _settings(env: dict):
    os.environ.update(env)
    from platform_assets.settings import load_settings

    return load_settings()


def reader(env: dict, mode: str, samples, results, ready) -> None:
    """In its own process: poll the stream (raw) or the online store (online) for the sampled events."""
    settings = _settings(env)
    pending: dict[str, tuple[str, float]] = {}  # transaction id -> (customer, sent at)
    seen_at: dict[str, float] = {}  # raw: when each event was first readable (a sample may arrive after it)
    lags: list[float] = []
    polls = 0
    if mode == "raw":
        from platform_assets.lib.transaction_stream import open_stream

        stream = open_stream(settings.stream_backend, settings.stream_name, log_path=settings.stream_log_path,
                             redis_url=settings.stream_redis_url)
        after = None
    else:
        from platform_assets.features.velocity_online import StateStore
        from platform_assets.resources.profile import build_resources

        states = StateStore(build_resources(settings)["feast"].store())
    ready.set()
    done = False
    while not done or pending:
        while True:
            try:
                item = samples.get_nowait()
            except Exception:  # noqa: BLE001 (queue.Empty)
                break
            if item is None:
                done = True
                deadline = time.time() + 30
            elif item[0] in seen_at:
                lags.append(seen_at.pop(item[0]) - item[2])
            else:
                pending[item[0]] = (item[1], item[2])
        if done and time.time() > deadline:
            break
        if pending:
            polls += 1
            now = time.time()
            if mode == "raw":
                events = stream.peek(after, 10_000)
                if events:
                    after = events[-1].position
                seen = {e.fields.get("transaction_id") for e in events if isinstance(e.fields, dict)}
                seen_at.update((t, now) for t in seen if t not in pending)
            else:
                got = states.read(sorted({c for c, _ in pending.values()}))
                seen = {tid for s in got.values() if s is not None for tid in s.transaction_ids}
            for tid in [t for t in pending if t in seen]:
                lags.append(now - pending.pop(tid)[1])
        elif mode == "raw":  # keep up with the stream between samples
            now = time.time()
            events = stream.peek(after, 10_000)
            if events:
                after = events[-1].position
                seen_at.update((e.fields.get("transaction_id"), now) for e in events if isinstance(e.fields, dict))
        time.sleep(0.001)
    results.put({"lags": lags, "lost": len(pending), "polls": polls})


def produce(settings, rate: float, seconds: float, max_events: int, sample_every: int, samples, rng) -> dict:
    from platform_assets.lib.transaction_stream import open_stream

    stream = open_stream(settings.stream_backend, settings.stream_name, log_path=settings.stream_log_path,
                         redis_url=settings.stream_redis_url)
    total = min(max_events, int(rate * seconds))
    append_s: list[float] = []
    start = time.perf_counter()
    run = uuid.uuid4().hex[:6]
    i = 0
    late = 0.0
    while i < total:
        due = start + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        # every event due by now goes in one append (open loop: a slow append delays nobody's schedule)
        now = time.perf_counter()
        n = max(1, min(total - i, int((now - start) * rate) - i + 1))
        late = max(late, now - due)
        events, sampled = [], []
        for j in range(i, i + n):
            customer = f"C{int(rng.integers(0, 2_000)):05d}"
            tid = f"B{run}x{j}"
            stamp = datetime.now(UTC).isoformat(timespec="microseconds")
            events.append({"transaction_id": tid, "customer_id": customer,
                           "merchant_id": f"M{int(rng.integers(0, 300)):04d}",
                           "amount": f"{int(rng.integers(1, 50_000)) / 100:.2f}", "currency": "EUR",
                           "channel": "online", "event_ts": stamp, "sent_at": stamp})
            if j % sample_every == 0:
                sampled.append((tid, customer))
        sent = time.time()
        t = time.perf_counter()
        stream.append(events)
        append_s.append(time.perf_counter() - t)
        for tid, customer in sampled:
            samples.put((tid, customer, sent))
        i += n
    elapsed = time.perf_counter() - start
    stream.close()
    return {"events": total, "seconds": round(elapsed, 3), "achieved_rate": round(total / elapsed, 1),
            "appends": len(append_s), "append_p99_ms": round(float(np.percentile(append_s, 99)) * 1e3, 2),
            "max_behind_schedule_ms": round(late * 1e3, 1)}


def _stop(process, grace: float = 10.0) -> None:
    """Terminate -> wait -> kill a consumer (subprocess.Popen) or reader (multiprocessing.Process) still running."""
    if process is None:
        return
    if isinstance(process, subprocess.Popen):
        if process.poll() is None:
            process.terminate()  # SIGTERM: the consumer finishes its batch and exits 0
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(grace)
        return
    if process.is_alive():
        process.terminate()
        process.join(grace)
        if process.is_alive():
            process.kill()
            process.join(grace)


def phase(args, work: Path, rate: float, mode: str, write: str) -> dict:
    """One measured phase. Whatever fails (a consumer that never starts, a reader that never answers), its
    processes are stopped (terminate, then kill) and its Redis streams deleted before the exception leaves."""
    suffix = uuid.uuid4().hex[:8]
    env = _env(work / f"{mode}-{write}-{int(rate)}-{suffix}", args.backend, suffix)
    Path(env["PLATFORM_DATA_DIR"]).mkdir(parents=True)
    settings = _settings(env)
    from platform_assets.lib.velocity_consumer import read_heartbeat

    consumer = proc = None
    try:
        if mode == "online":
            from platform_assets.features.registry import apply_repo
            from platform_assets.resources.profile import build_resources

            feast = build_resources(settings)["feast"]
            apply_repo(feast.store(), feast.feature_objects().all())
            consumer = subprocess.Popen([sys.executable, "-m", "platform_assets.features.velocity_online",
                                         "--write", write, "--batch-events", str(args.batch_events),
                                         "--log-level", "warning"],
                                        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 120
            while (read_heartbeat(settings) or {}).get("state") != "running":
                if consumer.poll() is not None:
                    raise RuntimeError(f"the consumer did not start: {consumer.stderr.read()[-2000:]}")
                if time.time() > deadline:
                    raise RuntimeError("the consumer did not start within 120 s")
                time.sleep(0.2)
        ctx = mp.get_context("spawn")
        samples, results, ready = ctx.Queue(), ctx.Queue(), ctx.Event()
        proc = ctx.Process(target=reader, args=(env, mode, samples, results, ready))
        proc.start()
        if not ready.wait(120):
            raise RuntimeError("the reader did not start within 120 s")
        sample_every = max(1, int(rate // args.sample_per_second))
        produced = produce(settings, rate, args.seconds, args.max_events, sample_every, samples,
                           np.random.default_rng(int(rate)))
        samples.put(None)
        got = results.get(timeout=120)
        proc.join(30)
        row = {"mode": mode, "rate": rate, "backend": args.backend, "sample_every": sample_every, **produced,
               "lag": _percentiles(got["lags"]),
               "samples_lost": got["lost"], "reader_polls": got["polls"]}
        if consumer is not None:
            time.sleep(1.2)  # one more heartbeat
            beat = read_heartbeat(settings) or {}
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(30)
            beat = read_heartbeat(settings) or beat
            row.update({"write": write, "consumer_events_read": beat.get("events_read"),
                        "consumer_batches": beat.get("batches"), "consumer_peak_rss_mb": beat.get("peak_rss_mb"),
                        "consumer_throughput_eps": round((beat.get("events_read") or 0) / produced["seconds"], 1),
                        "refused": beat.get("refused_total"), "last_batch": beat.get("last_batch")})
        return row
    finally:
        _stop(proc)
        _stop(consumer)
        if args.backend == "redis":
            import redis

            redis.Redis.from_url(settings.stream_redis_url).delete(settings.stream_name, settings.scored_stream_name)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("embedded", "redis"), default="embedded")
    parser.add_argument("--rates", default="10,100,500")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-events", type=int, default=20_000)
    parser.add_argument("--write", default="push", help="push, direct or push,direct")
    parser.add_argument("--batch-events", type=int, default=1_000)
    parser.add_argument("--sample-per-second", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="velocity-bench-") as tmp:
        for rate in (float(r) for r in args.rates.split(",")):
            raw = phase(args, Path(tmp), rate, "raw", "-")
            for write in args.write.split(","):
                online = phase(args, Path(tmp), rate, "online", write)
                online["raw_lag"] = raw["lag"]
                online["raw_append_p99_ms"] = raw["append_p99_ms"]
                online["raw_samples_lost"] = raw["samples_lost"]
                if raw["lag"].get("p99_ms") and online["lag"].get("p99_ms"):
                    online["p99_ratio_vs_raw"] = round(online["lag"]["p99_ms"] / raw["lag"]["p99_ms"], 1)
                online.update({"machine": f"{platform.machine()} {os.cpu_count()} cpu", "python": platform.python_version(),
                               "at": datetime.now(UTC).isoformat(timespec="seconds")})
                print(json.dumps(online), flush=True)
                rows.append(online)
                if args.out:
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    with args.out.open("a") as out:
                        out.write(json.dumps(online) + "\n")
    return rows


if __name__ == "__main__":
    main()
