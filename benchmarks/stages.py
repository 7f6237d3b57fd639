"""One benchmark stage in this process: `python -m benchmarks.stages <stage> <variant> --size N --work DIR`.

Each (stage, variant) runs in a fresh process started by `benchmarks.run`, so its peak memory (ru_maxrss) is its
own; it prints one JSON line: wall seconds of the measured work, peak RSS, RSS after imports, and figures of its
own (rows/s, latencies). Variants: `stock` (Feast's own stores and engine), `ours` (platform_assets.feast_stores
or the platform's code), `raw` (the engine underneath doing the same work directly).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd

N_FEATURES = 10
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 10
TTL = timedelta(days=3)
ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class RssSampler:
    """Samples this process's RSS and that of its whole process tree (dbt runs in a child) every `interval`
    seconds on a thread, so a main-job run can say which step its peak belongs to and what the tree held at
    once; ru_maxrss gives only the process's own peak, unattributed."""

    def __init__(self, interval: float = 0.2):
        import threading

        import psutil

        self.interval, self.samples = interval, []
        self._process, self._stop = psutil.Process(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.interval):
            own = self._process.memory_info().rss
            tree = own
            for child in self._process.children(recursive=True):
                try:
                    tree += child.memory_info().rss
                except psutil.Error:
                    pass
            self.samples.append((time.time(), own / 2**20, tree / 2**20))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def tree_peak_mb(self) -> float:
        return max((tree for _, _, tree in self.samples), default=0.0)

    def peak_between(self, start: float, end: float) -> tuple[float, float]:
        """(own, tree) peak RSS in MB sampled in [start, end]."""
        window = [(own, tree) for t, own, tree in self.samples if start <= t <= end]
        return (max((o for o, _ in window), default=0.0), max((t for _, t in window), default=0.0))


def feature_names() -> list[str]:
    return [f"f{i}" for i in range(N_FEATURES)]


# -- synthetic data (written once per size by `benchmarks.run`) -----------------------------------------------

def write_data(size: int, work: Path) -> None:
    """`online.parquet`: `size` entities, one row each, 10 float features (what materialization loads).
    `history.parquet`: size/10 entities x 10 daily rows = `size` feature rows; `entity_rows.parquet`: `size`
    entity rows (random key and time over the 10 days and one day before), for the point-in-time join."""
    rng = np.random.default_rng(0)
    work.mkdir(parents=True, exist_ok=True)
    names = feature_names()
    ids = np.array([f"E{i:09d}" for i in range(size)])
    online = pd.DataFrame({"entity_id": ids,
                           "event_timestamp": pd.Timestamp(T0) + pd.to_timedelta(rng.integers(0, 86_400, size), "s")})
    online["created_timestamp"] = online["event_timestamp"]
    for n in names:
        online[n] = rng.random(size)
    online.to_parquet(work / "online.parquet", index=False, coerce_timestamps="us", allow_truncated_timestamps=True)

    entities = max(size // DAYS, 100)
    keys = np.repeat(ids[:entities], DAYS)
    days = np.tile(np.arange(DAYS), entities)
    history = pd.DataFrame({"entity_id": keys, "event_timestamp": pd.Timestamp(T0) + pd.to_timedelta(days, "D")})
    keep = rng.random(len(history)) > 0.2  # gaps: some of them longer than the TTL
    history = history[keep].reset_index(drop=True)
    history["created_timestamp"] = history["event_timestamp"]
    for n in names:
        history[n] = rng.random(len(history))
    history.to_parquet(work / "history.parquet", index=False, coerce_timestamps="us", allow_truncated_timestamps=True)

    entity_rows = pd.DataFrame({
        "entity_id": ids[rng.integers(0, entities, size)],
        "event_timestamp": pd.Timestamp(T0 - timedelta(days=1))
        + pd.to_timedelta(rng.integers(0, (DAYS + 1) * 86_400, size), "s"),
    })
    entity_rows.to_parquet(work / "entity_rows.parquet", index=False, coerce_timestamps="us",
                           allow_truncated_timestamps=True)


# -- Feast stores -------------------------------------------------------------------------------------------------

def feast_store(work: Path, variant: str, source: str):
    from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64
    from feast.value_type import ValueType

    from platform_assets.feast_stores.arrow_engine import ENGINE_TYPE
    from platform_assets.feast_stores.duckdb_offline import STORE_TYPE as OFFLINE
    from platform_assets.feast_stores.sqlite_online import STORE_TYPE as ONLINE

    root = work / f"feast-{variant}-{source}"
    root.mkdir(exist_ok=True)
    config = {
        "project": "bench", "provider": "local", "registry": str(root / "registry.db"),
        "online_store": {"type": "sqlite" if variant == "stock" else ONLINE, "path": str(root / "online.db")},
        "offline_store": {"type": "duckdb" if variant == "stock" else OFFLINE},
        "entity_key_serialization_version": 3,
    }
    if variant == "ours":
        config["batch_engine"] = {"type": ENGINE_TYPE}
    store = FeatureStore(config=RepoConfig(repo_path=root, **config))
    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="stats", entities=[entity], ttl=TTL, schema=[Field(name=n, dtype=Float64) for n in feature_names()],
        source=FileSource(path=str(work / f"{source}.parquet"), timestamp_field="event_timestamp",
                          created_timestamp_column="created_timestamp"),
    )
    service = FeatureService(name="scoring", features=[view])
    store.apply([entity, view, service])
    return store


