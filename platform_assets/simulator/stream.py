"""Replays simulated days as the transaction event stream, at a chosen speed.

`python -m platform_assets.simulator.stream` (or `replay_days` from the demo) sends exactly the rows the landing
zone of the same `SimulationConfig` would hold, malformed ones included (`simulate_day` + `corrupt_transactions`,
with the landing writer's seeds), one event per row: so the raw tables and the quarantine count the same
whichever way a day arrives. Each event carries `sent_at`, the simulated clock when the switch sent it: the
transaction's own time, also for a row whose `event_ts` the corruption broke, and a re-sent duplicate goes right
after its original. Events are sent in `sent_at` order, open loop: at `speed` 60 one simulated hour takes one
wall-clock minute whatever the consumer does; `speed=None` sends as fast as the stream takes them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from platform_assets.lib.transaction_stream import SENT_AT, TRANSACTION_FIELDS, TransactionStream, open_stream
from platform_assets.simulator.generator import SimulationConfig, build_world, simulate_day
from platform_assets.simulator.landing import corrupt_transactions

# Events appended per call at full speed, and the longest a paced producer holds events before appending them.
MAX_BATCH = 5_000
FLUSH_SECONDS = 0.05


@dataclass(frozen=True)
class Replay:
    days: int
    events: int
    malformed: int
    first_position: str | None
    last_position: str | None
    seconds: float


def day_events(config: SimulationConfig, world, day_index: int) -> tuple[list[tuple[datetime, dict]], int]:
    """The events of one simulated day in send order, each with its simulated send time, and how many of its
    rows are malformed (as the landing writer counts them)."""
    batch = simulate_day(config, world, day_index)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, day_index, 77]))
    text, broken = corrupt_transactions(batch.transactions, config.malformed_rate, rng)
    happened = batch.transactions.column("event_ts").to_pylist()
    sent_by_id = dict(zip(batch.transactions.column("transaction_id").to_pylist(), happened, strict=True))
    columns = {c: text.column(c).to_pylist() for c in TRANSACTION_FIELDS}
    events = []
    for i in range(text.num_rows):
        fields = {c: ("" if columns[c][i] is None else columns[c][i]) for c in TRANSACTION_FIELDS}
        # The first rows are the day's transactions in order; the rest re-send some of them (duplicates).
        sent = happened[i] if i < len(happened) else sent_by_id[fields["transaction_id"]]
        events.append((sent, {**fields, SENT_AT: sent.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}))
    events.sort(key=lambda e: e[0])  # stable: a duplicate follows its original
    return events, broken


def replay_days(config: SimulationConfig, days: Iterable[int] | None = None, stream: TransactionStream | None = None,
                speed: float | None = None, on_append: Callable[[list[str]], None] | None = None,
                **stream_args) -> Replay:
    """Send the simulated days `days` (indices into the config's window; default all) to `stream` (or one opened
    by `open_stream(**stream_args)`), `speed` simulated seconds per wall second (None: as fast as possible).
    `on_append` hears of every appended batch's positions (the benchmark times them)."""
    own = stream is None
    stream = stream or open_stream(**stream_args)
    world = build_world(config)
    indices = list(range(config.days)) if days is None else sorted(days)
    started = time.perf_counter()
    sent_positions: list[str] = []  # the first and the last position appended
    total = malformed = 0
    sim_origin: datetime | None = None

    def flush(pending: list[dict]) -> float:
        if pending:
            appended = stream.append(pending)
            sent_positions[:] = [(sent_positions or appended)[0], appended[-1]]
            if on_append is not None:
                on_append(appended)
            pending.clear()
        return time.perf_counter()

    try:
        for day_index in indices:
            events, broken = day_events(config, world, day_index)
            malformed += broken
            total += len(events)
            pending: list[dict] = []
            flushed = time.perf_counter()
            for sent, fields in events:
                if speed is not None:
                    sim_origin = sim_origin or sent
                    due = started + (sent - sim_origin).total_seconds() / speed
                    if due > time.perf_counter():
                        flushed = flush(pending)
                        time.sleep(max(0.0, due - flushed))
                pending.append(fields)
                if len(pending) >= MAX_BATCH or (speed is not None and time.perf_counter() - flushed >= FLUSH_SECONDS):
                    flushed = flush(pending)
            flush(pending)
    finally:
        if own:
            stream.close()
    first, last = sent_positions or (None, None)
    return Replay(len(indices), total, malformed, first, last, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    from platform_assets.settings import load_settings, write_sources_file

    settings = load_settings()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--end", type=date.fromisoformat, default=yesterday, help="last day of the simulated window")
    parser.add_argument("--days", type=int, default=90, help="days in the window (as for the landing files)")
    parser.add_argument("--replay", default=None,
                        help="which days of the window to send, as indices FIRST:LAST (default: all)")
    parser.add_argument("--speed", default="max", help="simulated seconds per wall second (60: an hour a minute), "
                                                       "or max")
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=300)
    parser.add_argument("--transactions-per-day", type=int, default=2_500)
    parser.add_argument("--fraud-rate", type=float, default=0.01)
    parser.add_argument("--malformed-rate", type=float, default=0.0005)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--card-testing-bursts-per-day", type=float, default=0.0,
                        help="card-testing / account-takeover bursts a day (Poisson mean; 0: none)")
    args = parser.parse_args(argv)
    config = SimulationConfig(
        start_date=args.end - timedelta(days=args.days - 1), days=args.days, n_customers=args.customers,
        n_merchants=args.merchants, transactions_per_day=args.transactions_per_day, fraud_rate=args.fraud_rate,
        malformed_rate=args.malformed_rate, seed=args.seed,
        card_testing_bursts_per_day=args.card_testing_bursts_per_day)
    days = None
    if args.replay:
        first, _, last = args.replay.partition(":")
        days = range(int(first), int(last or first) + 1)
    speed = None if args.speed == "max" else float(args.speed)
    modes = {**settings.sources.as_dict(), "transactions": "stream"}
    write_sources_file(settings.data_dir, modes, config.start_date)
    replay = replay_days(config, days, speed=speed, backend=settings.stream_backend, name=settings.stream_name,
                         log_path=settings.stream_log_path, redis_url=settings.stream_redis_url)
    print(f"stream {settings.stream_name} ({settings.stream_backend}): {replay.events:,} events of {replay.days} "
          f"day(s), {replay.malformed} malformed, positions {replay.first_position}..{replay.last_position}, "
          f"in {replay.seconds:.1f}s")


if __name__ == "__main__":
    main()
