"""Features: the Feast registry, the online store and point-in-time training sets, as assets.

`feast_feature_views` applies `feature_repo/` (the registry diff is its metadata); `feast_online_store` loads only
the new windows of feature values into the online store, in bounded chunks, unless the store was lost (missing,
corrupt, emptied, short of entities): then it moves a corrupt file aside and rebuilds the whole covered range, and
its blocking check `online_store_matches_offline` compares the entity keys it holds with the offline source; `training_set` joins matured, labelled
transactions to their features as they were known at each transaction's timestamp and saves a snapshot that can be
rebuilt by its id.
"""

import time
from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from platform_assets.features import online
from platform_assets.features.online import DEFAULT_CHUNK
from platform_assets.lib import names
from platform_assets.lib import online_store_health as health
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
    description="The online store holding each customer's and merchant's newest feature values for serving; "
    "rebuilt from the offline data when it is missing, corrupt or short.",
    check_specs=[
        dg.AssetCheckSpec(
            names.ONLINE_STORE_CHECK,
            asset=names.FEAST_ONLINE_STORE,
            blocking=True,
            description="Every view's online entity keys cover the offline source's entities in the range the "
            "store serves, and the store reads back whole",
        )
    ],
)
def feast_online_store(
    context: dg.AssetExecutionContext, config: OnlineStoreConfig, feast: FeastResource, storage: PlatformStorage
) -> dg.MaterializeResult:
    """Incremental by default; a rebuild when `diagnose` finds the store lost. The registry remembers what was
    loaded, the store may have forgotten it: trusting the registry alone reported success with 0 rows over a
    deleted file, and left a corrupt one failing every read."""
    store = feast.store()
    views = store.list_feature_views()
    sources = {v.name: (v.batch_source.path, [c.name for c in v.entity_columns]) for v in views}
    newest = max(_newest_event(path) for path, _ in sources.values())
    # Data time, not wall time: the newest feature row is included whatever day the run happens on.
    end = newest + timedelta(seconds=1)
    written: dict[str, int] = {}

    def offline_entities(view, start, until) -> int:
        path, keys = sources[view.name]
        return _entities_in_window(path, keys, start, until, inclusive=True)

    diagnosis = online.diagnose(store, views, offline_entities)
    moved_aside = None
    if diagnosis.rebuild:
        context.log.warning(f"online store {diagnosis.problem}: rebuilding it from the offline data")
        if diagnosis.problem.status == health.CORRUPT:
            moved_aside = health.move_aside(diagnosis.location)
            context.log.warning(f"the corrupt online store was moved aside to {moved_aside}")
        windows = online.rebuild_windows(views, end)
    else:
        windows = online.pending_windows(views, end)

    def count_chunk(chunk) -> None:
        path, keys = sources[chunk.view]
        rows = _entities_in_window(path, keys, chunk.start, chunk.end)
        written[chunk.view] = written.get(chunk.view, 0) + rows
        context.log.info(f"{chunk.view} {chunk.start:%Y-%m-%d}..{chunk.end:%Y-%m-%d}: {rows:,} entities")

    started = time.perf_counter()
    chunks = online.materialize_windows(store, windows, timedelta(days=config.chunk_days), on_chunk=count_chunk)
    elapsed = time.perf_counter() - started
    rows = sum(written.values())
    context.log.info(f"materialized up to {end.isoformat()}: {rows:,} entity rows in {elapsed:.1f}s")
    check = _store_matches_offline(store, views, end, offline_entities)
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
            names.ONLINE_STORE_REBUILT: diagnosis.rebuild,
            "rebuild_reason": str(diagnosis.problem) if diagnosis.problem else "",
            "moved_aside": str(moved_aside) if moved_aside else "",
            "entities": dg.MetadataValue.json(check.metadata["online_entities"].value),
        },
        check_results=[check],
    )


def _store_matches_offline(store, views, end, offline_entities) -> dg.AssetCheckResult:
    """After the load: the store reads back whole, and holds at least every entity the offline source has for
    each view in its covered range (more is fine: entities whose newest row has aged past the TTL stay, stale)."""
    problem = None
    if health.is_sqlite(store.config.online_store):
        problem = health.integrity_problem(store.config.online_store.path)
    counts = health.entity_counts(store, views) if problem is None else {v.name: 0 for v in views}
    expected = {v.name: offline_entities(v, online.covered_since(v, end), end) for v in views}
    short = sorted(name for name, want in expected.items() if counts[name] < want)
    passed = problem is None and not short
    if problem is not None:
        description = str(problem)
    elif short:
        description = "online entity keys below the offline source: " + ", ".join(
            f"{n} {counts[n]:,} of {expected[n]:,}" for n in short)
    else:
        description = None
    return dg.AssetCheckResult(
        check_name=names.ONLINE_STORE_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"online_entities": dg.MetadataValue.json(counts),
                  "offline_entities": dg.MetadataValue.json(expected)},
        description=description,
    )


def _newest_event(path: str):
    with _parquet_reader(path) as con:
        return con.execute("SELECT max(event_timestamp) FROM read_parquet(?)", [path]).fetchone()[0]


def _entities_in_window(path: str, keys: list[str], start, end, inclusive: bool = False) -> int:
    """Entity rows one materialize call writes: the entities with a feature row in [start, end), or in
    [start, end] (what a materialization up to `end` leaves in the store: Feast's window includes its end)."""
    columns = ", ".join(sql_identifier(k) for k in keys)
    upper = "<=" if inclusive else "<"
    with _parquet_reader(path) as con:
        return con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM read_parquet(?) "
            f"WHERE event_timestamp >= ? AND event_timestamp {upper} ?)",
            [path, start, end],
        ).fetchone()[0]


# Bump when a change to the training-set code changes which rows or features a snapshot holds.
TRAINING_SET_VERSION = "1"


@dg.asset(
    key=names.TRAINING_SET,
    group_name=names.FEATURES,
    kinds={"feast", "parquet"},
    deps=[feast_feature_views, *names.ENTITY_MARTS],
    code_version=TRAINING_SET_VERSION,
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