def stage_materialize(variant: str, size: int, work: Path) -> dict:
    if variant == "raw":
        import duckdb

        db = work / "raw-online.db"
        db.unlink(missing_ok=True)
        rss0 = current_rss_mb()
        started = time.perf_counter()
        table = duckdb.connect().execute(f"SELECT * FROM read_parquet('{work / 'online.parquet'}')").to_arrow_table()
        con = sqlite3.connect(db)
        cols = ["entity_id", "event_timestamp", *feature_names()]
        con.execute(f"CREATE TABLE t (entity_id TEXT PRIMARY KEY, event_timestamp INTEGER, "
                    f"{', '.join(n + ' REAL' for n in feature_names())}) WITHOUT ROWID")
        ts = table.column("event_timestamp").cast("int64").to_pylist()
        values = [table.column(c).to_pylist() for c in cols if c != "event_timestamp"]
        with con:
            con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})",
                            zip(values[0], ts, *values[1:]))
        con.close()
        seconds = time.perf_counter() - started
    else:
        store = feast_store(work, variant, "online")
        rss0 = current_rss_mb()
        started = time.perf_counter()
        store.materialize(start_date=T0 - timedelta(days=1), end_date=T0 + timedelta(days=2))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": size, "rows_per_second": size / seconds, "rss_before_mb": rss0}


def _percentiles(samples: list[float], cpu: list[float]) -> dict:
    """Wall-clock percentiles, and the same for the thread's CPU time: on cores shared with other work the
    scheduler adds its time slices to the wall clock of a few percent of the calls, never to their CPU time."""
    ms, cpu_ms = np.array(samples) * 1000, np.array(cpu) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "cpu_p50_ms": float(np.percentile(cpu_ms, 50)), "cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
            "calls": len(ms)}


def stage_online_read(variant: str, size: int, work: Path) -> dict:
    """get_online_features(...).to_dict() for 1 and 100 random materialized entities (stage materialize first)."""
    rng = np.random.default_rng(1)
    ids = [f"E{i:09d}" for i in rng.integers(0, size, 20_000)]
    out = {}
    if variant == "raw":
        con = sqlite3.connect(work / "raw-online.db")
        cols = ", ".join(feature_names())

        def read(keys):
            rows = con.execute(f"SELECT entity_id, {cols} FROM t WHERE entity_id IN ({','.join('?' * len(keys))})",
                               keys).fetchall()
            found = {r[0]: r[1:] for r in rows}
            return {n: [found.get(k, (None,) * N_FEATURES)[i] for k in keys] for i, n in enumerate(feature_names())}
    else:
        store = feast_store(work, variant, "online")  # the registry and online db the materialize stage wrote
        service = store.get_feature_service("scoring")

        def read(keys):
            return store.get_online_features(features=service, entity_rows=[{"entity_id": k} for k in keys]).to_dict()
    started = time.perf_counter()
    for entities, calls in ((1, 3000), (100, 300)):
        for i in range(50):  # warm-up
            read(ids[i:i + entities])
        samples, cpu = [], []
        for i in range(calls):
            keys = ids[(i * entities) % 19_000:(i * entities) % 19_000 + entities]
            t, c = time.perf_counter(), time.thread_time()
            result = read(keys)
            cpu.append(time.thread_time() - c)
            samples.append(time.perf_counter() - t)
        assert result[feature_names()[0]][0] is not None
        out[f"{entities}_entity" if entities == 1 else f"{entities}_entities"] = _percentiles(samples, cpu)
    return {"seconds": time.perf_counter() - started, **out}


