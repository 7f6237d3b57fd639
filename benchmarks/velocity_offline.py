"""Offline cost of the velocity features: the state log and the point-in-time join + velocity UDF of a training set,
against DuckDB computing the same counts directly with window aggregates, at 1M and 10M transactions.

    PYTHONPATH=. .venv/bin/python -m benchmarks.velocity_offline [--sizes 1m,10m] [--work DIR] [--out FILE]
    make bench-velocity SIZES=1m,10m

Per size, each stage in a process of its own (so its peak RSS, `ru_maxrss`, is its own), in this order:

- `data`: the simulator writes the transactions (demo-shaped world scaled up: 40 days, 0.8 customers per daily
  transaction, 2 card-testing bursts a day per 2,500 transactions), as the columns of `int_transactions_enriched`
  the mart reads (DECIMAL(18,2) amounts, UTC microsecond times). Generated, never downloaded; not timed.
- `state_log` (ours): the dbt model `fct_customer_recent_transactions` exactly as written (its SQL rendered with
  `ref`/`var` bound to this data), run by DuckDB with the warehouse's limits (2 threads, 4 GB) and exported to
  parquet as the mart's export is: the offline state log.
- `pit_udf` (ours): the training set's path for the velocity features: entity rows (every transaction, with
  `transaction_us`) in time-ordered chunks of the builder's 1M rows, `lib.training_sets.join_features` = Feast
  `get_historical_features` with our offline store (`AsofDuckDBOfflineStore`, `filter_by_created_timestamp`)
  over the state log, then Feast applying the `velocity_features` ODFV (`velocity_features_from_state`). The
  feature service holds only `velocity_features`: the daily views cost what they cost without velocity.
- `raw`: one DuckDB query computing the 13 features from the transactions with window aggregates
  (`RANGE BETWEEN W PRECEDING AND 1 PRECEDING` on integer microseconds: exactly `t - W <= e < t`).
- `check`: every feature of every row of `pit_udf` equals `raw`'s (counted, not sampled).

One JSON line per stage: wall seconds of the measured work, rows, rows/s, peak RSS; `summary` lines give ours
(state log + join + UDF) over raw.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
DAYS = 40
START = date(2026, 1, 5)
CHUNK_ROWS = 1_000_000  # features/training_set_builder.DEFAULT_CHUNK_ROWS
DUCKDB_SETTINGS = {"threads": 2, "memory_limit": "4GB"}  # dbt's profile here (PLATFORM_DUCKDB_MEMORY_LIMIT)
WINDOWS = (("10m", 600), ("1h", 3_600), ("24h", 86_400))
FEATURES = ([f"cust_txn_count_{w}" for w, _ in WINDOWS] + [f"cust_amount_sum_{w}" for w, _ in WINDOWS]
            + ["cust_distinct_merchants_1h"] + [f"cm_txn_count_{w}" for w, _ in WINDOWS]
            + [f"cm_amount_sum_{w}" for w, _ in WINDOWS])


def peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_s() -> float:
    """CPU seconds of this process, every thread (DuckDB's included): on a loaded machine wall time measures the
    machine, CPU time the work."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _connect(temp_dir: Path | None = None):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for key, value in DUCKDB_SETTINGS.items():
        con.execute(f"SET {key} = '{value}'")
    if temp_dir is not None:
        con.execute(f"SET temp_directory = '{temp_dir}'")
    return con


# -- data --------------------------------------------------------------------------------------------------------

def world(size: int):
    from platform_assets.simulator import SimulationConfig

    per_day = size // DAYS
    return SimulationConfig(start_date=START, days=DAYS, n_customers=max(per_day * 4 // 5, 100),
                            n_merchants=max(per_day * 3 // 25, 30), transactions_per_day=per_day,
                            card_testing_bursts_per_day=2.0 * per_day / 2_500, malformed_rate=0.0, seed=18)


def stage_data(size: int, work: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from platform_assets.simulator import build_world, simulate_day

    config = world(size)
    w = build_world(config)
    schema = pa.schema([("transaction_id", pa.string()), ("customer_id", pa.string()), ("merchant_id", pa.string()),
                        ("event_ts", pa.timestamp("us", tz="UTC")), ("amount", pa.decimal128(18, 2))])
    path = work / "transactions.parquet"
    rows, started = 0, time.perf_counter()
    with pq.ParquetWriter(path, schema) as writer:
        for day in range(config.days):
            t = simulate_day(config, w, day).transactions
            t = t.select(["transaction_id", "customer_id", "merchant_id", "event_ts"]).append_column(
                "amount", t.column("amount").cast(pa.decimal128(18, 2)))
            writer.write_table(t.cast(schema))
            rows += t.num_rows
    return {"rows": rows, "customers": config.n_customers, "merchants": config.n_merchants,
            "bursts_per_day": config.card_testing_bursts_per_day, "seconds": round(time.perf_counter() - started, 2),
            "bytes": path.stat().st_size}


# -- ours: the state log (the dbt model) -------------------------------------------------------------------------

def model_sql(source: str) -> str:
    """The dbt model's SQL as dbt compiles it, `ref` bound to `source` and `var` to dbt_project.yml's vars."""
    import jinja2
    import yaml

    project = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())
    variables = project.get("vars", {})
    text = (ROOT / "dbt_project" / "models" / "marts" / "fct_customer_recent_transactions.sql").read_text()
    template = jinja2.Environment().from_string(text)
    return template.render(ref=lambda name: source, var=lambda name, default=None: variables.get(name, default),
                           config=lambda **_: "", source=lambda *a: source)


def stage_state_log(size: int, work: Path) -> dict:
    exports = work / "exports"
    exports.mkdir(exist_ok=True)
    out = exports / "fct_customer_recent_transactions.parquet"
    con = _connect(work / "duckdb-tmp")
    con.execute(f"CREATE VIEW transactions_source AS SELECT * FROM read_parquet('{work / 'transactions.parquet'}')")
    sql = model_sql("transactions_source")
    started, cpu0 = time.perf_counter(), cpu_s()
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    seconds, cpu = time.perf_counter() - started, cpu_s() - cpu0
    rows, events = con.execute(
        f"SELECT count(*), sum(len(recent_event_us)) FROM read_parquet('{out}')").fetchone()
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "rows": rows, "state_events": int(events),
            "mean_state_length": round(events / rows, 2), "bytes": out.stat().st_size,
            "rows_per_s": round(rows / seconds)}


# -- ours: point-in-time join + UDF through Feast ----------------------------------------------------------------

def velocity_store(work: Path):
    from feast import FeatureService, FeatureStore, RepoConfig

    sys.path.insert(0, str(ROOT / "feature_repo"))
    from fraud_features import build_feature_objects

    from platform_assets.feast_stores.duckdb_offline import STORE_TYPE

    root = work / "feast"
    root.mkdir(exist_ok=True)
    store = FeatureStore(config=RepoConfig(
        repo_path=root, project="velocity_bench", provider="local", registry=str(root / "registry.db"),
        online_store={"type": "sqlite", "path": str(root / "online.db")}, offline_store={"type": STORE_TYPE},
        entity_key_serialization_version=3))
    o = build_feature_objects(work / "exports")
    service = FeatureService(name="velocity_only", features=[o.velocity_features])
    store.apply([o.customer, o.merchant, o.customer_recent_source, o.customer_transactions_push,
                 o.customer_recent_transactions, o.velocity_request, o.velocity_features, service])
    return store


def _entity_chunks(work: Path):
    """Every transaction as an entity row, in time order, in chunks of the training-set builder's size."""
    import pyarrow.parquet as pq

    con = _connect()
    con.execute(f"""CREATE TABLE entity_rows AS SELECT transaction_id, customer_id, merchant_id,
                    event_ts AS event_timestamp, epoch_us(event_ts) AS transaction_us
                    FROM read_parquet('{work / 'transactions.parquet'}') ORDER BY event_ts, transaction_id""")
    path = work / "entity_rows.parquet"
    con.execute(f"COPY entity_rows TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {CHUNK_ROWS})")
    con.close()
    file = pq.ParquetFile(path)
    for batch in file.iter_batches(batch_size=CHUNK_ROWS):
        frame = batch.to_pandas()
        frame["event_timestamp"] = frame["event_timestamp"].dt.tz_convert("UTC")
        yield frame


def stage_pit_udf(size: int, work: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from platform_assets.lib.training_sets import join_features

    store = velocity_store(work)
    out = work / "ours.parquet"
    writer, rows, seconds, chunks, cpu = None, 0, 0.0, 0, 0.0
    limit = int(os.environ.get("VELOCITY_BENCH_MAX_CHUNKS", "0"))  # 0: all (a partial 10M run says so)
    for chunk in _entity_chunks(work):
        if limit and chunks >= limit:
            break
        started, cpu0 = time.perf_counter(), cpu_s()
        joined = join_features(store, chunk, "velocity_only")
        seconds, cpu = seconds + time.perf_counter() - started, cpu + cpu_s() - cpu0
        table = pa.Table.from_pandas(joined[["transaction_id", *FEATURES]], preserve_index=False)
        writer = writer or pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
        rows, chunks = rows + len(joined), chunks + 1
        del joined
    writer.close()
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "rows": rows, "chunks": chunks,
            "rows_per_s": round(rows / seconds), "chunk_limit": limit or None}


def stage_udf_only(size: int, work: Path) -> dict:
    """Where the join's time goes: the same chunks joined to the state arrays only (no ODFV), then the UDF alone."""
    import feast  # noqa: F401  (imports counted in the RSS like the other stages)
    import pandas as pd

    sys.path.insert(0, str(ROOT / "feature_repo"))
    from fraud_features import RECENT_TRANSACTION_FIELDS, velocity_features_from_state

    store = velocity_store(work)
    refs = [f"customer_recent_transactions:{n}" for n in RECENT_TRANSACTION_FIELDS]
    join_s = udf_s = join_cpu = udf_cpu = 0.0
    rows = 0
    for chunk in _entity_chunks(work):
        started, cpu0 = time.perf_counter(), cpu_s()
        joined = store.get_historical_features(entity_df=chunk, features=refs,
                                               filter_by_created_timestamp=True).to_df()
        join_s, join_cpu = join_s + time.perf_counter() - started, join_cpu + cpu_s() - cpu0
        started, cpu0 = time.perf_counter(), cpu_s()
        computed = velocity_features_from_state(joined)
        udf_s, udf_cpu = udf_s + time.perf_counter() - started, udf_cpu + cpu_s() - cpu0
        assert isinstance(computed, pd.DataFrame) and len(computed) == len(chunk)
        rows += len(chunk)
        del joined, computed
    return {"seconds": round(join_s + udf_s, 2), "join_s": round(join_s, 2), "udf_s": round(udf_s, 2),
            "join_cpu_s": round(join_cpu, 2), "udf_cpu_s": round(udf_cpu, 2), "rows": rows,
            "udf_rows_per_s": round(rows / udf_s)}


# -- raw: DuckDB window aggregates -------------------------------------------------------------------------------

def raw_sql(source: str) -> str:
    def frame(partition: str, seconds: int) -> str:
        return (f"(PARTITION BY {partition} ORDER BY event_us RANGE BETWEEN {seconds * 1_000_000} PRECEDING "
                f"AND 1 PRECEDING)")

    columns = []
    for name, seconds in WINDOWS:
        columns.append(f"count(*) OVER {frame('customer_id', seconds)} AS cust_txn_count_{name}")
        columns.append(f"coalesce(sum(cents) OVER {frame('customer_id', seconds)}, 0) / 100 "
                       f"AS cust_amount_sum_{name}")
    columns.append(f"count(DISTINCT merchant_id) OVER {frame('customer_id', 3_600)} AS cust_distinct_merchants_1h")
    for name, seconds in WINDOWS:
        columns.append(f"count(*) OVER {frame('customer_id, merchant_id', seconds)} AS cm_txn_count_{name}")
        columns.append(f"coalesce(sum(cents) OVER {frame('customer_id, merchant_id', seconds)}, 0) / 100 "
                       f"AS cm_amount_sum_{name}")
    return (f"SELECT transaction_id, {', '.join(columns)} FROM (SELECT transaction_id, customer_id, merchant_id, "
            f"epoch_us(event_ts) AS event_us, CAST(amount * 100 AS BIGINT) AS cents FROM {source})")


def stage_raw(size: int, work: Path) -> dict:
    con = _connect(work / "duckdb-tmp")
    started, cpu0 = time.perf_counter(), cpu_s()
    table = con.execute(raw_sql(f"read_parquet('{work / 'transactions.parquet'}')")).arrow().read_all()
    seconds, cpu = time.perf_counter() - started, cpu_s() - cpu0
    import pyarrow.parquet as pq

    pq.write_table(table, work / "raw.parquet")
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "rows": table.num_rows,
            "rows_per_s": round(table.num_rows / seconds)}


def stage_check(size: int, work: Path) -> dict:
    con = _connect(work / "duckdb-tmp")
    differs = " OR ".join(f"o.{f} IS DISTINCT FROM r.{f}" if "count" in f or "distinct" in f
                          else f"abs(o.{f} - r.{f}) > 0.001" for f in FEATURES)
    rows, mismatched, missing = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE {differs}), count(*) FILTER (WHERE r.transaction_id IS NULL)
        FROM read_parquet('{work / 'ours.parquet'}') o LEFT JOIN read_parquet('{work / 'raw.parquet'}') r
        USING (transaction_id)""").fetchone()
    nonzero = con.execute(f"SELECT count(*) FILTER (WHERE cust_txn_count_10m > 0) FROM "
                          f"read_parquet('{work / 'raw.parquet'}')").fetchone()[0]
    return {"rows": rows, "mismatched_rows": mismatched, "missing_rows": missing, "rows_with_10m_events": nonzero}


STAGES = {"data": stage_data, "state_log": stage_state_log, "pit_udf": stage_pit_udf, "udf_only": stage_udf_only,
          "raw": stage_raw, "check": stage_check}
ORDER = ("data", "state_log", "pit_udf", "udf_only", "raw", "check")


def run_stage(stage: str, size: int, work: Path, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DO_NOT_TRACK": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.velocity_offline", "--stage", stage, "--size", str(size),
                           "--work", str(work)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        return {"stage": stage, "size": size, "error": done.stderr[-3000:],
                "wall_s": round(time.perf_counter() - started, 1)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=list(STAGES))
    parser.add_argument("--size", type=int)
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--stages", default=",".join(ORDER))
    parser.add_argument("--work", type=Path, default=None, help="keeps the data between runs (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=3_600, help="seconds a stage may take")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "velocity" / "offline.jsonl")
    args = parser.parse_args(argv)
    if args.stage:
        args.work.mkdir(parents=True, exist_ok=True)
        result = STAGES[args.stage](args.size, args.work)
        print(json.dumps({"stage": args.stage, "size": args.size, **result, "peak_rss_mb": peak_rss_mb()}))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import platform

    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1m": round(os.getloadavg()[0], 2)}
    for label in args.sizes.split(","):
        size = SIZES[label]
        with tempfile.TemporaryDirectory(prefix=f"velocity-{label}-") as tmp:
            work = args.work / label if args.work else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            results = {}
            for stage in args.stages.split(","):
                if stage == "data" and (work / "transactions.parquet").exists():
                    continue
                result = {**run_stage(stage, size, work, args.timeout), "label": label,
                          "load_1m_before": round(os.getloadavg()[0], 2), "machine": machine,
                          "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                results[stage] = result
                print(json.dumps(result), flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(result) + "\n")
                if "error" in result:
                    break
            if all(s in results and "error" not in results[s] for s in ("state_log", "pit_udf", "raw")):
                # a pit_udf limited to its first chunks (VELOCITY_BENCH_MAX_CHUNKS) is scaled to every row, and
                # the summary says so: chunks are independent joins of the same size
                scale = results["raw"]["rows"] / results["pit_udf"]["rows"]
                ours = results["state_log"]["seconds"] + results["pit_udf"]["seconds"] * scale
                raw = results["raw"]["seconds"]
                ours_cpu = results["state_log"].get("cpu_s", 0) + results["pit_udf"].get("cpu_s", 0) * scale
                raw_cpu = results["raw"].get("cpu_s")
                summary = {"stage": "summary", "label": label, "size": size, "ours_s": round(ours, 2),
                           "raw_s": raw, "ratio": round(ours / raw, 2), "ours_cpu_s": round(ours_cpu, 2),
                           "raw_cpu_s": raw_cpu, "cpu_ratio": round(ours_cpu / raw_cpu, 2) if raw_cpu else None,
                           "ours_peak_rss_mb": max(results["state_log"]["peak_rss_mb"],
                                                   results["pit_udf"]["peak_rss_mb"]),
                           "raw_peak_rss_mb": results["raw"]["peak_rss_mb"],
                           "check": results.get("check", {}).get("mismatched_rows"),
                           "pit_udf_extrapolated_from_rows": results["pit_udf"]["rows"] if scale > 1 else None}
                print(json.dumps(summary), flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
