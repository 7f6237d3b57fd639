"""Chargeback ingestion throughput through the real API service against the raw engine.

    PYTHONPATH=. .venv/bin/python -m benchmarks.sources_chargeback_api [--sizes demo,10x] [--out FILE]

*Ours*: the simulated chargeback API (our command, a subprocess on a free port, no injected failures) read page by
page (500 items a page) by the platform's resource, then received, rebuilt by the landing-file contract (values,
duplicates, references to raw.transactions, quarantine) and the cursor committed in one DuckDB transaction: the
api-mode raw_chargebacks asset without Dagster around it. *Floor*: the same rows, already in memory, inserted into
a DuckDB table of the same types in one statement. Both start from a warehouse holding the world's transactions
(what the references are checked against). Each size measures the backfill of all days but the last in one run,
then the last day alone (what the daily schedule runs). One JSON line per size; the ratio is ours / floor.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import duckdb
import pyarrow as pa

from benchmarks.processes import peak_rss_mb
from platform_assets.ingestion.chargeback_api import committed_cursor, load_chargebacks
from platform_assets.ingestion.loader import ensure_raw_tables
from platform_assets.ingestion.sources import TRANSACTIONS
from platform_assets.resources.chargeback_api import ChargebackApi
from platform_assets.simulator.chargeback_api import (
    chargeback_records,
    start_service,
    stop_service,
    write_chargeback_api_data,
)
from platform_assets.simulator.generator import SimulationConfig, build_world, simulate_day

# The demo's world (`make demo`: 90 days of 2,500 transactions) and ten times its daily volume.
SIZES = {"demo": 2_500, "10x": 25_000}
START = date(2026, 1, 1)
DAYS = 90


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _warehouse(path: Path, config: SimulationConfig) -> None:
    """A warehouse holding the world's transactions, as the references need them."""
    world = build_world(config)
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        ensure_raw_tables(con, TRANSACTIONS)
        now = datetime.now(UTC)
        for i in range(config.days):
            batch = simulate_day(config, world, i).transactions
            con.register("_batch", batch)
            con.execute("INSERT INTO raw.transactions SELECT transaction_id, customer_id, merchant_id, "
                        "CAST(amount AS DECIMAL(18,2)), currency, channel, event_ts, CAST(event_ts AS DATE), $now "
                        "FROM _batch", {"now": now})
            con.unregister("_batch")
        con.execute("CHECKPOINT")


def _floor(path: Path, records: list[dict]) -> float:
    table = pa.table({c: pa.array([r[c] for r in records], pa.string())
                      for c in ("chargeback_id", "transaction_id", "reported_at", "reason")})
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE OR REPLACE TABLE raw.chargebacks_floor (chargeback_id VARCHAR, transaction_id VARCHAR, "
                    "reported_at TIMESTAMPTZ, reason VARCHAR, partition_date DATE)")
        started = time.perf_counter()
        con.register("_rows", table)
        con.execute("INSERT INTO raw.chargebacks_floor SELECT chargeback_id, transaction_id, "
                    "CAST(reported_at AS TIMESTAMPTZ), reason, CAST(CAST(reported_at AS TIMESTAMPTZ) AS DATE) "
                    "FROM _rows")
        seconds = time.perf_counter() - started
        assert con.execute("SELECT count(*) FROM raw.chargebacks_floor").fetchone()[0] == len(records)
    return seconds


def _ours(url: str, db: Path, days: list[date], cursor: str | None) -> tuple[dict, str | None]:
    """One run for `days` as the asset does it: read the API after `cursor`, then load in one transaction."""
    started = time.perf_counter()
    fetched = ChargebackApi(url=url).read(cursor, datetime.combine(days[-1] + timedelta(days=1), clock(), UTC))
    read_seconds = time.perf_counter() - started
    with duckdb.connect(str(db)) as con:
        load, _, new, _ = load_chargebacks(con, days, fetched, cursor, datetime.now(UTC))
        committed = committed_cursor(con)
    seconds = time.perf_counter() - started
    assert load.rows_quarantined == 0, load.quarantine_by_reason
    return {"rows": new, "pages": len(fetched.pages), "seconds": round(seconds, 3),
            "read_seconds": round(read_seconds, 3), "load_seconds": round(seconds - read_seconds, 3),
            "rows_per_s": round(new / seconds)}, committed


def run(size: str, root: Path) -> dict:
    """The backfill of all days but the last in one run, then the last day alone (the daily run)."""
    config = SimulationConfig(start_date=START, days=DAYS, transactions_per_day=SIZES[size])
    records = chargeback_records(config)
    data = write_chargeback_api_data(config, root / "sources")
    ours_db, floor_db = root / "ours.duckdb", root / "floor.duckdb"
    _warehouse(ours_db, config)
    floor_db.write_bytes(ours_db.read_bytes())
    days = [START + timedelta(days=i) for i in range(DAYS)]
    port = _free_port()
    service = start_service(port, data)
    try:
        url = f"http://127.0.0.1:{port}"
        backfill, cursor = _ours(url, ours_db, days[:-1], None)
        daily, _ = _ours(url, ours_db, days[-1:], cursor)
    finally:
        stop_service(service)
    assert backfill["rows"] + daily["rows"] == len(records)
    last_day = [r for r in records if r["reported_at"] >= days[-1].isoformat()]
    result = {"benchmark": "sources_chargeback_api", "size": size, "transactions_per_day": SIZES[size],
              "days": DAYS, "rows": len(records)}
    for name, ours, rows in (("backfill", backfill, [r for r in records if r not in last_day]),
                             ("daily", daily, last_day)):
        floor_seconds = _floor(floor_db, rows)
        result[name] = {**ours, "floor_seconds": round(floor_seconds, 4),
                        "floor_rows_per_s": round(len(rows) / floor_seconds),
                        "ratio": round(ours["seconds"] / floor_seconds, 1)}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="demo,10x", help=f"comma-separated, of {sorted(SIZES)}")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    for size in args.sizes.split(","):
        if size not in SIZES:
            parser.error(f"unknown size {size!r}; one of {sorted(SIZES)}")
        with tempfile.TemporaryDirectory(prefix="bench-chargeback-api-") as tmp:
            line = json.dumps({**run(size, Path(tmp)), "peak_rss_mb": peak_rss_mb()})
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as out:
                out.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
