"""`python -m platform_assets.tools.demo`: simulate sample data and materialize the whole graph, as Dagit would.

The runs go to the Dagster instance of DAGSTER_HOME, so the UI (`make dev`) shows their history afterwards. The
daily partitions of the window are loaded as one run (single-run backfill), then each stage of the graph in a run
of its own, the days the monitoring compares in one scoring run, and the newest `--monitor-days` days monitored
one run per day, as the automation would. The console gets one line per stage with its time and figures; the
full event log (Dagster, dbt, library warnings) goes to data/logs/demo-<time>.log (`--verbose`: to the console).
The end-to-end tests call `materialize_platform` too, on a temporary instance and data directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import dagster as dg

from platform_assets.definitions import build_definitions
from platform_assets.lib import names
from platform_assets.lib.predictions import FLAGGED
from platform_assets.settings import Settings, load_settings
from platform_assets.simulator import SCENARIOS, SimulationConfig, write_landing_zone
from platform_assets.tools.live_sources import LiveSources, chunks, create_live_sources

# Card-testing bursts a day in the demo's world (simulator/generator.py): what the velocity features catch.
DEMO_BURSTS_PER_DAY = 0.0

# The scoring service's log and its report: nothing is served before `make serve` runs.
LIVE = (names.SERVED_PREDICTIONS, names.SERVED_TRAFFIC_REPORT)


@dataclass
class Stage:
    """One stage of the demo: the runs that materialized it, how long they took and a line of figures."""

    name: str
    results: list[dg.ExecuteInProcessResult]
    seconds: float
    summary: str = ""

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    def line(self) -> str:
        return f"  {self.name:<11}{self.seconds:7.1f}s  {self.summary}"


@dataclass
class PlatformRun:
    stages: list[Stage] = field(default_factory=list)
    seconds: float = 0.0

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    @property
    def success(self) -> bool:
        return all(s.success for s in self.stages)

    def metadata(self, stage: str, key: dg.AssetKey) -> dict:
        """The newest materialization's metadata of `key` in the runs of `stage`."""
        for result in reversed(self.stage(stage).results):
            found = _metadata(result, names.asset_name(key))
            if found:
                return found
        return {}


