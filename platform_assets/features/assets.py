"""Features: the Feast registry, the online store and point-in-time training sets, as assets.

`feast_feature_views` applies `feature_repo/` (the registry diff is its metadata); `feast_online_store` loads the
newest feature values into the online store; `training_set` joins matured, labelled transactions to their
features as they were known at each transaction's timestamp.
"""

import time
from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from platform_assets import training_data as ts
from platform_assets.exports import query
from platform_assets.features.online import materialize_new_windows
from platform_assets.resources import FeastResource, PlatformStorage

GROUP = "features"
FEATURE_MARTS = [dg.AssetKey("fct_customer_daily_features"), dg.AssetKey("fct_merchant_daily_features")]
FEATURE_SERVICE = "fraud_detector_v1"
TRAINABLE_CHECK = "enough_labelled_fraud_in_each_split"


class TrainingSetConfig(dg.Config):
    label_maturity_days: int = Field(default=21, description="Days after which a missing chargeback means 'not fraud'")
    warmup_days: int = Field(default=30, description="Leading days skipped while the 30-day windows fill up")
    holdout_days: int = Field(default=7, description="Newest whole days kept for evaluation and as drift reference")
    feature_service: str = Field(default=FEATURE_SERVICE)
    min_positives_per_split: int = Field(default=10, description="Frauds each split needs for the check to pass")
    as_of: str | None = Field(
        default=None, description="ISO time to cut the world at (a retrain's drift window end); default: newest data"
    )


