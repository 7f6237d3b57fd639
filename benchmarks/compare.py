"""Before/after table of two benchmark result sets: what the feature marts cost and what the model got from them.

    python -m benchmarks.compare benchmarks/results/window-features/before benchmarks/results/window-features/after

Each directory holds `<size>.json` files written by `benchmarks.run --stages main_job,dbt`. The table goes to
stdout (markdown), for `benchmarks/NOTES.md`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MARTS = {"fct_customer_daily_features": "customer", "fct_merchant_daily_features": "merchant"}


def _record(directory: Path, size: str, stage: str) -> dict:
    path = directory / f"{size}.json"
    if not path.exists():
        return {}
    return next((r for r in json.loads(path.read_text()) if r["stage"] == stage and r["variant"] == "ours"), {})


def _rows(before: dict, after: dict) -> list[tuple[str, str, str]]:
    def pair(get, fmt="{:,.0f}"):
        values = []
        for record in (before, after):
            try:
                values.append(fmt.format(get(record)))
            except (KeyError, TypeError):
                values.append("-")
        return values

    rows = [(f"{label} mart rows", *pair(lambda r, m=mart: r["mart_rows"][m])) for mart, label in MARTS.items()]
    rows += [
        ("online rows written (customer + merchant)",
         *pair(lambda r: r["online_rows_written"]["customer_daily_features"]
               + r["online_rows_written"]["merchant_daily_features"])),
        ("online store size (MB)", *pair(lambda r: r["online_store_mb"], "{:,.1f}")),
        ("dbt models of the graph run, `warehouse_dbt_models` (s)",
         *pair(lambda r: r["steps"]["warehouse_dbt_models"], "{:,.1f}")),
        ("online materialization, `feast_online_store` (s)",
         *pair(lambda r: r["steps"]["feast_online_store"], "{:,.1f}")),
        ("training set build, `training_set` (s)", *pair(lambda r: r["steps"]["training_set"], "{:,.1f}")),
        ("training set rows", *pair(lambda r: r["training_set_rows"])),
        ("holdout PR AUC", *pair(lambda r: r["holdout_pr_auc"], "{:.4f}")),
        ("holdout ROC AUC", *pair(lambda r: r["holdout_roc_auc"], "{:.4f}")),
        ("main job wall (s)", *pair(lambda r: r["seconds"], "{:,.0f}")),
        ("main job peak memory, whole process tree (MB)", *pair(lambda r: r["tree_peak_rss_mb"])),
        ("peak of the `training_set` step (MB)", *pair(lambda r: r["step_tree_peak_rss_mb"]["training_set"])),
        ("1-minute load average before the job", *pair(lambda r: r["load_before"], "{:.1f}")),
    ]
    return rows


def table(before_dir: Path, after_dir: Path, sizes: list[str]) -> str:
    lines = []
    for size in sizes:
        before, after = _record(before_dir, size, "main_job"), _record(after_dir, size, "main_job")
        dbt_before, dbt_after = _record(before_dir, size, "dbt"), _record(after_dir, size, "dbt")
        if not before and not after:
            continue
        shape = before or after
        heading = f"**{size}** ({shape.get('transactions', 0):,} transactions, {shape.get('customers', 0):,} customers)"
        lines += [heading, "", "| figure | before | after |", "|---|---|---|"]
        lines += [f"| {name} | {b} | {a} |" for name, b, a in _rows(before, after)]
        if dbt_before or dbt_after:
            def fmt(record):
                return f"{record['seconds']:,.1f}" if record else "-"
            lines.append(f"| `dbt build` from the CLI, models and tests (s) | {fmt(dbt_before)} | {fmt(dbt_after)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--sizes", default="1m,10m")
    args = parser.parse_args(argv)
    print(table(args.before, args.after, args.sizes.split(",")))


if __name__ == "__main__":
    main()
