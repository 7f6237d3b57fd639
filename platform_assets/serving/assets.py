"""The serving stage in the graph: which model version is live, and what the live service answered.

- `deployed_model` records the champion the registry names and the version the running service reports on
  `/readyz` (it waits a little for the service's watcher to swap), downstream of `fraud_model`; the
  `deploy_on_champion_change` sensor re-materializes it whenever the `champion` alias moves (a promotion, a
  rollback job, a hand in the MLflow UI).
- `served_predictions` loads one UTC day of the service's prediction log (serving/log.py) into the warehouse
  table `serving.served_predictions`, replacing the day (re-runs are idempotent); lines a crash cut short are
  skipped and counted. Its check `served_features_match_point_in_time` recomputes, for a sample of the day, the
  offline point-in-time vector of each served transaction at its own instant (Feast, the training-set join) and
  compares it with the vector the service used: online/offline skew shows up as a failed check with the
  features that differ.
"""


import time
from datetime import UTC, date, datetime

import dagster as dg

from platform_assets.lib import names, object_store
from platform_assets.resources import (
    FeastResource,
    MlflowResource,
    PlatformStorage,
    ScoringService,
    WarehouseResource,
)

TABLE = "serving.served_predictions"
LOG_COLUMNS = {
    "served_at": "TIMESTAMPTZ", "transaction_id": "VARCHAR", "customer_id": "VARCHAR", "merchant_id": "VARCHAR",
    "amount": "DOUBLE", "currency": "VARCHAR", "channel": "VARCHAR", "event_ts": "TIMESTAMPTZ", "score": "DOUBLE",
    "decision": "VARCHAR", "review_threshold": "DOUBLE", "model_name": "VARCHAR", "model_version": "VARCHAR",
    "feature_service": "VARCHAR", "training_set_id": "VARCHAR", "stale_features": "VARCHAR[]",
    "unknown_customer": "BOOLEAN", "unknown_merchant": "BOOLEAN", "features": "JSON", "reasons": "JSON",
    "challenger_version": "VARCHAR", "challenger_score": "DOUBLE",
}
SKEW_SAMPLE = 200
SKEW_TOLERANCE = 1e-9


class DeployConfig(dg.Config):
    wait_seconds: float = 20.0  # how long to wait for the running service to swap to the champion


@dg.asset(
    key=names.DEPLOYED_MODEL,
    group_name=names.SERVING,
    kinds={"mlflow", "fastapi"},
    deps=[names.FRAUD_MODEL],
    description="The model version the real-time scoring service runs (its /readyz) against the registry's "
    "champion: re-materialized when the champion alias moves.",
)
def deployed_model(
    context: dg.AssetExecutionContext, config: DeployConfig, mlflow_tracking: MlflowResource,
    scoring_service: ScoringService,
) -> dg.MaterializeResult:
    champion = mlflow_tracking.champion_version()
    if champion is None:
        raise dg.Failure(f"no {names.CHAMPION} model yet: materialize {names.FRAUD_MODEL.to_user_string()} first")
    wanted = str(champion.version)
    deadline = time.monotonic() + config.wait_seconds
    ready = scoring_service.readiness()
    # A reachable service swaps within its refresh interval; an unreachable one is recorded, not waited for.
    while ready.get("model_version") != wanted and "not reachable" not in str(ready.get("reason")) \
            and time.monotonic() < deadline:
        time.sleep(1.0)
        ready = scoring_service.readiness()
    live = ready.get("model_version")
    in_sync = live == wanted
    if in_sync:
        context.log.info(f"the scoring service runs the champion v{wanted}")
    else:
        context.log.warning(f"champion is v{wanted}, the scoring service runs {live or 'nothing'}: "
                            f"{ready.get('reason') or 'still swapping'}")
    return dg.MaterializeResult(metadata={
        names.CHAMPION_VERSION: wanted,
        names.LIVE_VERSION: live or "none",
        "in_sync": in_sync,
        names.TAG_FEATURE_SERVICE: champion.tags.get(names.TAG_FEATURE_SERVICE, ""),
        "review_threshold": champion.tags.get(names.TAG_REVIEW_THRESHOLD, ""),
        "service_url": dg.MetadataValue.url(scoring_service.url.rstrip("/") + "/docs"),
        "readyz": dg.MetadataValue.json(ready),
        "model_uri": f"models:/{mlflow_tracking.model_name}/{wanted}",
    })


