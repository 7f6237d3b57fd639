"""Training `fraud_model` in-process vs on a Dask LocalCluster of 2 worker processes, at 1M and 10M transactions.

    PYTHONPATH=. .venv/bin/python -m benchmarks.training_dask [--sizes 1m,10m] [--work DIR] [--out FILE]
    make bench-training SIZES=1m,10m

Per size, a **synthetic** training-set snapshot in the builder's exact format (one parquet file in event-time
order, 1M-row row groups as the builder's chunks write, the `split` column, a manifest): the model's real 38
columns (the transaction's 3 inputs + the 35 features of `fraud_detector_v2`, read from feature_repo), every
transaction one row, the newest 15% of days the holdout, ~1.5% fraud from a non-linear score of a few columns.
Building real 10M-row training sets through simulate/ingest/dbt/Feast takes most of an hour here; the trainer reads
only the snapshot, so a synthetic one measures the same code. Generated, not timed.

Then each variant in a process of its own, the code `fraud_model` runs (`training.assets.fit`: read, fit, score the
holdout), with the asset's default `ModelConfig` (400 rounds max, early stopping 40):
- `in_process`: the driver reads the train split as one float32 block and fits (2 threads).
- `dask`: the same process starts `LocalCluster(n_workers=2, processes=True, threads_per_worker=1)` on 127.0.0.1
  (not timed), then `fit(..., client)`: the workers read the split in partitions, xgboost.dask trains.
Wall = `fit` (read + train + holdout scoring). Peak RSS per process: the driver's `ru_maxrss` and, for the Dask
workers, the peak of a psutil sampler (0.1 s) over each worker process; imports included. One JSON line per run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOLDOUT_SHARE = 0.15
ROW_GROUP = 1_000_000


def parse_size(text: str) -> int:
    text = text.lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


def model_columns() -> list[str]:
    """The columns `fraud_model` trains on for fraud_detector_v2, as the builder lists them."""
    import importlib.util

    from feast import FeatureService

    from platform_assets.lib.training_sets import TRANSACTION_FEATURES

    spec = importlib.util.spec_from_file_location("bench_fraud_features", ROOT / "feature_repo" / "fraud_features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    service = next(v for v in vars(module).values() if isinstance(v, FeatureService) and v.name == "fraud_detector_v2")
    names = [f.name for p in service.feature_view_projections for f in p.features]
    return TRANSACTION_FEATURES + [n for n in names if n not in TRANSACTION_FEATURES]


def write_snapshot(out_dir: Path, rows: int, features: list[str], seed: int = 7, row_group: int = ROW_GROUP) -> Path:
    """A snapshot of `rows` transactions over 60 days, written chunk by chunk; returns its manifest path."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    sid = f"synthetic_{rows}"
    path = out_dir / f"{sid}.parquet"
    manifest = out_dir / f"{sid}.json"
    if manifest.exists():
        return manifest
    rng = np.random.default_rng(seed)
    start, seconds = pd.Timestamp("2026-03-01", tz="UTC"), 60 * 86_400
    times = np.sort(rng.uniform(0, seconds, rows))
    holdout_from = seconds * (1 - HOLDOUT_SHARE)
    counts = {"rows": 0, "positives": 0, "holdout_rows": 0, "holdout_positives": 0}
    writer = None
    for lo in range(0, rows, row_group):
        n = min(row_group, rows - lo)
        x = rng.normal(size=(n, len(features))).astype("float64")
        x[rng.random((n, len(features))) < 0.03] = np.nan  # counts without a feature row yet
        a, b, c, d = (np.nan_to_num(x[:, i]) for i in (0, 3, 10, 20))
        logit = -5.0 + 1.2 * a + 0.8 * b * c + 0.9 * (d > 1.0) + 0.5 * np.abs(c)
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
        t = times[lo:lo + n]
        frame = pd.DataFrame(x, columns=features)
        frame.insert(0, "transaction_id", [f"T{i:09d}" for i in range(lo, lo + n)])
        frame.insert(1, "customer_id", rng.integers(0, rows // 10 + 1, n).astype(str))
        frame.insert(2, "merchant_id", rng.integers(0, rows // 80 + 1, n).astype(str))
        frame.insert(3, "event_timestamp", start + pd.to_timedelta(t, unit="s"))
        frame["is_fraud"] = y
        holdout = t >= holdout_from
        frame["split"] = np.where(holdout, "holdout", "train")
        counts["rows"] += n
        counts["positives"] += int(y.sum())
        counts["holdout_rows"] += int(holdout.sum())
        counts["holdout_positives"] += int(y[holdout].sum())
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, coerce_timestamps="us", allow_truncated_timestamps=True)
        writer.write_table(table, row_group_size=row_group)
    writer.close()
    fields = {"snapshot_id": sid, "path": path.name, "feature_service": "fraud_detector_v2",
              "feature_columns": features, "label_column": "is_fraud", "window_start": start.isoformat(),
              "window_end": (start + pd.Timedelta(seconds=seconds)).isoformat(),
              "as_of": (start + pd.Timedelta(seconds=seconds)).isoformat(),
              "holdout_start": (start + pd.Timedelta(seconds=holdout_from)).isoformat(), **counts,
              "content_hash": sid}
    manifest.write_text(json.dumps(fields, indent=2))
    return manifest


class RssSampler:
    """Peak RSS of each of a set of processes, sampled every `interval` seconds in a thread."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1):
        import psutil

        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peaks = dict.fromkeys(pids, 0)
        self.interval, self._stop = interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for name, process in self.processes.items():
                with contextlib.suppress(Exception):  # a process that exited keeps its last peak
                    self.peaks[name] = max(self.peaks[name], process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_variant(variant: str, manifest_path: Path) -> dict:
    """One variant, in this process: the figures of one run."""
    from platform_assets.lib.run_config import ModelConfig
    from platform_assets.lib.training_sets import TrainingSetManifest
    from platform_assets.training.assets import fit

    manifest = TrainingSetManifest.read(manifest_path)
    config = ModelConfig()
    record = {"variant": variant, "rows": manifest.rows, "train_rows": manifest.rows - manifest.holdout_rows,
              "holdout_rows": manifest.holdout_rows, "features": len(manifest.feature_columns),
              "load_1m_before": round(os.getloadavg()[0], 2)}
    if variant == "in_process":
        started = time.perf_counter()
        fitted = fit(manifest, config)
        record["seconds"] = round(time.perf_counter() - started, 2)
        record["peak_rss_mb"] = {"driver": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster, set_as_default=False) as client:
            workers = {f"worker_{i}": w["pid"] for i, w in
                       enumerate(client.run(lambda: {"pid": os.getpid()}).values())}
            with RssSampler(workers) as sampler:
                started = time.perf_counter()
                fitted = fit(manifest, config, client)
                record["seconds"] = round(time.perf_counter() - started, 2)
            record["peak_rss_mb"] = {
                "driver": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                **{name: round(peak / 2**20) for name, peak in sampler.peaks.items()}}
    record.update({"pr_auc": round(fitted.metrics.pr_auc, 5), "roc_auc": round(fitted.metrics.roc_auc, 5),
                   "best_iteration": int(fitted.model.best_iteration), "train_seconds": round(fitted.train_seconds, 2),
                   "trainer": fitted.trainer, "load_1m_after": round(os.getloadavg()[0], 2)})
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--variants", default="in_process,dask")
    parser.add_argument("--work", type=Path, default=None, help="keep the generated snapshots here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "training" / "dask.jsonl")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant in this process
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.manifest)), flush=True)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-training-"))
    features = model_columns()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()
    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        manifest = write_snapshot(work / size_text, size, features)
        records = {}
        for variant in args.variants.split(","):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.training_dask", "--variant", variant, "--manifest", str(manifest)],
                cwd=ROOT, capture_output=True, text=True, timeout=args.timeout, check=False,
                env={**os.environ, "PYTHONPATH": str(ROOT)})
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            record = json.loads(lines[-1]) if out.returncode == 0 and lines else {
                "variant": variant, "error": out.stderr[-3000:], "returncode": out.returncode}
            record.update({"size": size_text, "commit": commit, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                       time.gmtime())})
            records[variant] = record
            with args.out.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
        if {"in_process", "dask"} <= records.keys() and all("seconds" in r for r in records.values()):
            local, dask = records["in_process"], records["dask"]
            summary = {"size": size_text, "summary": True, "commit": commit,
                       "wall_ratio_dask_over_in_process": round(dask["seconds"] / local["seconds"], 2),
                       "pr_auc_difference": round(dask["pr_auc"] - local["pr_auc"], 5),
                       "peak_rss_mb_in_process": local["peak_rss_mb"]["driver"],
                       "peak_rss_mb_dask": dask["peak_rss_mb"]}
            with args.out.open("a") as handle:
                handle.write(json.dumps(summary) + "\n")
            print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
