"""v2 against v3 on the same holdout, through the real assets: does a velocity-feature model catch more fraud?

    PYTHONPATH=. .venv/bin/python -m benchmarks.velocity_model [--bursts 2.0] [--seeds 7,11,13] [--out FILE]

Per seed, in a fresh temporary data directory and Dagster instance: the simulator writes a world (with
`--bursts` card-testing bursts a day, and the same world without them for comparison), then the real assets run as
the demo runs them: ingestion and the dbt warehouse over every daily partition (one run each), `feast_feature_views`,
then `training_set` + `fraud_model` with the feature service `fraud_detector_v2` (the first model: champion), then
again with `fraud_detector_v3`, whose promotion gate scores the v2 champion on v3's holdout (the same transactions,
each model fed its own service's features). The figures are read from the materializations' metadata: v2's PR AUC
on its own holdout must equal the gate's figure for it on v3's (the same rows), which the script checks.
The online store, serving, scoring and monitoring are not run: no figure here depends on them.

One JSON line per (seed, world) with both models' holdout PR AUC and ROC AUC, the holdout size and frauds, the
gate's decision and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

V2, V3 = "fraud_detector_v2", "fraud_detector_v3"


@dataclass(frozen=True)
class World:
    """The simulated world and the loop policy of a comparison."""

    start: date = date(2026, 3, 1)
    days: int = 60
    customers: int = 2_000
    merchants: int = 300
    transactions_per_day: int = 2_500
    bursts_per_day: float = 2.0
    seed: int = 7
    max_label_delay_days: int = 21
    # Loop policy (PLATFORM_* overrides of LoopPolicy): None keeps the policy's own value.
    policy: dict[str, str] = field(default_factory=dict)

    def config(self):
        from platform_assets.simulator import SimulationConfig

        return SimulationConfig(
            start_date=self.start, days=self.days, n_customers=self.customers, n_merchants=self.merchants,
            transactions_per_day=self.transactions_per_day, card_testing_bursts_per_day=self.bursts_per_day,
            seed=self.seed, max_label_delay_days=self.max_label_delay_days, malformed_rate=0.0005,
        )


def _metadata(result, key) -> dict:
    from platform_assets.lib import names

    events = result.asset_materializations_for_node(names.asset_name(key))
    return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()} if events else {}


def compare(settings, instance, world: World, services: tuple[str, ...] = (V2, V3)) -> dict:
    """Simulate `world` into `settings`' landing zone, build the warehouse and the registry, then train one model
    per feature service in order (each gated against the champion before it). Returns the figures."""
    import dagster as dg

    from platform_assets.definitions import build_definitions
    from platform_assets.lib import names
    from platform_assets.lib.run_config import TrainingSetConfig
    from platform_assets.simulator import write_landing_zone

    started = time.perf_counter()
    config = world.config()
    summary = write_landing_zone(config, settings.landing_dir)
    defs = build_definitions(settings)
    assets = list(defs.assets)
    window = names.partition_range_tags(config.start_date.isoformat(), config.end_date.isoformat())

    def run(selection, **kwargs):
        return dg.materialize(assets, selection=selection, instance=instance, resources=defs.resources, **kwargs)

    timings = {}
    t0 = time.perf_counter()
    run(dg.AssetSelection.groups(names.INGESTION), tags=window)
    run(dg.AssetSelection.groups(names.WAREHOUSE), tags=window)
    run(dg.AssetSelection.assets(names.FEAST_FEATURE_VIEWS))
    timings["warehouse_s"] = round(time.perf_counter() - t0, 1)
    models = {}
    for service in services:
        t0 = time.perf_counter()
        result = run(
            dg.AssetSelection.assets(names.TRAINING_SET, names.FRAUD_MODEL),
            run_config=dg.RunConfig(ops={names.asset_name(names.TRAINING_SET): TrainingSetConfig(
                feature_service=service)}),
        )
        ts, model = _metadata(result, names.TRAINING_SET), _metadata(result, names.FRAUD_MODEL)
        key = service if service not in models else f"{service}#{sum(k.startswith(service) for k in models) + 1}"
        models[key] = {
            "model_version": model[names.MODEL_VERSION],
            "holdout_pr_auc": round(model["holdout_pr_auc"], 4),
            "holdout_roc_auc": round(model["holdout_roc_auc"], 4),
            "alias": model["alias"],
            "promotion_reason": model["promotion_reason"],
            "champion_pr_auc_on_same_holdout": model["champion_pr_auc_on_same_holdout"],
            "champion_roc_auc_on_same_holdout": model["champion_roc_auc_on_same_holdout"],
            "snapshot_id": ts["snapshot_id"],
            "rows": ts[names.ROW_COUNT],
            "holdout_rows": ts["holdout_rows"],
            "positives": ts["positives"],
            "feature_columns": ts["feature_columns"],
            "train_and_gate_s": round(time.perf_counter() - t0, 1),
        }
    out = {
        "world": {"seed": world.seed, "days": world.days, "customers": world.customers, "merchants": world.merchants,
                  "transactions_per_day": world.transactions_per_day, "bursts_per_day": world.bursts_per_day,
                  "max_label_delay_days": world.max_label_delay_days, "policy": world.policy,
                  "transactions": summary.transactions, "fraud_rate": round(summary.fraud_rate, 5)},
        "models": models,
        **timings,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if V2 in models and V3 in models:
        v2, v3 = models[V2], models[V3]
        holdout_frauds = _holdout_positives(settings, v3["snapshot_id"])
        out["paired_bootstrap"] = paired_bootstrap(settings, defs.resources["mlflow_tracking"], v2, v3)
        out.update({
            "holdout_rows": v3["holdout_rows"],
            "holdout_frauds": holdout_frauds,
            "v2_pr_auc": v2["holdout_pr_auc"], "v3_pr_auc": v3["holdout_pr_auc"],
            "v2_roc_auc": v2["holdout_roc_auc"], "v3_roc_auc": v3["holdout_roc_auc"],
            "pr_auc_gain": round(v3["holdout_pr_auc"] - v2["holdout_pr_auc"], 4),
            # the gate's own figures for the v2 champion on v3's holdout: the same rows, so equal to v2's own
            "gate_v2_pr_auc_on_v3_holdout": v3["champion_pr_auc_on_same_holdout"],
            "gate_v2_roc_auc_on_v3_holdout": v3["champion_roc_auc_on_same_holdout"],
            "same_holdout": v2["holdout_rows"] == v3["holdout_rows"]
            and abs(v3["champion_pr_auc_on_same_holdout"] - v2["holdout_pr_auc"]) < 5e-5,
            "v3_promoted": v3["alias"] == names.CHAMPION,
            "gate_reason": v3["promotion_reason"],
        })
    return out


def paired_bootstrap(settings, mlflow_tracking, v2: dict, v3: dict, resamples: int = 1_000) -> dict:
    """How far the PR AUC gain is from noise: both registered models score v3's holdout (each its own columns),
    and the holdout's rows are resampled with replacement `resamples` times (seed 0), the gain recomputed on each
    resample. Returns the gain's 2.5/50/97.5 percentiles and the share of resamples where v3 is not better."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    from platform_assets.lib.champion import score
    from platform_assets.lib.training_sets import TrainingSetManifest, manifest_path, read_split

    manifest = TrainingSetManifest.read(manifest_path(settings.data_dir / "training_sets", v3["snapshot_id"]))
    holdout = read_split(manifest.path, "holdout")
    labels = holdout[manifest.label_column].to_numpy()
    scores = {}
    for name, model in ((V2, v2), (V3, v3)):
        xgb_model = mlflow_tracking.load_version(model["model_version"])
        scores[name] = score(xgb_model, holdout, list(xgb_model.get_booster().feature_names))
    rng = np.random.default_rng(0)
    gains = []
    for _ in range(resamples):
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].min() == labels[idx].max():
            continue
        gains.append(average_precision_score(labels[idx], scores[V3][idx])
                     - average_precision_score(labels[idx], scores[V2][idx]))
    low, mid, high = np.percentile(gains, [2.5, 50, 97.5])
    return {"resamples": len(gains), "gain_p2_5": round(float(low), 4), "gain_p50": round(float(mid), 4),
            "gain_p97_5": round(float(high), 4), "share_not_better": round(float(np.mean(np.array(gains) <= 0)), 4)}