@dg.asset(
    group_name=GROUP,
    kinds={"feast"},
    deps=FEATURE_MARTS,
    description="The Feast registry: entities, feature views over the dbt feature marts, and feature services.",
)
def feast_feature_views(context: dg.AssetExecutionContext, feast: FeastResource) -> dg.MaterializeResult:
    from platform_assets.features.registry import apply_repo  # Feast imports take seconds: only when run

    store = feast.store()
    objects = feast.feature_objects().all()
    diff = apply_repo(store, objects)
    views = store.list_feature_views()
    context.log.info(f"feast apply: {diff['added']} added, {diff['changed']} changed, {diff['removed']} removed")
    return dg.MaterializeResult(
        metadata={
            "added": dg.MetadataValue.json(diff["added"]),
            "changed": dg.MetadataValue.json(diff["changed"]),
            "removed": dg.MetadataValue.json(diff["removed"]),
            "objects_changed": len(diff["added"]) + len(diff["changed"]) + len(diff["removed"]),
            "feature_views": dg.MetadataValue.json(sorted(v.name for v in views)),
            "features": sum(len(v.features) for v in views),
            "feature_services": dg.MetadataValue.json(sorted(s.name for s in store.list_feature_services())),
            "project": store.project,
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"feast"},
    deps=[feast_feature_views, *FEATURE_MARTS],
    description="The online store holding each customer's and merchant's newest feature values for serving.",
)
def feast_online_store(
    context: dg.AssetExecutionContext, feast: FeastResource, storage: PlatformStorage
) -> dg.MaterializeResult:
    store = feast.store()
    exports = storage.exports_dir()
    latest = query(
        exports,
        "SELECT (SELECT max(event_timestamp) FROM {c}) AS c, (SELECT max(event_timestamp) FROM {m}) AS m",
        c="fct_customer_daily_features",
        m="fct_merchant_daily_features",
    ).iloc[0]
    # Data time, not wall time: the newest feature row is included whatever day the run happens on.
    end = max(latest.c, latest.m).to_pydatetime() + timedelta(seconds=1)
    started = time.perf_counter()
    windows = materialize_new_windows(store, end)
    elapsed = time.perf_counter() - started
    window_start = min((w.start for w in windows), default=end)
    counts = query(
        exports,
        """
        SELECT (SELECT count(DISTINCT customer_id) FROM {c} WHERE event_timestamp >= $s) AS customers,
               (SELECT count(DISTINCT merchant_id) FROM {m} WHERE event_timestamp >= $s) AS merchants
        """,
        {"s": window_start},
        c="fct_customer_daily_features",
        m="fct_merchant_daily_features",
    ).iloc[0]
    entities = int(counts.customers) + int(counts.merchants)
    context.log.info(f"materialized up to {end.isoformat()}: {entities:,} entities in {elapsed:.1f}s")
    return dg.MaterializeResult(
        metadata={
            "materialized_until": end.isoformat(),
            "windows": dg.MetadataValue.json(
                [{"view": w.view, "start": w.start.isoformat(), "end": w.end.isoformat()} for w in windows]
            ),
            "customers_updated": int(counts.customers),
            "merchants_updated": int(counts.merchants),
            "materialize_seconds": round(elapsed, 3),
            "online_store": store.config.online_store.type,
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"feast", "parquet"},
    deps=[feast_feature_views, dg.AssetKey("fct_transactions"), dg.AssetKey("fct_transaction_labels")],
    description="Matured, labelled transactions with point-in-time-correct features: a reproducible snapshot.",
    check_specs=[
        dg.AssetCheckSpec(
            TRAINABLE_CHECK,
            asset="training_set",
            blocking=True,
            description="Both splits hold enough frauds to train and to judge a model",
        )
    ],
)
def training_set(
    context: dg.AssetExecutionContext, config: TrainingSetConfig, feast: FeastResource, storage: PlatformStorage
) -> dg.MaterializeResult:
    store = feast.store()
    exports = storage.exports_dir()
    as_of = datetime.fromisoformat(config.as_of) if config.as_of else None
    entity_rows, window = ts.labelled_transactions(exports, config.label_maturity_days, config.warmup_days, as_of)
    context.log.info(f"joining features for {len(entity_rows):,} matured transactions")
    started = time.perf_counter()
    frame = ts.join_features(store, entity_rows, config.feature_service)
    join_seconds = time.perf_counter() - started
    frame, holdout_start = ts.assign_split(frame, window["window_end"], config.holdout_days)
    feature_columns = ts.TRANSACTION_FEATURES + ts.service_feature_columns(store, config.feature_service)
    frame = frame[[*ts.KEYS, *feature_columns, ts.LABEL, "split"]]
    holdout = frame[frame["split"] == "holdout"]
    train_positives = int(frame.loc[frame["split"] == "train", ts.LABEL].sum())
    holdout_positives = int(holdout[ts.LABEL].sum())
    trainable = min(train_positives, holdout_positives) >= config.min_positives_per_split
    manifest = ts.save_snapshot(
        frame,
        {
            "snapshot_id": ts.snapshot_id(config.feature_service, window, frame),
            "feature_service": config.feature_service,
            "feature_columns": feature_columns,
            "label_column": ts.LABEL,
            "window_start": window["window_start"].isoformat(),
            "window_end": window["window_end"].isoformat(),
            "as_of": window["as_of"].isoformat(),
            "holdout_start": holdout_start.isoformat(),
            "rows": len(frame),
            "positives": int(frame[ts.LABEL].sum()),
            "holdout_rows": len(holdout),
            "holdout_positives": int(holdout[ts.LABEL].sum()),
        },
        storage.training_sets_dir(),
    )
    return dg.MaterializeResult(
        metadata={
            "snapshot_id": manifest.snapshot_id,
            "path": dg.MetadataValue.path(manifest.path),
            "dagster/row_count": manifest.rows,
            "positives": manifest.positives,
            "fraud_rate": round(manifest.positives / max(manifest.rows, 1), 5),
            "holdout_rows": manifest.holdout_rows,
            "window_start": manifest.window_start,
            "window_end": manifest.window_end,
            "as_of": manifest.as_of,
            "feature_columns": len(feature_columns),
            "join_seconds": round(join_seconds, 3),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=TRAINABLE_CHECK,
                passed=trainable,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"train_positives": train_positives, "holdout_positives": holdout_positives,
                          "min_positives_per_split": config.min_positives_per_split},
                description=None if trainable else "too few labelled frauds: simulate or ingest more days",
            )
        ],
    )


feature_assets = [feast_feature_views, feast_online_store, training_set]
