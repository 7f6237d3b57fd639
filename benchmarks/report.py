"""docs/benchmarks.md and docs/benchmarks-scale.png from benchmarks/results/*.json (`python -m benchmarks.report`).

The figures are whatever the last `make bench SIZE=...` runs measured; the text around them states the machine
and the load average each run started under, since other work on the same cores moves the numbers.
"""

from __future__ import annotations

import json

from benchmarks.run import RESULTS, ROOT, parse_size

DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks-scale.png"
BEFORE_AFTER_NOTE = (ROOT / "benchmarks" / "NOTES.md")


def load() -> dict[str, dict[tuple[str, str], dict]]:
    runs = {}
    for path in sorted(RESULTS.glob("*.json"), key=lambda p: parse_size(p.stem)):
        runs[path.stem] = {(r["stage"], r["variant"]): r for r in json.loads(path.read_text())}
    return runs


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.1f}x"


def get(run: dict, stage: str, variant: str, key: str = "seconds"):
    record = run.get((stage, variant))
    if not record or "error" in record:
        return None
    value = record
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def rows_vs_raw(runs: dict, stage: str, label: str) -> list[str]:
    lines = ["| size | raw engine | ours | stock Feast | ours / raw | stock / raw | peak MB raw / ours / stock |",
             "|---|---|---|---|---|---|---|"]
    for size, run in runs.items():
        raw, ours, stock = (get(run, stage, v) for v in ("raw", "ours", "stock"))
        if raw is None and ours is None and stock is None:
            continue
        peaks = " / ".join(fmt(get(run, stage, v, "peak_rss_mb"), 0) for v in ("raw", "ours", "stock"))
        lines.append(f"| {size} | {fmt(raw)} s | {fmt(ours)} s | {fmt(stock)} s | {ratio(ours, raw)} | "
                     f"{ratio(stock, raw)} | {peaks} |")
    return [f"**{label}**", "", *lines, ""]


def summary_rows(runs: dict) -> list[str]:
    rows = []
    for size, run in runs.items():
        if get(run, "materialize", "ours") is None and get(run, "main_job", "stock") is None:
            continue
        cells = []
        for stage, key in (("materialize", "seconds"), ("training_set", "seconds"),
                           ("online_read", "1_entity.p50_ms"), ("online_read", "100_entities.p50_ms")):
            raw, ours, stock = (get(run, stage, v, key) for v in ("raw", "ours", "stock"))
            cells.append(f"{ratio(stock, raw)} -> {ratio(ours, raw)}")
        stock_job, ours_job = get(run, "main_job", "stock"), get(run, "main_job", "ours")
        cells.append(f"{fmt(stock_job)} s -> {fmt(ours_job)} s")
        rows.append(f"| {size} | " + " | ".join(cells) + " |")
    return rows


