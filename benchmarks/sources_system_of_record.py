"""System-of-record ingestion throughput: our path (dlt extraction by cursor, merge into `sor.*`, raw rebuilt by
the landing-file contract) against the raw engine doing the least the same load needs (the same rows read from
the same database with the driver, handed to DuckDB as Arrow and inserted in one statement).

    PYTHONPATH=. .venv/bin/python -m benchmarks.sources_system_of_record [--scales 1,10] [--url URL] [--out FILE]

Scale 1 is the demo's master data (2,000 customers, 300 merchants), scale 10 ten times that. Per scale:
`full` loads every row into an empty warehouse (the first load), `incremental` then loads the changes of the
window's last two days (the daily load), `raw` inserts every row. Without --url each scale gets a fresh SQLite
file; with --url (an empty database, e.g. PostgreSQL) its tables are dropped first. One JSON line per scale.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.processes import peak_rss_mb

START = date(2026, 3, 1)
DAYS = 7


def _config(scale: int):
    from platform_assets.simulator import SimulationConfig

    return SimulationConfig(start_date=START, days=DAYS, n_customers=2_000 * scale, n_merchants=300 * scale,
                            transactions_per_day=500 * scale, malformed_rate=0.0)


def _ours(con, url: str, pipelines_dir: Path) -> dict:
    """Both tables, as the two assets run them; the extraction (dlt) and the rebuild (our contract) timed apart."""
    from platform_assets.ingestion.sources import CUSTOMERS, MERCHANTS
    from platform_assets.ingestion.system_of_record import extract, rebuild_raw

    out = {"rows": 0, "raw_rows": 0, "extract_s": 0.0, "rebuild_s": 0.0}
    for spec in (CUSTOMERS, MERCHANTS):
        t0 = time.perf_counter()
        out["rows"] += extract(con, url, spec, pipelines_dir)
        t1 = time.perf_counter()
        out["raw_rows"] += rebuild_raw(con, spec, datetime.now(UTC)).rows_loaded
        out["extract_s"] += t1 - t0
        out["rebuild_s"] += time.perf_counter() - t1
    out["seconds"] = round(out["extract_s"] + out["rebuild_s"], 3)
    out["extract_s"], out["rebuild_s"] = round(out["extract_s"], 3), round(out["rebuild_s"], 3)
    return out


def _raw(con, url: str) -> tuple[int, float]:
    import pyarrow as pa
    import sqlalchemy as sa

    from platform_assets.simulator.system_of_record import TABLES

    started = time.perf_counter()
    engine = sa.create_engine(url)
    rows = 0
    with engine.connect() as source:
        for table in TABLES:
            result = source.execute(sa.text(f"SELECT * FROM {table}"))
            columns = list(result.keys())
            data = result.fetchall()
            arrow = pa.table({c: [r[i] for r in data] for i, c in enumerate(columns)})
            con.register("_rows", arrow)
            con.execute(f"CREATE OR REPLACE TABLE raw_floor_{table} AS SELECT * FROM _rows")
            con.unregister("_rows")
            rows += len(data)
    engine.dispose()
    return rows, time.perf_counter() - started


def _reset(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as con:
        for table in ("customers", "merchants"):
            con.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def measure(scale: int, url: str | None, work: Path) -> dict:
    import duckdb

    from platform_assets.simulator.system_of_record import apply_system_of_record, change_log

    config = _config(scale)
    log = change_log(config)
    url = url or f"sqlite:///{work / f'sor-{scale}.sqlite'}"
    _reset(url)
    cutoff = log.window_end - timedelta(days=2)
    apply_system_of_record(config, url, cutoff)
    # Imports are paid once per process, not per load: warm them so both variants time the load alone.
    import dlt.sources.sql_database  # noqa: F401
    import pyarrow  # noqa: F401

    con = duckdb.connect(str(work / f"ours-{scale}.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    full = _ours(con, url, work / "dlt")
    changes = apply_system_of_record(config, url, log.window_end).changed
    incremental = {"changes": changes, **_ours(con, url, work / "dlt")}
    con.close()
    floor = duckdb.connect(str(work / f"raw-{scale}.duckdb"))
    raw_rows, raw_s = _raw(floor, url)
    floor.close()
    return {
        "benchmark": "sources_system_of_record", "scale": scale, "backend": url.split(":", 1)[0],
        "customers": config.n_customers, "merchants": config.n_merchants,
        "full": {**full, "rows_per_s": round(full["rows"] / full["seconds"])},
        "incremental": incremental,
        "raw_engine": {"rows": raw_rows, "seconds": round(raw_s, 3), "rows_per_s": round(raw_rows / raw_s)},
        "ratio_full_vs_raw": round(full["seconds"] / raw_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10", help="comma-separated multiples of the demo's master data")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL of an empty database (default: SQLite files)")
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-sor-") as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            line = json.dumps({**measure(scale, args.url, Path(tmp)), "peak_rss_mb": peak_rss_mb()})
            print(line, flush=True)
            if args.out:
                with args.out.open("a") as out:
                    out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