def materialize_platform(
    settings: Settings, first_day: date, last_day: date, instance: dg.DagsterInstance, raise_on_error: bool = True,
    monitored_days: int = 1, on_stage: Callable[[Stage], None] | None = None, live: LiveSources | None = None,
    ingest_chunks: int = 4,
    challenger: str | None = None,
) -> PlatformRun:
    """Load the snapshots and the daily partitions first_day..last_day, then materialize the graph stage by stage
    (warehouse, features, training, serving), score the days the monitoring needs and monitor the newest
    `monitored_days` days, one run per day as the automation would. `on_stage` hears of every finished stage.

    With `live` source systems, ingestion feeds them day by day: the system of record is captured `ingest_chunks`
    times as the days pass, each capture followed by the dbt snapshots of customers and merchants, then the whole
    window is read in one ingestion run (tools/live_sources.py).

    With a `challenger` feature service (e.g. `fraud_detector_v3`), the training stage then builds a training set
    with it and trains a second model, which the promotion gate judges against the first on the same holdout: the
    champion that serving and scoring use is whichever the gate keeps."""
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    assets = list(defs.assets)
    # The daily dbt models are partitioned too: they get the same range as ingestion, in one dbt call.
    window = names.partition_range_tags(first_day.isoformat(), last_day.isoformat())
    platform = PlatformRun()
    started = time.perf_counter()

    def run(selection: dg.AssetSelection, **kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize(assets, selection=selection, instance=instance, resources=defs.resources,
                              raise_on_error=raise_on_error, **kwargs)

    def stage(name: str, runs: Callable[[], list[dg.ExecuteInProcessResult]]) -> None:
        t0 = time.perf_counter()
        results = runs()
        done = Stage(name, results, time.perf_counter() - t0)
        platform.stages.append(done)
        done.summary = _summary(platform, name)
        if on_stage is not None:
            on_stage(done)

    def group(name: str, exclude=()) -> list[dg.AssetKey]:
        return [k for k in dg.AssetSelection.groups(name).resolve(graph) if k not in exclude]

    def ingest_live() -> list[dg.ExecuteInProcessResult]:
        # The system of record is captured as the days pass (each capture a version in the dbt snapshots); the
        # transactions and chargebacks of the window are then read in one run, the platform's first load: history
        # that counts as known on time for the features (dbt_project/macros/knowable_at.sql).
        snapshots = [k for k in group(names.WAREHOUSE) if k.path[0] == names.SNAPSHOTS_KEY_PREFIX]
        captures = dg.AssetSelection.assets(*snapshots).upstream() - dg.AssetSelection.groups(names.INGESTION)
        results = []
        with live.running():
            for _, b in chunks(first_day, last_day, ingest_chunks):
                live.feed_through(b)
                if b < last_day:  # the last capture is the ingestion run's and the warehouse stage's
                    results.append(run(dg.AssetSelection.assets(*names.SNAPSHOT_RAW)))
                    results.append(run(captures))
            results.append(run(dg.AssetSelection.groups(names.INGESTION), tags=window))
        return results

    stage("ingestion", ingest_live if live is not None else
          lambda: [run(dg.AssetSelection.groups(names.INGESTION), tags=window)])
    stage("warehouse", lambda: [run(dg.AssetSelection.groups(names.WAREHOUSE), tags=window)])
    stage("features", lambda: [run(dg.AssetSelection.groups(names.FEATURES))])
    def train() -> list[dg.ExecuteInProcessResult]:
        results = [run(dg.AssetSelection.groups(names.TRAINING))]
        if challenger is not None:
            from platform_assets.lib.run_config import TrainingSetConfig

            config = dg.RunConfig(ops={names.asset_name(names.TRAINING_SET): TrainingSetConfig(
                feature_service=challenger)})
            results.append(run(dg.AssetSelection.assets(names.TRAINING_SET, names.FRAUD_MODEL), run_config=config))
        return results

    stage("training", train)
    stage("serving", lambda: [run(dg.AssetSelection.assets(*group(names.SERVING, exclude=LIVE)))])
    # Each monitored day D compares the predictions of D-window+1..D: those days are scored first, in one run.
    policy = defs.resources["policy"]
    monitored_from = max(first_day, last_day - timedelta(days=monitored_days - 1))
    scored_from = max(first_day, monitored_from - timedelta(days=policy.drift_window_days - 1))
    stage("scoring", lambda: [run(dg.AssetSelection.groups(names.SCORING),
                                  tags=names.partition_range_tags(scored_from.isoformat(), last_day.isoformat()))])
    monitoring = dg.AssetSelection.assets(*group(names.MONITORING, exclude=LIVE))
    days = [monitored_from + timedelta(days=i) for i in range((last_day - monitored_from).days + 1)]
    stage("monitoring", lambda: [run(monitoring, partition_key=d.isoformat()) for d in days])
    platform.seconds = time.perf_counter() - started
    return platform


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()} if events else {}


def _checks(stage: Stage) -> str:
    evaluations = [e for r in stage.results for e in r.get_asset_check_evaluations()]
    failed = [e for e in evaluations if not e.passed]
    which = sorted({f"{e.asset_key.to_user_string()}:{e.check_name}" for e in failed})
    return f"{len(evaluations) - len(failed)}/{len(evaluations)} checks passed" + (
        f" (failed: {', '.join(which)})" if failed else "")