@dg.sensor(
    asset_selection=dg.AssetSelection.assets(names.DEPLOYED_MODEL),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-materialize deployed_model whenever the champion alias points at another version.",
)
def deploy_on_champion_change(context: dg.SensorEvaluationContext, mlflow_tracking: MlflowResource):
    champion = mlflow_tracking.champion_version()
    if champion is None:
        return dg.SkipReason("no champion yet")
    last, _, moves = (context.cursor or "::0").partition(":")
    if last == str(champion.version):
        return dg.SkipReason(f"champion still v{last}")
    moves = int(moves.lstrip(":") or 0) + 1
    context.update_cursor(f"{champion.version}:{moves}")
    return dg.RunRequest(run_key=f"champion-v{champion.version}-move-{moves}",
                         tags={"trigger": "champion_alias", "champion_version": str(champion.version)})


def _log_files(log_dir, day: date) -> list[str]:
    from platform_assets.serving.log import day_dir

    folder = day_dir(log_dir, day)
    if object_store.is_remote(folder):
        folder.fs.invalidate_cache()  # s3fs caches listings per process: a long-lived one must see new uploads
    # On the shared store the day is every object under its prefix (serving/log.py): the same union each read.
    return sorted(str(p) for p in folder.glob("*.jsonl")) if folder.exists() else []


def _complete_lines(files: list[str]) -> int:
    """Lines that end in a newline: the log writes whole lines, so anything after the last one is a torn write."""
    import fsspec

    total = 0
    for path in files:
        with fsspec.open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                total += block.count(b"\n")
    return total


def load_day(con, files: list[str], day: date, loaded_at: datetime) -> int:
    """Replace the day's rows of the table with the files' lines, in one transaction. Returns rows loaded."""
    columns = ", ".join(f"{name} {kind}" for name, kind in LOG_COLUMNS.items())
    con.execute("CREATE SCHEMA IF NOT EXISTS serving")
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (served_date DATE, {columns}, source_file VARCHAR, "
                "_loaded_at TIMESTAMPTZ)")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {TABLE} WHERE served_date = $day", {"day": day})
        if files:
            spec = "{" + ", ".join(f"'{n}': '{k}'" for n, k in LOG_COLUMNS.items()) + "}"
            con.execute(
                f"""INSERT INTO {TABLE}
                SELECT $day, {", ".join(LOG_COLUMNS)}, filename, $loaded_at
                FROM read_json($files, format = 'newline_delimited', columns = {spec}, ignore_errors = true,
                               filename = true)
                WHERE transaction_id IS NOT NULL AND served_at IS NOT NULL""",
                {"day": day, "files": files, "loaded_at": loaded_at},
            )
        rows = con.execute(f"SELECT count(*) FROM {TABLE} WHERE served_date = $day", {"day": day}).fetchone()[0]
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(rows)


