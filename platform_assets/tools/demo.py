"""`python -m platform_assets.tools.demo`: simulate sample data and materialize the whole graph, as Dagit would.

The runs go to the Dagster instance of DAGSTER_HOME, so the UI (`make dev`) shows their history afterwards. The
daily partitions of the window are loaded as one run (single-run backfill), then every other asset in one run.
The end-to-end tests call `materialize_platform` too, on a temporary instance and data directory.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from platform_assets.definitions import build_definitions
from platform_assets.lib import names
from platform_assets.settings import Settings, load_settings
from platform_assets.simulator import SCENARIOS, SimulationConfig, write_landing_zone

INGESTED = list(names.RAW)
# Scored and monitored day by day; the demo materializes their newest day (older days: backfill from the UI).
NEWEST_DAY_GROUPS = (names.SCORING, names.MONITORING)


@dataclass
class PlatformRun:
    partitions_run: dg.ExecuteInProcessResult
    graph_run: dg.ExecuteInProcessResult
    seconds: float
    newest_day_run: dg.ExecuteInProcessResult | None = None


def materialize_platform(
    settings: Settings, first_day: date, last_day: date, instance: dg.DagsterInstance, raise_on_error: bool = True
) -> PlatformRun:
    """Load the snapshots and the daily partitions first_day..last_day, then materialize every other asset of the
    graph."""
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    assets = list(defs.assets)
    # The daily dbt models in the second run are partitioned too: they get the same range, in one dbt call.
    window = names.partition_range_tags(first_day.isoformat(), last_day.isoformat())
    started = time.perf_counter()
    partitions_run = dg.materialize(
        assets,
        selection=dg.AssetSelection.assets(*INGESTED),
        instance=instance,
        resources=defs.resources,
        tags=window,
        raise_on_error=raise_on_error,
    )
    daily = dg.AssetSelection.groups(*NEWEST_DAY_GROUPS).resolve(graph)
    # The scoring service's log and its report: nothing is served before `make serve` runs.
    live = (names.SERVED_PREDICTIONS, names.SERVED_TRAFFIC_REPORT)
    daily = {k for k in daily if k not in live}
    rest = [k for k in graph.materializable_asset_keys if k not in INGESTED and k not in daily and k not in live]
    graph_run = dg.materialize(
        assets,
        selection=dg.AssetSelection.assets(*rest),
        instance=instance,
        resources=defs.resources,
        tags=window,
        raise_on_error=raise_on_error,
    )
    # The drift window's days are scored (one run), then the newest day is monitored.
    scored_from = max(first_day, last_day - timedelta(days=defs.resources["policy"].drift_window_days - 1))
    dg.materialize(
        assets,
        selection=dg.AssetSelection.groups(names.SCORING),
        instance=instance,
        resources=defs.resources,
        tags=names.partition_range_tags(scored_from.isoformat(), last_day.isoformat()),
        raise_on_error=raise_on_error,
    )
    newest_day_run = dg.materialize(
        assets,
        selection=dg.AssetSelection.assets(*daily) - dg.AssetSelection.groups(names.SCORING),
        instance=instance,
        resources=defs.resources,
        partition_key=last_day.isoformat(),
        raise_on_error=raise_on_error,
    )
    return PlatformRun(partitions_run, graph_run, time.perf_counter() - started, newest_day_run)


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()} if events else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--end", type=date.fromisoformat,
                        default=datetime.now(UTC).date() - timedelta(days=1))
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--merchants", type=int, default=300)
    parser.add_argument("--transactions-per-day", type=int, default=2_500)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="amount_inflation",
                        help="drift scenario of the sample data (default shows a drift being caught)")
    parser.add_argument("--scenario-start-day", type=int, default=None,
                        help="default: 14 days before the end, after the newest matured label")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    settings = load_settings()
    config = SimulationConfig(
        start_date=args.end - timedelta(days=args.days - 1),
        days=args.days,
        n_customers=args.customers,
        n_merchants=args.merchants,
        transactions_per_day=args.transactions_per_day,
        scenario=args.scenario,
        # Labels mature after 21 days, so the champion's training window ends three weeks before the data does;
        # a drift that starts two weeks before the end is new to it, which is what the demo should show.
        scenario_start_day=args.scenario_start_day if args.scenario_start_day is not None else max(args.days - 14, 0),
        seed=args.seed,
    )
    t0 = time.perf_counter()
    summary = write_landing_zone(config, settings.landing_dir)
    print(f"simulated {summary.transactions:,} transactions over {summary.days} days "
          f"({summary.first_day}..{summary.last_day}, scenario {config.scenario}) in {time.perf_counter() - t0:.1f}s")
    with dg.DagsterInstance.get() as instance:
        run = materialize_platform(settings, config.start_date, config.end_date, instance)
    model = _metadata(run.graph_run, names.asset_name(names.FRAUD_MODEL))
    drift = _metadata(run.newest_day_run, names.asset_name(names.FEATURE_DRIFT_REPORT))
    print(
        f"\nmaterialized the whole graph in {run.seconds:.0f}s "
        f"(runs {run.partitions_run.run_id[:8]}, {run.graph_run.run_id[:8]})\n"
        f"  model {settings.model_name} v{model.get('model_version')} -> {model.get('alias')}: "
        f"holdout PR AUC {model.get('holdout_pr_auc', float('nan')):.3f}, "
        f"ROC AUC {model.get('holdout_roc_auc', float('nan')):.3f}\n"
        f"  drift report: {drift.get('verdict')} (share {drift.get('drift_share', float('nan')):.2f}) "
        f"-> {drift.get('report')} (make evidently), {drift.get('report_path')}\n"
        f"  data: {settings.data_dir}   UI: make dev (http://127.0.0.1:3000)   MLflow: make mlflow   "
        f"Evidently: make evidently"
    )


if __name__ == "__main__":
    main()