def write_plot(runs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = {name: parse_size(name) for name in runs}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, stage, title in ((axes[0], "materialize", "online materialization (SQLite)"),
                             (axes[1], "training_set", "training set (point-in-time join)")):
        for variant, style in (("raw", "k--"), ("ours", "g-o"), ("stock", "r-s")):
            points = [(sizes[n], get(r, stage, variant)) for n, r in runs.items() if get(r, stage, variant)]
            if points:
                ax.plot(*zip(*points), style, label={"raw": "raw engine", "ours": "ours",
                                                     "stock": "stock Feast"}[variant])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows (entities / entity rows)")
        ax.set_ylabel("seconds")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def _machine(run: dict) -> str:
    machines = {json.dumps(r.get("machine", {}), sort_keys=True) for r in run.values()}
    return "; ".join(
        f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB RAM, Python {m.get('python')}, {m.get('os')}"
        for m in map(json.loads, sorted(machines))
    )


def _dates(run: dict) -> str:
    days = sorted({str(r.get("started", ""))[:10] for r in run.values() if r.get("started")})
    return " .. ".join(dict.fromkeys([days[0], days[-1]])) if days else "?"


def serving_section() -> list[str]:
    """Every `make bench-serve` run kept in benchmarks/results/serving/, each as its own table."""
    from benchmarks.serving import OUT, markdown

    lines: list[str] = []
    for path in sorted(OUT.parent.glob("*.json")):
        results = json.loads(path.read_text())
        machine = results.get("machine", {})
        config = results.get("config", {})
        lines += [
            f"## Real-time scoring: `{path.name}`",
            "",
            (f"Measured {results.get('started', '?')[:16]} on {machine.get('cpu', '?')} ({machine.get('cores', '?')} "
             f"cores), commit {str(results.get('commit', '?'))[:10]}, targets {', '.join(config.get('targets', []))}, "
             f"load average before {results['records'][0].get('load_before')}, pinning "
             f"{results.get('pinning', {}).get('enabled')}. Latencies in ms from the scheduled send time."),
            "",
            markdown(results),
            "",
        ]
    return lines


def main() -> None:
    runs = load()
    if not runs:
        raise SystemExit("no results yet: run `make bench SIZE=100k` first")
    lines = [
        "# Benchmarks",
        "",
        ("Generated by `python -m benchmarks.report` from `benchmarks/results/*.json`; rerun with "
        "`make bench SIZE=100k` (or `1m`, `10m`). Every stage and variant runs in a fresh process, so the peak "
        "memory (ru_maxrss, including the ~250 MB of imports) is its own. *ours* is the platform as configured "
        "(platform_assets.feast_stores in feature_repo/feature_store.yaml), *stock Feast* the same call with "
        "Feast's own sqlite/duckdb stores and local engine, *raw engine* the engine underneath doing the same "
        "work directly (SQLite `executemany`, DuckDB `ASOF JOIN`, xgboost without the platform, the compiled dbt "
        "SQL in DuckDB)."),
        "",
        ("Where and when each size was measured (the 1-minute load average before each stage is in the results "
         "files, `load_before`; a load near 2 or above on these 2 cores means the figures include waiting):"),
        "",
        "| size | machine | measured | load average before the stages |",
        "|---|---|---|---|",
        *[f"| {n} | {_machine(run)} | {_dates(run)} | "
          f"{min(r.get('load_before', 0) for r in run.values()):.1f}-"
          f"{max(r.get('load_before', 0) for r in run.values()):.1f} |" for n, run in runs.items()],
        "",
        "## Before and after, as multiples of the raw engine",
        "",
        ("*before* = Feast's stock stores and engine, *after* = platform_assets.feast_stores, both measured in the "
        "same run as the raw engine (lower is better, 1.0x = as fast as the engine underneath)."),
        "",
        ("| size | materialization | training set (PIT join) | online read 1 entity p50 | online read 100 p50 | "
        "main job wall |"),
        "|---|---|---|---|---|---|",
        *summary_rows(runs),
        "",
        ("Above 1M transactions the stock Feast materialization and online read are not run (about 7 GB and 3 "
         "minutes per million entities; `STOCK_MATERIALIZE_LIMIT` in benchmarks/run.py), nor Evidently on every row "
         "(`DRIFT_LIMIT`; the 50k-row sample always runs): their cells stay empty."),
        "",
        "## Feast hot paths",
        "",
        *rows_vs_raw(runs, "materialize", "Online materialization: `size` entities x 10 float features into SQLite "
                     "(raw: one wide row per entity, `executemany`)"),
    ]
    lines += ["| size | rows/s raw | rows/s ours | rows/s stock |", "|---|---|---|---|"]
    for size, run in runs.items():
        if get(run, "materialize", "ours") is None:
            continue
        lines.append("| " + " | ".join([size] + [fmt(get(run, "materialize", v, "rows_per_second"), 0)
                                                 for v in ("raw", "ours", "stock")]) + " |")
    lines += ["", *rows_vs_raw(runs, "training_set", "Training set: point-in-time join of `size` entity rows "
                                "against `size` feature rows (size/10 entities x 10 days, TTL 3 days) "
                                "(raw: one DuckDB ASOF JOIN with the TTL, to pandas)")]
    lines += [("**Online read**, in-process `get_online_features(feature_service, ...).to_dict()` (raw: SQLite "
               "SELECT by primary key into a dict), milliseconds, wall clock p50 / p99 (thread CPU time p50 / p99)"), "",
              "| size | entities | raw p50 / p99 | ours p50 / p99 | stock p50 / p99 |", "|---|---|---|---|---|"]
    for size, run in runs.items():
        if get(run, "online_read", "ours") is None:
            continue
        for key, label in (("1_entity", "1"), ("100_entities", "100")):
            cells = [f"{fmt(get(run, 'online_read', v, key + '.p50_ms'), 3)} / "
                     f"{fmt(get(run, 'online_read', v, key + '.p99_ms'), 3)} (CPU "
                     f"{fmt(get(run, 'online_read', v, key + '.cpu_p50_ms'), 3)} / "
                     f"{fmt(get(run, 'online_read', v, key + '.cpu_p99_ms'), 3)})" for v in ("raw", "ours", "stock")]
            lines.append(f"| {size} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "## The platform", ""]
    lines += [("| size | Definitions load | dbt build (CLI) | same SQL in DuckDB | dbt / raw | xgboost plain | "
               "xgboost ours | drift all rows | drift 50k sample |"), "|---|---|---|---|---|---|---|---|---|"]
    for size, run in runs.items():
        dbt, raw_sql = get(run, "dbt", "ours"), get(run, "dbt", "raw")
        if get(run, "definitions_load", "ours") is None and dbt is None:
            continue
        lines.append(
            f"| {size} | {fmt(get(run, 'definitions_load', 'ours'))} s | {fmt(dbt)} s | {fmt(raw_sql)} s | "
            f"{ratio(dbt, raw_sql)} | {fmt(get(run, 'xgboost', 'raw'))} s | {fmt(get(run, 'xgboost', 'ours'))} s | "
            f"{fmt(get(run, 'drift', 'ours'))} s | {fmt(get(run, 'drift', 'sampled'))} s |")
    lines += ["", "Drift: the largest difference of a column's drift score (Wasserstein distance, normed) between all "
              "rows and the 50k-row sample: " + ", ".join(
                  f"{size}: {max(abs(a - b) for a, b in zip(sa.values(), sb.values())):.4f}"
                  for size, run in runs.items()
                  if (sa := get(run, "drift", "ours", "column_scores")) and (sb := get(run, "drift", "sampled",
                                                                                      "column_scores")))
              + " (threshold for a drifted column: 0.1).", ""]
    lines += ["", ("**Main job** (`materialize_platform`, as `make demo`: the daily partitions in one run, then "
                   "a run per stage), `size` transactions over 90 days"), "",
              ("| size | Feast stores | transactions | job wall | sum of asset steps | job / steps | peak MB | "
              "peak MB, process tree | slowest steps | largest step peaks (MB) |"),
              "|---|---|---|---|---|---|---|---|---|---|"]
    for (size, run), variant in ((item, v) for item in runs.items() for v in ("ours", "stock")):
        record = run.get(("main_job", variant))
        if not record or "error" in record:
            continue
        steps = sorted(record["steps"].items(), key=lambda kv: -kv[1])[:4]
        lines.append(
            f"| {size} | {variant} | {record['transactions']:,} | {fmt(record['seconds'])} s | "
            f"{fmt(record['sum_of_steps_seconds'])} s | {ratio(record['seconds'], record['sum_of_steps_seconds'])} | "
            f"{fmt(record['peak_rss_mb'], 0)} | {fmt(record.get('tree_peak_rss_mb'), 0)} | "
            + ", ".join(f"{k} {v:.1f}s" for k, v in steps) + " | "
            + ", ".join(f"{k} {v:,.0f}" for k, v in
                        sorted(record.get("step_peak_rss_mb", {}).items(), key=lambda kv: -kv[1])[:3]) + " |")
    lines += ["", "![scale](benchmarks-scale.png)", ""]
    if BEFORE_AFTER_NOTE.exists():
        lines += [BEFORE_AFTER_NOTE.read_text().strip(), ""]
    lines += serving_section()
    DOC.write_text("\n".join(lines) + "\n")
    write_plot(runs)
    print(f"wrote {DOC} and {PLOT}")


if __name__ == "__main__":
    main()
