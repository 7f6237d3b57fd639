"""`make bench SIZE=100k`: every stage, ours vs stock Feast vs the raw engine, each in its own process.

    python -m benchmarks.run --size 100k [--stages materialize,online_read] [--variants stock,ours,raw]

Results are appended to benchmarks/results/<size>.json (one record per stage and variant, with the machine and
its load average), then `python -m benchmarks.report` turns every results file into docs/benchmarks.md and the
scale plot. Work files go to $BENCH_WORK (default /tmp/platform-bench/<size>) and are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

# (stage, variants): the order matters (online_read reads what materialize wrote, dbt needs main_job's warehouse)
PLAN = [
    ("definitions_load", ["ours"]),
    ("materialize", ["raw", "ours", "stock"]),
    ("online_read", ["raw", "ours", "stock"]),
    ("training_set", ["raw", "ours", "stock"]),
    ("xgboost", ["raw", "ours"]),
    ("drift", ["ours", "sampled"]),
    ("main_job", ["ours", "stock"]),
    ("dbt", ["ours", "raw"]),
]
# Stock Feast materialization needs ~7 GB and ~3 minutes per million entities: skipped beyond this size
STOCK_MATERIALIZE_LIMIT = 1_000_000
DRIFT_LIMIT = 1_000_000  # evidently on every row: 43 s and ~1 GB per million rows (the sampled variant always runs)


def parse_size(text: str) -> int:
    text = text.lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


def machine() -> dict:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}"}


def run_stage(stage: str, variant: str, size: int, work: Path, timeout: float) -> dict:
    command = [sys.executable, "-m", "benchmarks.stages", stage, variant, "--size", str(size), "--work", str(work)]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "DO_NOT_TRACK": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-3000:]
        return {"stage": stage, "variant": variant, "size": size, "error": tail}
    result = json.loads(lines[-1][len("BENCH "):])
    result["process_seconds"] = time.perf_counter() - started
    result["load_before"] = load_before
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k")
    parser.add_argument("--stages", default=",".join(s for s, _ in PLAN))
    parser.add_argument("--variants", default="")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where <size>.json goes")
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    stages = args.stages.split(",")
    variants = set(args.variants.split(",")) if args.variants else None
    work = Path(os.environ.get("BENCH_WORK", f"/tmp/platform-bench/{args.size}"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{args.size}.json"
    records = json.loads(out.read_text()) if out.exists() else []
    info = {"machine": machine(), "started": datetime.now(UTC).isoformat(timespec="seconds")}
    failed = False
    print(f"benchmarks at {args.size} ({size:,}) in {work} on {info['machine']}", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "benchmarks.stages", "data", "-", "--size", str(size), "--work",
                        str(work)], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        for stage, stage_variants in PLAN:
            if stage not in stages:
                continue
            for variant in stage_variants:
                if variants and variant not in variants:
                    continue
                if stage == "materialize" and variant == "stock" and size > STOCK_MATERIALIZE_LIMIT:
                    continue
                if stage == "online_read" and variant == "stock" and size > STOCK_MATERIALIZE_LIMIT:
                    continue
                if stage == "drift" and variant == "ours" and size > DRIFT_LIMIT:
                    continue
                result = run_stage(stage, variant, size, work, args.timeout)
                failed = failed or "error" in result
                result.update(info)
                records = [r for r in records if not (r["stage"] == stage and r["variant"] == variant)]
                records.append(result)
                out.write_text(json.dumps(records, indent=1))
                summary = ("ERROR " + result["error"][-400:]) if "error" in result else (
                    f"{result['seconds']:.2f}s peak {result['peak_rss_mb']:.0f} MB")
                print(f"  {stage:17s} {variant:7s} {summary}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"results: {out}")
    if failed:
        raise SystemExit("some stages failed: see the errors above")


if __name__ == "__main__":
    main()
