"""Custom Feast stores: the extension points Feast offers for speed, with Feast's own semantics.

Feast loads these classes by their path from `feature_store.yaml` (also from the `feast` CLI in feature_repo/),
so they live in the installed package, on the ground floor: no stage imports them, Feast does.

- `sqlite_online.WideSqliteOnlineStore`: one row per entity and feature view (stock: one row per entity *and
  feature*), written with `executemany` straight from Arrow batches; reads are one primary-key lookup per view.
- `arrow_engine.ArrowLocalComputeEngine`: Feast's local compute engine, except that a plain feature view's
  newest rows are pulled deduplicated by the offline store and handed to the online store as Arrow batches
  instead of one protobuf per value (stock spends ~28% of materialization there, and all of its memory).
- `data_dir.DataDirFileRegistryStore`: Feast's file registry, whose `${PLATFORM_DATA_DIR}` path falls back to the
  project's data directory when the `feast` CLI runs with the variable unset (the online store's config does the
  same), so Feast's own CLI and UI work in feature_repo/ with nothing exported.
- `duckdb_offline.AsofDuckDBOfflineStore`: Feast's DuckDB offline store whose point-in-time join is one DuckDB
  ASOF JOIN per feature view (TTL, created-timestamp tie-breaking and entity rows without features kept as
  nulls, exactly as Feast's join does).

Each is tested against Feast's stock implementation on the same data (tests/test_feast_stores.py) and measured
in benchmarks/ (docs/benchmarks.md). Nothing here is imported when the Dagster definitions load.
"""
