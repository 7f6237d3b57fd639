"""Ingestion throughput: our loader (pinned dialect, line-level quarantine, strict values, references, manifest)
against the raw engine underneath doing the least the same load needs: DuckDB's own `read_csv` with the same
pinned columns inserting into the same table.

    PYTHONPATH=. .venv/bin/python -m benchmarks.ingestion --rows 1000000 [--days 1] [--out FILE]

Each variant runs in its own fresh process (peak RSS is the process's own), on the same files, best of
`--repeat`. The files are the simulator's (clean), so both variants load every row; the ratio is ours / raw.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

START = date(2026, 3, 1)

CHILD = r"""
import json, resource, sys, time
from datetime import UTC, datetime, timedelta, date
from pathlib import Path
import duckdb
variant, landing, db, start, days = sys.argv[1], Path(sys.argv[2]), sys.argv[3], date.fromisoformat(sys.argv[4]), int(sys.argv[5])
from platform_assets.ingestion.loader import load_source
from platform_assets.ingestion.sources import SOURCES, TRANSACTIONS
from platform_assets.lib.landing import partition_path
con = duckdb.connect(db)
con.execute("SET TimeZone = 'UTC'")
now = datetime.now(UTC)
for snapshot in ("customers", "merchants"):
    load_source(con, SOURCES[snapshot], landing, None, now)
day_list = [start + timedelta(days=i) for i in range(days)]
started = time.perf_counter()
if variant == "ours":
    result = load_source(con, TRANSACTIONS, landing, day_list, now)
    rows = result.rows_loaded
else:
    columns = {c: "VARCHAR" for c in TRANSACTIONS.columns}
    con.execute("CREATE TABLE raw.transactions_floor (transaction_id VARCHAR, customer_id VARCHAR, merchant_id VARCHAR, "
                "amount DECIMAL(18,2), currency VARCHAR, channel VARCHAR, event_ts TIMESTAMPTZ, partition_date DATE)")
    con.begin()
    for day in day_list:
        con.execute("INSERT INTO raw.transactions_floor SELECT transaction_id, customer_id, merchant_id, "
                    "CAST(amount AS DECIMAL(18,2)), currency, channel, CAST(event_ts AS TIMESTAMPTZ), $day FROM "
                    "read_csv($path, columns = $columns, header = true, delim = ',', quote = '\"', auto_detect = false)",
                    {"path": str(partition_path(landing, "transactions", day)), "columns": columns, "day": day})
    con.commit()
    rows = con.execute("SELECT count(*) FROM raw.transactions_floor").fetchone()[0]
seconds = time.perf_counter() - started
print(json.dumps({"variant": variant, "rows": rows, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def simulate(rows: int, days: int, landing: Path) -> int:
    from platform_assets.simulator import SimulationConfig, write_landing_zone

    config = SimulationConfig(start_date=START, days=days, n_customers=max(2_000, rows // 200),
                              n_merchants=max(300, rows // 2_000), transactions_per_day=rows // days,
                              malformed_rate=0.0)
    return write_landing_zone(config, landing).transactions


def measure(variant: str, landing: Path, days: int, work: Path) -> dict:
    db = work / f"{variant}-{time.monotonic_ns()}.duckdb"
    out = subprocess.run([sys.executable, "-c", CHILD, variant, str(landing), str(db), START.isoformat(), str(days)],
                         capture_output=True, text=True, check=True)
    db.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        landing = work / "landing"
        rows = simulate(args.rows, args.days, landing)
        size = sum(p.stat().st_size for p in (landing / "transactions").rglob("*.csv"))
        best = {}
        for variant in ("raw", "ours"):
            runs = [measure(variant, landing, args.days, work) for _ in range(args.repeat)]
            best[variant] = min(runs, key=lambda r: r["seconds"])
            assert best[variant]["rows"] == rows, (variant, best[variant], rows)
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": rows, "days": args.days, "csv_mb": round(size / 1e6, 1),
        **{f"{v}_seconds": round(r["seconds"], 3) for v, r in best.items()},
        **{f"{v}_rows_per_s": round(r["rows"] / r["seconds"]) for v, r in best.items()},
        **{f"{v}_peak_rss_mb": round(r["peak_rss_mb"]) for v, r in best.items()},
        "ratio": round(best["ours"]["seconds"] / best["raw"]["seconds"], 2),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