def stage_training_set(variant: str, size: int, work: Path) -> dict:
    entity_df = pd.read_parquet(work / "entity_rows.parquet")
    entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], utc=True)
    if variant == "raw":
        import duckdb

        rss0 = current_rss_mb()
        started = time.perf_counter()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("entity_rows", entity_df)
        ttl_us = int(TTL.total_seconds() * 1e6)
        features = ", ".join(f"CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL ({ttl_us}) MICROSECOND "
                             f"THEN f.{n} END AS {n}" for n in feature_names())
        frame = con.execute(
            f"SELECT e.entity_id, e.event_timestamp, {features} FROM entity_rows e "
            f"ASOF LEFT JOIN read_parquet('{work / 'history.parquet'}') f "
            "ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_timestamp"
        ).df()
        seconds = time.perf_counter() - started
    else:
        store = feast_store(work, variant, "history")
        service = store.get_feature_service("scoring")
        rss0 = current_rss_mb()
        started = time.perf_counter()
        frame = store.get_historical_features(entity_df=entity_df, features=service).to_df()
        seconds = time.perf_counter() - started
    assert len(frame) == len(entity_df), (len(frame), len(entity_df))
    nulls = int(frame[feature_names()[0]].isna().sum())
    return {"seconds": seconds, "entity_rows": len(entity_df), "null_rows": nulls, "rss_before_mb": rss0}


# -- platform stages ------------------------------------------------------------------------------------------

def stage_definitions_load(variant: str, size: int, work: Path) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from platform_assets.definitions import defs; defs()"], check=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "child_peak_rss_mb": child}