def _holdout_positives(settings, snapshot_id: str) -> int:
    from platform_assets.lib.training_sets import TrainingSetManifest, manifest_path

    return TrainingSetManifest.read(manifest_path(settings.data_dir / "training_sets", snapshot_id)).holdout_positives


def compare_in_temp_dir(world: World, services: tuple[str, ...] = (V2, V3)) -> dict:
    """`compare` in a fresh data directory and Dagster instance, the environment set as `make demo` sets it."""
    import dagster as dg

    from platform_assets.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="velocity-model-") as tmp:
        saved = dict(os.environ)
        try:
            for k in [k for k in os.environ if k.startswith(("PLATFORM_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))]:
                del os.environ[k]
            os.environ.update({"PLATFORM_DATA_DIR": tmp, "PLATFORM_PROFILE": "local", "DO_NOT_TRACK": "1",
                               "MLFLOW_ENABLE_TELEMETRY": "false", **world.policy})
            settings = load_settings()
            (Path(tmp) / "dagster").mkdir()
            with dg.instance_for_test(temp_dir=str(Path(tmp) / "dagster")) as instance:
                return compare(settings, instance, world, services)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7", help="comma-separated simulator seeds")
    parser.add_argument("--bursts", type=float, default=2.0, help="card-testing bursts a day in the bursty world")
    parser.add_argument("--worlds", default="bursts,default", help="bursts, default (no bursts), or both")
    parser.add_argument("--days", type=int, default=World.days)
    parser.add_argument("--customers", type=int, default=World.customers)
    parser.add_argument("--merchants", type=int, default=World.merchants)
    parser.add_argument("--transactions-per-day", type=int, default=World.transactions_per_day)
    parser.add_argument("--max-label-delay-days", type=int, default=World.max_label_delay_days)
    parser.add_argument("--policy", default="", help="loop policy overrides, e.g. "
                        "PLATFORM_LABEL_MATURITY_DAYS=7,PLATFORM_WARMUP_DAYS=14")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/velocity/model.jsonl"))
    args = parser.parse_args(argv)
    policy = dict(item.split("=", 1) for item in args.policy.split(",") if item)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        for kind in args.worlds.split(","):
            world = World(days=args.days, customers=args.customers, merchants=args.merchants,
                          transactions_per_day=args.transactions_per_day,
                          bursts_per_day=args.bursts if kind == "bursts" else 0.0, seed=seed,
                          max_label_delay_days=args.max_label_delay_days, policy=policy)
            result = {"world_kind": kind, **compare_in_temp_dir(world)}
            line = json.dumps(result, default=str)
            print(line, flush=True)
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