def _summary(platform: PlatformRun, name: str) -> str:
    """The figures a person wants from each stage, read from the materializations it just made."""
    stage = platform.stage(name)
    if name == "ingestion":
        # The daily sources count what each run loaded (chunks of days); the snapshots are whole each time.
        daily = {k: sum(_metadata(r, names.asset_name(k)).get(names.ROW_COUNT, 0) for r in stage.results)
                 for k in names.DAILY_RAW}
        quarantined = sum(_metadata(r, names.asset_name(k)).get(names.ROWS_QUARANTINED, 0)
                          for r in stage.results for k in names.DAILY_RAW)
        quarantined += sum(platform.metadata(name, k).get(names.ROWS_QUARANTINED, 0) for k in names.SNAPSHOT_RAW)
        runs = f" in {len(stage.results)} runs" if len(stage.results) > 1 else ""
        return (f"{daily[names.RAW_TRANSACTIONS]:,} transactions, {daily[names.RAW_CHARGEBACKS]:,} chargebacks, "
                f"{quarantined:,} rows quarantined{runs}; {_checks(stage)}")
    if name == "warehouse":
        models = {e.asset_key for r in stage.results for e in r.get_asset_materialization_events()}
        return f"{len(models)} dbt models built; {_checks(stage)}"
    if name == "features":
        views, online, rows = platform.metadata(name, names.FEAST_FEATURE_VIEWS), platform.metadata(name, names.FEAST_ONLINE_STORE), platform.metadata(name, names.TRAINING_SET)
        return (f"{len(views.get('feature_views', []))} feature views, {online.get(names.ROW_COUNT, 0):,} online "
                f"rows; training set {rows.get(names.ROW_COUNT, 0):,} rows ({rows.get('positives', 0):,} fraud); "
                f"{_checks(stage)}")
    if name == "training":
        models = [m for m in (_metadata(r, names.asset_name(names.FRAUD_MODEL)) for r in stage.results) if m]

        def line(model: dict) -> str:
            return (f"v{model.get(names.MODEL_VERSION)} -> {model.get('alias')}: holdout PR AUC "
                    f"{model.get('holdout_pr_auc', float('nan')):.3f}, ROC AUC "
                    f"{model.get('holdout_roc_auc', float('nan')):.3f}")

        if len(models) < 2:
            return line(models[-1] if models else {})
        # a challenger of another feature service: both models, and the gate's decision on the same holdout
        return "; ".join(f"{line(m)} ({m.get(names.TAG_FEATURE_SERVICE)})" for m in models) + (
            f"; gate: {models[-1].get('promotion_reason')}")
    if name == "serving":
        deployed = platform.metadata(name, names.DEPLOYED_MODEL)
        return (f"champion v{deployed.get(names.CHAMPION_VERSION)}, scoring service runs "
                f"{deployed.get(names.LIVE_VERSION)} (make serve starts it)")
    if name == "scoring":
        scored = platform.metadata(name, names.DAILY_PREDICTIONS)
        return (f"{scored.get(names.ROW_COUNT, 0):,} transactions scored, "
                f"{scored.get(FLAGGED, 0):,} sent to review")
    if name == "monitoring":
        verdicts = [_metadata(r, names.asset_name(names.FEATURE_DRIFT_REPORT)) for r in stage.results]
        drifted = [v for v in verdicts if v.get(names.VERDICT) == "drift"]
        first = f", first on {drifted[0].get(names.DRIFT_WINDOW_END)}" if drifted else ""
        shares = [v.get(names.DRIFT_SHARE) for v in verdicts if v.get(names.DRIFT_SHARE) is not None]
        trend = f", drift share {shares[0]:.2f} -> {shares[-1]:.2f}" if shares else ""
        return f"{len(verdicts)} days monitored, feature drift on {len(drifted)}{first}{trend}; {_checks(stage)}"
    return _checks(stage)