def _export_day(con, served_dir, day: date):
    """The day's rows as parquet for the readers downstream (monitoring), replaced whole: locally a renamed
    temporary file, on the shared store one object DuckDB uploads (visible only once complete)."""
    import os
    from pathlib import Path

    from platform_assets.lib import object_store
    from platform_assets.lib.predictions import served_day_path

    path = served_day_path(served_dir, day)
    remote = object_store.is_remote(path)
    if remote:
        object_store.configure_duckdb(con)
        tmp = str(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{path}.tmp")
    target = str(tmp).replace("'", "''")  # our own data directory; COPY takes no parameter for its target
    con.execute(f"COPY (SELECT * EXCLUDE (features, reasons), CAST(features AS VARCHAR) AS features, "
                f"CAST(reasons AS VARCHAR) AS reasons FROM {TABLE} WHERE served_date = $day "
                f"ORDER BY served_at, transaction_id) TO '{target}' (FORMAT parquet)", {"day": day})
    if not remote:
        os.replace(tmp, path)
    return path


def skew(store, served) -> dict:
    """Served vectors against the offline point-in-time vectors at the same instants, feature by feature."""
    import json

    import numpy as np
    import pandas as pd

    from platform_assets.lib.training_sets import join_features

    mismatches: dict[str, int] = {}
    compared = 0
    worst = 0.0
    for service, group in served.groupby("feature_service"):
        entity_rows = pd.DataFrame({
            "transaction_id": group["transaction_id"].to_numpy(),
            "customer_id": group["customer_id"].to_numpy(),
            "merchant_id": group["merchant_id"].to_numpy(),
            "event_timestamp": pd.to_datetime(group["event_ts"], utc=True).to_numpy(),
            "amount": group["amount"].astype("float64").to_numpy(),
        })
        entity_rows["transaction_epoch"] = np.floor(
            entity_rows["event_timestamp"].astype("int64") / 1e9 + 0.5).astype("int64")
        entity_rows["transaction_us"] = entity_rows["event_timestamp"].astype("int64") // 1_000
        entity_rows = entity_rows.sort_values(["event_timestamp", "transaction_id"], kind="stable")
        vectors = group.set_index("transaction_id")["features"].map(json.loads)
        offline = join_features(store, entity_rows.reset_index(drop=True), service)
        for _, row in offline.iterrows():
            online = vectors.loc[row["transaction_id"]]
            online = online.iloc[0] if isinstance(online, pd.Series) else online
            for name, value in online.items():
                if name not in offline.columns:
                    continue
                expected = row[name]
                a = np.nan if value is None else float(value)
                b = np.nan if pd.isna(expected) else float(expected)
                if np.isnan(a) and np.isnan(b):
                    continue
                diff = abs(a - b) if not (np.isnan(a) or np.isnan(b)) else np.inf
                if diff > SKEW_TOLERANCE * max(1.0, abs(b) if not np.isnan(b) else 1.0):
                    mismatches[name] = mismatches.get(name, 0) + 1
                    worst = max(worst, diff)
            compared += 1
    return {"compared": compared, "mismatches": mismatches, "worst": worst}


def build_served_predictions(partitions: dg.PartitionsDefinition,
                             pool: str | None = names.DUCKDB_WRITER_POOL) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.SERVED_PREDICTIONS,
        group_name=names.SERVING,
        kinds={"duckdb", "fastapi"},
        partitions_def=partitions,
        pool=pool,
        deps=[names.DEPLOYED_MODEL],
        check_specs=[dg.AssetCheckSpec(
            names.SKEW_CHECK, asset=names.SERVED_PREDICTIONS,
            description=f"For a sample of up to {SKEW_SAMPLE} served transactions, the vector served equals the "
                        "offline point-in-time vector at the transaction's instant")],
        automation_condition=dg.AutomationCondition.on_cron("10 0 * * *"),
        description="One UTC day of the scoring service's prediction log, in the warehouse "
                    f"({TABLE}): every served prediction with its features, model version and shadow score.",
        metadata={"table": TABLE},
    )
    def served_predictions(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, feast: FeastResource,
        storage: PlatformStorage,
    ):
        day = date.fromisoformat(context.partition_key)
        files = _log_files(storage.serving_log_dir(), day)
        lines = _complete_lines(files)
        def work(con):
            if any(object_store.is_remote(f) for f in files):
                object_store.configure_duckdb(con)  # read_json of the shared store's objects
            rows = load_day(con, files, day, datetime.now(UTC))
            sample = con.execute(
                f"SELECT transaction_id, customer_id, merchant_id, amount, event_ts, feature_service, features "
                f"FROM {TABLE} WHERE served_date = $day AND feature_service IS NOT NULL "
                f"ORDER BY hash(transaction_id, served_at) LIMIT {SKEW_SAMPLE}", {"day": day},
            ).df()
            summary = con.execute(
                f"SELECT count(*) FILTER (WHERE decision = 'review'), avg(score), "
                f"count(*) FILTER (WHERE challenger_score IS NOT NULL), string_agg(DISTINCT model_version, ',') "
                f"FROM {TABLE} WHERE served_date = $day", {"day": day},
            ).fetchone()
            return rows, sample, summary, _export_day(con, storage.served_dir(), day)

        # On the lake, a commit that conflicts with another writer of the table is run again; one writer per day.
        rows, sample, summary, export = warehouse.write(work, log=context.log.warning, keys=(f"{TABLE}/{day}",))
        context.log.info(f"{day}: {rows:,} served predictions from {len(files)} log file(s)")
        yield dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "log_files": len(files),
            "torn_lines_skipped": max(0, lines - rows),
            "reviewed": int(summary[0] or 0),
            "mean_score": dg.MetadataValue.float(float(summary[1] or 0.0)),
            "shadow_scored": int(summary[2] or 0),
            "model_versions": summary[3] or "",
            "parquet": dg.MetadataValue.path(str(export)),
        })
        if sample.empty:
            yield dg.AssetCheckResult(passed=True, check_name=names.SKEW_CHECK,
                                      metadata={"compared": 0, "note": "nothing served that day"})
            return
        found = skew(feast.store(), sample)
        yield dg.AssetCheckResult(
            passed=not found["mismatches"], check_name=names.SKEW_CHECK,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"compared": found["compared"], "features_that_differ": dg.MetadataValue.json(
                found["mismatches"]), "largest_difference": dg.MetadataValue.float(float(found["worst"]))
                if found["worst"] != float("inf") else "missing on one side"},
        )

    return served_predictions
