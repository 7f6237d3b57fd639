"""Features: the Feast registry, the online store and point-in-time training sets, as assets.

`feast_feature_views` applies `feature_repo/` (the registry diff is its metadata); `feast_online_store` loads only
the new windows of feature values into the online store, in bounded chunks; `training_set` joins matured, labelled
transactions to their features as they were known at each transaction's timestamp and saves a snapshot that can be
rebuilt by its id.
"""

import time
from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from platform_assets.features.online import DEFAULT_CHUNK, materialize_new_windows
from platform_assets.lib import names
from platform_assets.lib.exports import connect as _parquet_reader
from platform_assets.lib.identifiers import sql_identifier
from platform_assets.lib.run_config import TrainingSetConfig
from platform_assets.resources import FeastResource, LoopPolicy, PlatformStorage

FEATURE_MARTS = list(names.FEATURE_MARTS)


class OnlineStoreConfig(dg.Config):
    chunk_days: int = Field(default=DEFAULT_CHUNK.days,
                            description="Longest window one materialize call loads (bounds memory; default one TTL)")


@dg.asset(
    key=names.FEAST_FEATURE_VIEWS,
    group_name=names.FEATURES,
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
    key=names.FEAST_ONLINE_STORE,
    group_name=names.FEATURES,
    kinds={"feast"},
    deps=[feast_feature_views, *FEATURE_MARTS],
    description="The online store holding each customer's and merchant's newest feature values for serving.",
)
def feast_online_store(
    context: dg.AssetExecutionContext, config: OnlineStoreConfig, feast: FeastResource, storage: PlatformStorage
) -> dg.MaterializeResult:
    store = feast.store()
    views = store.list_feature_views()
    sources = {v.name: (v.batch_source.path, [c.name for c in v.entity_columns]) for v in views}
    newest = max(_newest_event(path) for path, _ in sources.values())
    # Data time, not wall time: the newest feature row is included whatever day the run happens on.
    end = newest + timedelta(seconds=1)
    written: dict[str, int] = {}

    def count_chunk(chunk) -> None:
        path, keys = sources[chunk.view]
        rows = _entities_in_window(path, keys, chunk.start, chunk.end)
        written[chunk.view] = written.get(chunk.view, 0) + rows
        context.log.info(f"{chunk.view} {chunk.start:%Y-%m-%d}..{chunk.end:%Y-%m-%d}: {rows:,} entities")

    started = time.perf_counter()
    chunks = materialize_new_windows(store, end, timedelta(days=config.chunk_days), on_chunk=count_chunk)
    elapsed = time.perf_counter() - started
    rows = sum(written.values())
    context.log.info(f"materialized up to {end.isoformat()}: {rows:,} entity rows in {elapsed:.1f}s")
    return dg.MaterializeResult(
        metadata={
            "materialized_until": end.isoformat(),
            "chunks": len(chunks),
            "windows": dg.MetadataValue.json(
                [{"view": w.view, "start": w.start.isoformat(), "end": w.end.isoformat()} for w in chunks]
            ),
            "rows_written": dg.MetadataValue.json(written),
            "dagster/row_count": rows,
            "materialize_seconds": round(elapsed, 3),
            "rows_per_second": round(rows / elapsed, 1) if elapsed > 0 else 0.0,
            "online_store": store.config.online_store.type,
        }
    )


def _newest_event(path: str):
    with _parquet_reader() as con:
        return con.execute("SELECT max(event_timestamp) FROM read_parquet(?)", [path]).fetchone()[0]


def _entities_in_window(path: str, keys: list[str], start, end) -> int:
    """Entity rows one materialize call writes: the entities with a feature row in [start, end)."""
    columns = ", ".join(sql_identifier(k) for k in keys)
    with _parquet_reader() as con:
        return con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM read_parquet(?) "
            "WHERE event_timestamp >= ? AND event_timestamp < ?)",
            [path, start, end],
        ).fetchone()[0]


@dg.asset(
    key=names.TRAINING_SET,
    group_name=names.FEATURES,
    kinds={"feast", "parquet"},
    deps=[feast_feature_views, *names.ENTITY_MARTS],
    description="Matured, labelled transactions with point-in-time-correct features: a reproducible snapshot.",
    check_specs=[
        dg.AssetCheckSpec(
            names.TRAINABLE_CHECK,
            asset=names.TRAINING_SET,
            blocking=True,
            description="Both splits hold enough frauds to train and to judge a model",
        )
    ],
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    feast: FeastResource,
    storage: PlatformStorage,
    policy: LoopPolicy,
) -> dg.MaterializeResult:
    from platform_assets.features import training_set_builder as ts  # pandas and Feast: only when run

    store = feast.store()
    as_of = datetime.fromisoformat(config.as_of) if config.as_of else None
    windows = policy.training_windows(config.label_maturity_days, config.warmup_days, config.holdout_days)
    started = time.perf_counter()
    built = ts.build_training_set(
        store, storage.exports_dir(), config.feature_service, windows["label_maturity_days"],
        windows["warmup_days"], windows["holdout_days"], storage.training_sets_dir(), as_of=as_of,
        chunk_rows=config.chunk_rows,
    )
    fields, feature_columns = built.manifest_fields, built.manifest_fields["feature_columns"]
    context.log.info(f"joined features for {fields['rows']:,} matured transactions in {built.chunks} chunk(s) "
                     f"in {built.join_seconds:.1f}s")
    train_positives, holdout_positives = built.train_positives, fields["holdout_positives"]
    trainable = min(train_positives, holdout_positives) >= config.min_positives_per_split
    manifest = ts.save_snapshot(built, storage.training_sets_dir())
    build_seconds = time.perf_counter() - started
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
            "feature_service": manifest.feature_service,
            "feature_service_version": manifest.feature_service_version,
            "upstream_versions": dg.MetadataValue.json(manifest.upstream_versions),
            "content_hash": manifest.content_hash,
            "feature_columns": len(feature_columns),
            "join_seconds": round(built.join_seconds, 3),
            "chunks": built.chunks,
            "build_seconds": round(build_seconds, 3),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=names.TRAINABLE_CHECK,
                passed=trainable,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"train_positives": train_positives, "holdout_positives": holdout_positives,
                          "min_positives_per_split": config.min_positives_per_split},
                description=None if trainable else "too few labelled frauds: simulate or ingest more days",
            )
        ],
    )