def _training_frame(size: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(size, N_FEATURES)), columns=feature_names())
    logit = frame["f0"] * 1.5 - frame["f1"] + 0.5 * frame["f2"] * frame["f3"] - 4
    frame["is_fraud"] = (rng.random(size) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["event_timestamp"] = pd.Timestamp(T0) + pd.to_timedelta(np.arange(size), "s")
    return frame


def stage_xgboost(variant: str, size: int, work: Path) -> dict:
    """The platform's fit_classifier vs plain xgboost with the same parameters and the same 85/15 split."""
    import xgboost as xgb

    frame = _training_frame(size)
    params = {"n_estimators": 100, "max_depth": 5, "learning_rate": 0.06, "subsample": 0.9,
              "colsample_bytree": 0.9, "min_child_weight": 2.0, "early_stopping_rounds": 1000}
    rss0 = current_rss_mb()
    started = time.perf_counter()
    if variant == "ours":
        from platform_assets.training.evaluation import fit_classifier

        fit_classifier(frame[feature_names()], frame["is_fraud"], frame["event_timestamp"], params)
    else:
        cut = int(size * 0.85)
        x = frame[feature_names()].to_numpy(dtype="float64")
        y = frame["is_fraud"].to_numpy()
        model = xgb.XGBClassifier(objective="binary:logistic", tree_method="hist", eval_metric="aucpr", n_jobs=2,
                                  **params)
        model.fit(x[:cut], y[:cut], eval_set=[(x[cut:], y[cut:])], verbose=False)
    return {"seconds": time.perf_counter() - started, "rows": size, "rounds": 100, "rss_before_mb": rss0}


def stage_drift(variant: str, size: int, work: Path) -> dict:
    """Evidently's DataDriftPreset through the platform's drift_report on `size` current and reference rows
    (`ours`); `sampled` = the same on a 50k-row sample of each side (the report states the largest difference
    of a column's drift score between the two: the error the sample costs)."""
    from platform_assets.monitoring.drift import drift_report, sample

    rng = np.random.default_rng(4)
    reference = pd.DataFrame(rng.normal(size=(size, N_FEATURES)), columns=feature_names())
    current = pd.DataFrame(rng.normal(0.05, 1, size=(size, N_FEATURES)), columns=feature_names())
    if variant == "sampled":
        reference, current = sample(reference, 50_000), sample(current, 50_000)
    rss0 = current_rss_mb()
    started = time.perf_counter()
    summary = drift_report(reference, current, feature_names())
    return {"seconds": time.perf_counter() - started, "rows": len(current), "drift_share": summary.drift_share,
            "column_scores": summary.column_scores, "rss_before_mb": rss0}


DEMO_DAYS = 90


def platform_dir(work: Path) -> Path:
    return work / "platform"


def stage_main_job(variant: str, size: int, work: Path) -> dict:
    """Simulate `size` transactions over 90 days (the demo's shape: 2,500/day and 2,000 customers at 225k),
    then materialize the whole graph as `make demo` does; per-asset compute from the run's step events.
    `stock`: the same with Feast's own stores and engine (a copy of feature_repo/ whose yaml names them)."""
    import dataclasses
    import shutil

    import dagster as dg

    data_dir = platform_dir(work) if variant == "ours" else work / f"platform-{variant}"
    os.environ["PLATFORM_DATA_DIR"] = str(data_dir)
    os.environ.pop("PLATFORM_LANDING_DIR", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["PLATFORM_PROFILE"] = "local"
    from platform_assets.settings import load_settings
    from platform_assets.simulator import SimulationConfig, write_landing_zone
    from platform_assets.tools.demo import materialize_platform

    settings = load_settings()
    if variant == "stock":
        repo = work / "feature_repo_stock"
        shutil.copytree(settings.feature_repo_dir, repo, dirs_exist_ok=True)
        yaml_path = repo / "feature_store.yaml"
        text = yaml_path.read_text()
        for ours, stock in (("platform_assets.feast_stores.sqlite_online.WideSqliteOnlineStore", "sqlite"),
                            ("platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore", "duckdb"),
                            ("platform_assets.feast_stores.arrow_engine.ArrowLocalComputeEngine", "local")):
            text = text.replace(ours, stock)
        yaml_path.write_text(text)
        settings = dataclasses.replace(settings, feature_repo_dir=repo)
    per_day = max(size // DEMO_DAYS, 1)
    config = SimulationConfig(
        start_date=(T0 + timedelta(days=60)).date(), days=DEMO_DAYS, transactions_per_day=per_day,
        n_customers=max(per_day * 4 // 5, 2_000), n_merchants=max(per_day // 8, 300),
        scenario="amount_inflation", scenario_start_day=DEMO_DAYS - 14,
    )
    started = time.perf_counter()
    write_landing_zone(config, settings.landing_dir)
    simulate_seconds = time.perf_counter() - started
    (data_dir / "dagster").mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(data_dir / "dagster")) as instance, RssSampler() as sampler:
        started = time.perf_counter()
        materialize_platform(settings, config.start_date, config.end_date, instance)
        seconds = time.perf_counter() - started
        # Every run of the job (partitions, graph, the scored days, the newest day's monitoring): `seconds` and
        # the peaks cover all of them.
        records = [record for dagster_run in instance.get_runs()
                   for record in instance.get_records_for_run(dagster_run.run_id, limit=100_000).records]
        starts, ends = {}, {}
        for record in records:
            entry = record.event_log_entry
            if entry.step_key and entry.dagster_event is not None:
                kind = entry.dagster_event.event_type_value
                if kind == "STEP_START":
                    starts[entry.step_key] = entry.timestamp
                elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                    ends[entry.step_key] = entry.timestamp
        step_seconds = {k: round(ends[k] - starts[k], 3) for k in starts if k in ends}
        step_peaks = {k: sampler.peak_between(starts[k], ends[k]) for k in step_seconds}
        features = _feature_costs(settings, instance)
    return {**features, "seconds": seconds, "simulate_seconds": simulate_seconds, "transactions": per_day * DEMO_DAYS,
            "customers": config.n_customers, "merchants": config.n_merchants,
            "sum_of_steps_seconds": sum(step_seconds.values()), "steps": step_seconds,
            "tree_peak_rss_mb": round(sampler.tree_peak_mb(), 1),
            "step_peak_rss_mb": {k: round(own, 1) for k, (own, _) in step_peaks.items()},
            "step_tree_peak_rss_mb": {k: round(tree, 1) for k, (_, tree) in step_peaks.items()}}


FEATURE_MARTS = ("fct_customer_daily_features", "fct_merchant_daily_features", "fct_customer_merchant_features")


def _feature_costs(settings, instance) -> dict:
    """What the feature marts cost and what the model got from them: rows per mart, the online store's rows and
    size on disk, the training set's rows and the holdout quality of the model trained on it."""
    import dagster as dg
    import duckdb

    def meta(key: str) -> dict:
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        if event is None:
            return {}
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}

    con = duckdb.connect()
    mart_rows = {m: con.execute("SELECT count(*) FROM read_parquet(?)",
                                [str(settings.exports_dir / f"{m}.parquet")]).fetchone()[0] for m in FEATURE_MARTS}
    con.close()
    online = settings.data_dir / "feast" / "online_store.db"
    model, online_meta = meta("fraud_model"), meta("feast_online_store")
    return {
        "mart_rows": mart_rows,
        "online_rows_written": online_meta.get("rows_written"),
        "online_store_mb": round(sum(f.stat().st_size for f in online.parent.glob(online.name + "*")) / 2**20, 1),
        "training_set_rows": meta("training_set").get("dagster/row_count"),
        "holdout_pr_auc": model.get("holdout_pr_auc"),
        "holdout_roc_auc": model.get("holdout_roc_auc"),
    }


def _dbt_env(work: Path) -> dict:
    return {**os.environ, "PLATFORM_DATA_DIR": str(platform_dir(work)), "PLATFORM_DBT_TARGET": "local"}


def stage_dbt(variant: str, size: int, work: Path) -> dict:
    """`dbt build` (CLI, models and tests) on the main job's warehouse vs the same compiled SQL run directly in
    DuckDB (`raw`: each model's compiled SELECT as a view, a table (incremental models) or a parquet export,
    each test's SELECT counted)."""
    target = work / "dbt-target"
    if variant != "raw":
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--profiles-dir", ".", "--quiet",
                        "--target-path", str(target)], cwd=ROOT / "dbt_project", env=_dbt_env(work), check=True)
        seconds = time.perf_counter() - started
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {"seconds": seconds, "child_peak_rss_mb": child}
    import shutil

    import duckdb

    manifest = json.loads((target / "manifest.json").read_text())
    nodes = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] in ("model", "test")}
    order, seen = [], set()

    def visit(key):
        if key in seen or key not in nodes:
            return
        seen.add(key)
        for dep in nodes[key]["depends_on"]["nodes"]:
            visit(dep)
        order.append(key)

    for key in nodes:
        visit(key)
    copy = work / "raw-warehouse" / "warehouse.duckdb"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(platform_dir(work) / "warehouse" / "warehouse.duckdb", copy)
    exports = work / "raw-exports"
    exports.mkdir(exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(copy))
    con.execute("SET TimeZone = 'UTC'")
    failures = 0
    for key in order:
        node = nodes[key]
        sql = node.get("compiled_code")
        if sql is None:
            raise RuntimeError(f"{key} has no compiled SQL: run the dbt variant first")
        relation = f'"{node["schema"]}"."{node["alias"]}"'
        if node["resource_type"] == "test":
            failures += con.execute(f"SELECT count(*) FROM ({sql}) AS t").fetchone()[0]
        elif node["config"]["materialized"] == "external":
            path = exports / f'{node["alias"]}.parquet'
            con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
            con.execute(f"CREATE OR REPLACE VIEW {relation} AS SELECT * FROM read_parquet('{path}')")
        elif node["config"]["materialized"] in ("table", "incremental"):
            con.execute(f"CREATE OR REPLACE TABLE {relation} AS {sql}")
        else:
            con.execute(f"CREATE OR REPLACE VIEW {relation} AS {sql}")
    con.close()
    return {"seconds": time.perf_counter() - started, "statements": len(order), "failing_test_rows": failures}


STAGES = {
    "main_job": stage_main_job,
    "dbt": stage_dbt,
    "materialize": stage_materialize,
    "online_read": stage_online_read,
    "training_set": stage_training_set,
    "definitions_load": stage_definitions_load,
    "xgboost": stage_xgboost,
    "drift": stage_drift,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=[*STAGES, "data"])
    parser.add_argument("variant")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if args.stage == "data":
        write_data(args.size, args.work)
        return
    result = STAGES[args.stage](args.variant, args.size, args.work)
    result.update({"stage": args.stage, "variant": args.variant, "size": args.size, "peak_rss_mb": peak_rss_mb()})
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