@contextmanager
def console_to_log(log_path: Path) -> Iterator[TextIO]:
    """Everything the runs print (Dagster's event log, dbt, warnings, libraries writing to the terminal) goes to
    `log_path`, at the file-descriptor level so subprocesses and C code follow; the demo's own lines go to the
    console it returns."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            console.close()


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
                        help="default: 10 days before the end, after the newest matured label")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--card-testing-bursts-per-day", type=float, default=DEMO_BURSTS_PER_DAY,
                        help="card-testing / account-takeover bursts a day in the sample data (Poisson mean; 0: "
                        "none): the signal the velocity features of fraud_detector_v3 catch")
    parser.add_argument("--challenger", default=None, metavar="FEATURE_SERVICE",
                        help="also train a model on this feature service (e.g. fraud_detector_v3) after the default "
                        "one; the promotion gate decides which is champion")
    parser.add_argument("--monitor-days", type=int, default=14,
                        help="days monitored, newest last (default: the 4 days before the drift and its first 10)")
    parser.add_argument("--sources", choices=("live", "files"), default="live",
                        help="live (default): a system-of-record database, the chargeback API service and the "
                        "transaction stream, fed day by day; files: the landing zone's CSV files")
    parser.add_argument("--ingest-chunks", type=int, default=4,
                        help="live sources: captures of the system of record over the window (its history)")
    parser.add_argument("--verbose", action="store_true", help="Dagster's full event log on the console")
    args = parser.parse_args(argv)
    if args.monitor_days < 1:
        parser.error("--monitor-days must be at least 1")

    config = SimulationConfig(
        start_date=args.end - timedelta(days=args.days - 1),
        days=args.days,
        n_customers=args.customers,
        n_merchants=args.merchants,
        transactions_per_day=args.transactions_per_day,
        scenario=args.scenario,
        # Labels mature after 21 days, so the champion's training window ends three weeks before the data does;
        # a drift that starts 10 days before the end is new to it, and the 14 monitored days show it begin.
        scenario_start_day=args.scenario_start_day if args.scenario_start_day is not None else max(args.days - 10, 0),
        seed=args.seed,
        card_testing_bursts_per_day=args.card_testing_bursts_per_day,
    )
    if args.ingest_chunks < 1:
        parser.error("--ingest-chunks must be at least 1")
    t0 = time.perf_counter()
    scenario = (f"({config.start_date}..{config.end_date}, scenario {config.scenario} from "
                f"{config.start_date + timedelta(days=config.scenario_start_day)})")
    if args.sources == "live":
        create_live_sources(load_settings().data_dir, config)
        what = "a system-of-record database, the chargeback API and the transaction stream, fed day by day"
    else:
        summary = write_landing_zone(config, load_settings().landing_dir)
        what = f"{summary.transactions:,} transactions in landing files"
    # Read after the sources are written: the daily partitions start on their first day (settings.py).
    settings = load_settings()
    if settings.sources.live and settings.profile != "local":
        parser.error("the demo's live sources are the local profile's simulated ones")
    live = LiveSources(settings, config) if args.sources == "live" else None
    log_path = settings.data_dir / "logs" / f"demo-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
    print(f"  simulate   {time.perf_counter() - t0:7.1f}s  {config.days} days of {what} {scenario}")
    if not args.verbose:
        print(f"  full log   {log_path}")
    with (nullcontext(sys.stdout) if args.verbose else console_to_log(log_path)) as console, \
            dg.DagsterInstance.get() as instance:
        run = materialize_platform(settings, config.start_date, config.end_date, instance,
                                   monitored_days=args.monitor_days, live=live, ingest_chunks=args.ingest_chunks,
                                   challenger=args.challenger,
                                   on_stage=lambda stage: print(stage.line(), file=console, flush=True))
    drift = run.metadata("monitoring", names.FEATURE_DRIFT_REPORT)
    print(
        f"\nmaterialized the whole graph in {run.seconds:.0f}s; partitions from {settings.partition_start} "
        f"({settings.partition_start_source})\n"
        f"  newest drift report: {drift.get(names.VERDICT)} (share {drift.get(names.DRIFT_SHARE, float('nan')):.2f}) "
        f"-> {drift.get('report')} (make evidently)\n"
        f"  data: {settings.data_dir}   UI: make dev (http://127.0.0.1:3000)   MLflow: make mlflow   "
        f"Evidently: make evidently"
    )


if __name__ == "__main__":
    main()
