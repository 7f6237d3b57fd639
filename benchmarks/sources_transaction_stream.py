"""Transaction stream: end-to-end lag (event written -> its row visible in raw.transactions, p50/p99) at the demo's
rate and at 10x, and drain throughput (rows/s) against the raw engine (a plain DuckDB insert of the same rows).

    PYTHONPATH=. .venv/bin/python -m benchmarks.sources_transaction_stream [--backend embedded|redis]
        [--speed 3600] [--seconds 30] [--poll 0.5] [--throughput-days 4] [--out FILE]

The demo's world sends 2,500 transactions per simulated day; `--speed 3600` replays one simulated hour per second
(~104 events/s on average, following the day's hourly profile), and the 10x phase replays at 10x that speed. The
producer is open loop (`simulator.stream.replay_days` at a fixed speed, in its own thread, whatever the consumer
does), bounded by `--seconds` and by the simulated days it has: one day at the demo's speed (24 s at 3600),
ten at 10x. The consumer is ingestion's own micro-batch
(`ingestion.transaction_stream.drain`: receive, rebuild the days through the landing-file contract, commit the
position, in one DuckDB transaction) polling every `--poll` seconds, in process: a Dagster run launched by the
sensor adds its tick interval and run start to this. A row is visible when the batch holding it commits.
Throughput: the whole `--throughput-days` replayed first, then drained in one batch, vs `CREATE TABLE AS` from the
same rows in Arrow (no rules, no quarantine, no rebuild). One JSON line on stdout (and in --out).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np

from benchmarks.processes import peak_rss_mb

START = date(2026, 3, 1)
DEMO_TX_PER_DAY = 2_500


def _warehouse(work: Path, config) -> duckdb.DuckDBPyConnection:
    from platform_assets.ingestion.loader import load_source
    from platform_assets.ingestion.sources import SOURCES
    from platform_assets.simulator import write_landing_zone

    landing = work / "landing"
    write_landing_zone(config, landing)
    con = duckdb.connect(str(work / f"warehouse-{uuid.uuid4().hex[:6]}.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    for snapshot in ("customers", "merchants"):
        load_source(con, SOURCES[snapshot], landing, None, datetime.now(UTC))
    return con


def _open(args, name: str):
    from platform_assets.lib.transaction_stream import open_stream

    return open_stream(args.backend, name, log_path=Path(args.work) / "stream.sqlite", redis_url=args.redis_url)


def lag_phase(args, config, speed: float) -> dict:
    from platform_assets.ingestion.transaction_stream import drain
    from platform_assets.simulator.stream import replay_days

    name = f"bench:transactions:{uuid.uuid4().hex[:8]}"
    consumer_stream = _open(args, name)
    con = _warehouse(Path(args.work), config)
    written: dict[str, float] = {}
    stop = threading.Event()

    def on_append(positions: list[str]) -> None:
        now = time.time()
        written.update(dict.fromkeys(positions, now))
        if time.perf_counter() - started > args.seconds:
            stop.set()
            raise TimeoutError  # bounds the open-loop producer in time

    failures: list[BaseException] = []

    def produce() -> None:
        stream = _open(args, name)  # its own connection, in its own thread
        try:
            replay_days(config, stream=stream, speed=speed, on_append=on_append)
        except TimeoutError:
            pass
        except BaseException as exc:  # noqa: BLE001 (re-raised in the main thread after the join)
            failures.append(exc)
        finally:
            stream.close()
            stop.set()

    lags, batches = [], 0
    started = time.perf_counter()
    producer = threading.Thread(target=produce)
    producer.start()
    try:
        while True:
            done = stop.is_set()
            drained = drain(con, consumer_stream, name, until=None, limit=50_000, lookback_days=35)
            visible = time.time()
            if drained.events:
                batches += 1
                after = consumer_stream.position_key(drained.after) if drained.after else (0, 0)
                until = consumer_stream.position_key(drained.committed)
                lags.extend(visible - t for p, t in list(written.items())
                            if after < consumer_stream.position_key(p) <= until)
            elif done:
                break
            time.sleep(args.poll)
    finally:
        producer.join()
        if args.backend == "redis":
            consumer_stream.delete()
        consumer_stream.close()
        con.close()
    if failures:
        raise failures[0]
    elapsed = time.perf_counter() - started
    lag_ms = np.array(lags) * 1000
    return {"speed": speed, "events": len(written), "events_per_second": round(len(written) / elapsed, 1),
            "batches": batches, "rows_visible": len(lags),
            "lag_ms_p50": round(float(np.percentile(lag_ms, 50)), 1) if lags else None,
            "lag_ms_p99": round(float(np.percentile(lag_ms, 99)), 1) if lags else None,
            "lag_ms_max": round(float(lag_ms.max()), 1) if lags else None}


def throughput_phase(args, config) -> dict:
    import pyarrow as pa

    from platform_assets.ingestion.transaction_stream import drain
    from platform_assets.lib.transaction_stream import TRANSACTION_FIELDS
    from platform_assets.simulator.stream import replay_days

    name = f"bench:transactions:{uuid.uuid4().hex[:8]}"
    stream = _open(args, name)
    try:
        replay = replay_days(config, stream=stream)
        con = _warehouse(Path(args.work), config)
        t0 = time.perf_counter()
        drained = drain(con, stream, name, until=None, limit=replay.events, lookback_days=35)
        ours = time.perf_counter() - t0
        rows = con.execute("SELECT count(*) FROM raw.transactions").fetchone()[0]
        events = stream.peek(None, replay.events)
        con.register("floor_rows", pa.table({c: pa.array([e.fields.get(c, "") for e in events], pa.string())
                          for c in TRANSACTION_FIELDS}))
        t0 = time.perf_counter()
        con.execute("CREATE TABLE raw.transactions_floor AS SELECT transaction_id, customer_id, merchant_id, "
                    "try_cast(amount AS DECIMAL(18,2)) AS amount, currency, channel, "
                    "try_cast(event_ts AS TIMESTAMPTZ) AS event_ts FROM floor_rows")
        raw = time.perf_counter() - t0
        con.close()
    finally:
        if args.backend == "redis":
            stream.delete()
        stream.close()
    return {"events": drained.events, "rows_loaded": rows, "ours_seconds": round(ours, 3),
            "ours_rows_per_second": round(drained.events / ours), "raw_seconds": round(raw, 4),
            "raw_rows_per_second": round(len(events) / raw), "ratio": round(ours / raw, 1)}


def main(argv: list[str] | None = None) -> dict:
    from platform_assets.simulator import SimulationConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("embedded", "redis"), default="embedded")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--speed", type=float, default=3600.0, help="simulated seconds per second, demo phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="bound of each lag phase")
    parser.add_argument("--poll", type=float, default=0.5, help="consumer poll interval")
    parser.add_argument("--throughput-days", type=int, default=4)
    parser.add_argument("--work", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        args.work = args.work or tmp
        # Whole simulated days (the hourly profile averages out): one at the demo's speed, ten at 10x.
        def days(n: int):
            return SimulationConfig(start_date=START, days=n, transactions_per_day=DEMO_TX_PER_DAY)
        record = {
            "benchmark": "sources_transaction_stream", "backend": args.backend, "poll_seconds": args.poll,
            "tx_per_simulated_day": DEMO_TX_PER_DAY, "bound_seconds": args.seconds,
            "demo_rate": lag_phase(args, days(1), args.speed),
            "ten_x": lag_phase(args, days(10), args.speed * 10),
            "throughput": throughput_phase(args, SimulationConfig(start_date=START, days=args.throughput_days,
                                                                  transactions_per_day=DEMO_TX_PER_DAY)),
        }
    line = json.dumps({**record, "peak_rss_mb": peak_rss_mb()})
    print(line)
    if args.out:
        with Path(args.out).open("a") as f:
            f.write(line + "\n")
    return record


if __name__ == "__main__":
    main()
