"""Feast's DuckDB offline store with the point-in-time join done by DuckDB's ASOF JOIN.

Stock Feast (ibis) joins every entity row to *every* earlier feature row of its key within the TTL, then ranks
them to keep the newest: 3.5-4.4x the time of DuckDB's own ASOF JOIN on the same files (stack-facts). An ASOF
JOIN finds the newest earlier row directly. Feast's semantics are kept, view by view:

- a feature row applies when `feature_ts <= entity_ts` and, with a TTL, `feature_ts >= entity_ts - ttl`
  (both inclusive, as in Feast's ibis join); older than the TTL means nulls;
- among rows with the same key and event timestamp the newest `created_timestamp` wins (the created time is
  part of the ASOF key, so the ASOF JOIN's pick is Feast's pick);
- with `filter_by_created_timestamp=True` a row applies only once `created_timestamp <= entity_ts` too (an ASOF
  JOIN on availability time over a running best row: `_view_cte`);
- every entity row comes back (in no particular order, as from Feast), with nulls where no feature row applies.

Cases this path does not cover go to the stock implementation unchanged: an entity frame given as SQL, sources
other than local parquet files or with a field mapping, substrait on-demand views. `pull_latest_from_table_or_query` (materialization) is one
DuckDB query too. Configured in feature_store.yaml:
`offline_store: {type: platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore}`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa
from feast.data_format import ParquetFormat
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig

from platform_assets.lib import object_store

STORE_TYPE = "platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore"
ENTITY_TABLE = "__feast_entity_rows"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def local_parquet_path(source: DataSource | None) -> str | None:
    """The file a source reads, when this store can read it itself (a parquet file, local or on the shared store's
    S3, with no field mapping)."""
    if not isinstance(source, FileSource) or source.field_mapping:
        return None
    path = source.path
    if "://" in path and not path.startswith(("file://", "s3://")):
        return None
    if not (isinstance(source.file_format, ParquetFormat) or (source.file_format is None and path.endswith(".parquet"))):
        return None
    return path.removeprefix("file://")


def connect(*paths: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB; one that reads s3:// `paths` gets httpfs and the shared store's secret."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if any(object_store.is_remote(p) for p in paths):
        object_store.configure_duckdb(con)
    return con


class AsofDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    type: Literal["platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore"] = STORE_TYPE  # type: ignore[assignment]


class ArrowRetrievalJob(RetrievalJob):
    """A retrieval whose result DuckDB computes on first use; on-demand views are applied by Feast's base class."""

    def __init__(self, compute, on_demand_feature_views=None, full_feature_names=False, metadata=None,
                 compute_df=None):
        super().__init__()
        self._compute = compute
        self._compute_df = compute_df
        self._table: pa.Table | None = None
        self._odfvs = on_demand_feature_views or []
        self._full_feature_names = full_feature_names
        self._metadata = metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        if self._table is None:
            self._table = self._compute()
        return self._table

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    def to_df(self, validation_reference=None, timeout: int | None = None) -> pd.DataFrame:
        """Without on-demand views or validation: Feast's frame without its `reset_index` copy (the Arrow table
        converts with a fresh RangeIndex already); the Arrow table is not kept, to halve peak memory."""
        if self._compute_df is None or self._odfvs or validation_reference is not None or self._table is not None:
            return super().to_df(validation_reference=validation_reference, timeout=timeout)
        return self._compute_df()

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def persist(self, storage, allow_overwrite: bool = False, timeout: int | None = None):
        import pyarrow.parquet as pq

        destination = storage.to_data_source()
        pq.write_table(self.to_arrow(), destination.path)


def latest_rows_sql(path: str, join_keys: list[str], features: list[str], timestamp_field: str,
                    created: str | None) -> str:
    """The newest row per key in [start, end] ($start, $end), Feast's order: event time, then created time.
    Sorted by key: the online store's B-tree then fills in order, 2-3x faster than in hash order."""
    columns = [*join_keys, *features, timestamp_field, *([created] if created else [])]
    order = f"{quote(timestamp_field)} DESC" + (f", {quote(created)} DESC" if created else "")
    partition = ", ".join(quote(k) for k in join_keys) or "1"
    return (
        f"SELECT {', '.join(quote(c) for c in columns)} FROM read_parquet({literal(path)}) "
        f"WHERE {quote(timestamp_field)} >= $start AND {quote(timestamp_field)} <= $end "
        f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {order}) = 1 ORDER BY {partition}"
    )


# Event time and created time folded into one ASOF key: (event µs) * 2^64 + (created µs). Ordering by it is
# Feast's ordering (event time, then created time); an entity row's key is its own time with the largest
# possible created part, so every row of the same event time still matches.
_SHIFT = "18446744073709551616"
_NO_CREATED = "-9223372036854775808"
_ANY_CREATED = "9223372036854775807"


def _view_cte(view: dict, filter_by_created: bool) -> tuple[str, str, str, list[str]]:
    """(SELECT for one view, the entity-side and view-side ASOF match columns, the columns holding the chosen
    row's event time and features).

    Without the created-time filter a row applies from its event time; rows tied on (key, event time) are
    ordered by created time inside the ASOF key (`_SHIFT`), so the ASOF JOIN's newest row is Feast's pick, with
    no window or deduplication pass (a row without created time loses a tie, as in Feast's `DESC` order).

    With the filter a row applies only from `greatest(event time, created time)` (once it has happened *and* been
    loaded), yet the pick among applicable rows is still the newest event time, then created time. So rows are
    ordered by that availability time and each carries the best (event, created) row available up to it (a
    running max, peers included); the ASOF JOIN on availability then lands on exactly Feast's pick, and the TTL
    is checked against the picked row's event time. Rows without a created time are never known (Feast's
    `created <= entity time` is not true for them).

    Rows that no entity row can pick are left out before the join: rows known only after the newest entity row
    (`$max_ets`); with a TTL, rows older than the oldest entity row minus the TTL (`$min_ets`): such a row could
    only be the newest one applicable where every applicable row is older than the TTL, and then the answer is
    null either way; without a TTL, where all history counts, rows of keys no entity row has. So a chunked build
    joins only the feature rows near its chunk, not the whole history of every key each time. (The key filter
    costs a semi-join: with a TTL the time bound already cuts most rows, so it is left out there.)"""
    ts, created = quote(view["timestamp_field"]), quote(view["created"]) if view["created"] else None
    ttl: timedelta | None = view["ttl"]
    pickable = f" AND {ts} >= $min_ets - INTERVAL ({int(ttl.total_seconds() * 1_000_000)}) MICROSECOND" if ttl else ""
    keys = [quote(k) for k in view["join_key_map"]]
    key_aliases = [f"{k} AS {quote(f'__k{j}')}" for j, k in enumerate(keys)]
    source = f"read_parquet({literal(view['path'])}) AS __src"
    if view["join_key_map"] and not ttl:
        same_key = " AND ".join(f"__e.{quote(entity_col)} = __src.{quote(view_key)}"
                                for view_key, entity_col in view["join_key_map"].items())
        pickable += f" AND EXISTS (SELECT 1 FROM {ENTITY_TABLE} AS __e WHERE {same_key})"
    features = [quote(src) for src, _ in view["features"]]
    if filter_by_created and created:
        best = ", ".join([f"__ts := {ts}", f"__cr := {created}",
                          *(f"{quote(f'__v{j}')} := {f}" for j, f in enumerate(features))])
        body = (
            f"SELECT {', '.join(key_aliases)}, greatest({ts}, {created}) AS __at, "
            f"max(struct_pack({best})) OVER (PARTITION BY {', '.join(keys)} ORDER BY greatest({ts}, {created}) "
            f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __best "
            f"FROM {source} WHERE {ts} IS NOT NULL AND {created} IS NOT NULL "
            f"AND greatest({ts}, {created}) <= $max_ets{pickable}"
        )
        return body, "__ets", "__at", ["__best.__ts",
                                       *(f"__best.{quote(f'__v{j}')}" for j in range(len(features)))]
    created_part = f"coalesce(epoch_us({created}), {_NO_CREATED})" if created else "0"
    columns = [*key_aliases, f"{ts} AS __ts", f"epoch_us({ts})::HUGEINT * {_SHIFT} + {created_part} AS __m",
               *(f"{f} AS {quote(f'__v{j}')}" for j, f in enumerate(features))]
    body = f"SELECT {', '.join(columns)} FROM {source} WHERE {ts} IS NOT NULL AND {ts} <= $max_ets{pickable}"
    return body, "__m", "__m", ["__ts", *(quote(f"__v{j}") for j in range(len(features)))]


def point_in_time_sql(entity_columns: list[str], event_timestamp_col: str, views: list[dict],
                      filter_by_created: bool = False) -> str:
    """One statement: per view, one ASOF JOIN of the entity rows to that view's rows (see `_view_cte`); a TTL
    turns a match older than the TTL into nulls."""
    ctes, joins, selected = [], [], [f"e.{quote(c)}" for c in entity_columns]
    ets = f"e.{quote(event_timestamp_col)}"
    entity = (f"SELECT *, {quote(event_timestamp_col)} AS __ets, epoch_us({quote(event_timestamp_col)})::HUGEINT "
              f"* {_SHIFT} + {_ANY_CREATED} AS __m FROM {ENTITY_TABLE}")
    for i, view in enumerate(views):
        alias = f"f{i}"
        body, entity_match, view_match, (picked_ts, *values) = _view_cte(view, filter_by_created)
        ctes.append(f"{alias} AS ({body})")
        on = [f"e.{entity_match} >= {alias}.{view_match}"]
        on += [f"e.{quote(entity_col)} = {alias}.{quote(f'__k{j}')}"
               for j, entity_col in enumerate(view["join_key_map"].values())]
        joins.append(f"ASOF LEFT JOIN {alias} ON {' AND '.join(on)}")
        ttl: timedelta | None = view["ttl"]
        for value, (_, out) in zip(values, view["features"]):
            value = f"{alias}.{value}"
            if ttl:
                micros = int(ttl.total_seconds() * 1_000_000)
                value = (f"CASE WHEN {alias}.{picked_ts} >= {ets} - INTERVAL ({micros}) MICROSECOND "
                         f"THEN {value} END")
            selected.append(f"{value} AS {quote(out)}")
    return (
        f"WITH e AS ({entity}), {', '.join(ctes)} "
        f"SELECT {', '.join(selected)} FROM e {' '.join(joins)}"
    )


class AsofDuckDBOfflineStore(DuckDBOfflineStore):
    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None,
        start_date: datetime,
        end_date: datetime,
    ) -> RetrievalJob:
        path = local_parquet_path(data_source)
        if path is None:
            return DuckDBOfflineStore.pull_latest_from_table_or_query(
                config, data_source, join_key_columns, feature_name_columns, timestamp_field,
                created_timestamp_column, start_date, end_date,
            )
        sql = latest_rows_sql(path, join_key_columns, feature_name_columns, timestamp_field,
                              created_timestamp_column or None)

        def compute() -> pa.Table:
            con = connect(path)
            try:
                return con.execute(sql, {"start": start_date, "end": end_date}).to_arrow_table()
            finally:
                con.close()

        return ArrowRetrievalJob(compute)

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        views = None
        if isinstance(entity_df, pd.DataFrame) and not any(v.mode == "substrait" for v in odfvs):
            views = _plan_views(feature_views, feature_refs, full_feature_names)
        if views is None:
            return DuckDBOfflineStore.get_historical_features(
                config, feature_views, feature_refs, entity_df, registry, project, full_feature_names,
                filter_by_created_timestamp,
            )

        event_timestamp_col = offline_utils.infer_event_timestamp_from_entity_df(
            dict(zip(entity_df.columns, entity_df.dtypes))
        )
        entity_columns = list(entity_df.columns)
        timestamps = entity_df[event_timestamp_col].infer_objects()
        if pd.api.types.is_string_dtype(timestamps) or pd.api.types.is_object_dtype(timestamps):
            timestamps = pd.to_datetime(timestamps, utc=True)
        rows = entity_df.assign(**{event_timestamp_col: timestamps})
        sql = point_in_time_sql(entity_columns, event_timestamp_col, views, filter_by_created_timestamp)

        bounds = {"min_ets": timestamps.min().to_pydatetime() if len(rows) else None,
                  "max_ets": timestamps.max().to_pydatetime() if len(rows) else None}

        def run(fetch):
            con = connect(*(view["path"] for view in views))
            try:
                con.register(ENTITY_TABLE, rows)
                return fetch(con.execute(sql, bounds))
            finally:
                con.close()

        def compute() -> pa.Table:
            return run(lambda result: result.to_arrow_table())

        def compute_df() -> pd.DataFrame:
            return compute().to_pandas()

        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in entity_columns if c != event_timestamp_col],
            min_event_timestamp=bounds["min_ets"],
            max_event_timestamp=bounds["max_ets"],
        )
        return ArrowRetrievalJob(compute, [v for v in odfvs if v.mode != "substrait"], full_feature_names, metadata,
                                 compute_df)


def _plan_views(feature_views: list[FeatureView], feature_refs: list[str], full_feature_names: bool):
    """Per view: its parquet file, key mapping, timestamps, TTL and (source column, output column) features;
    None when a view needs the stock path."""
    planned = []
    for view in feature_views:
        path = local_parquet_path(view.batch_source)
        if path is None:
            return None
        prefix = view.projection.name_to_use()
        names = [ref.split(":", 1)[1] for ref in feature_refs if ref.startswith(f"{prefix}:")]
        base = view.projection.name_alias or view.name
        planned.append({
            "path": path,
            "timestamp_field": view.batch_source.timestamp_field,
            "created": view.batch_source.created_timestamp_column or None,
            "join_key_map": view.projection.join_key_map or {e.name: e.name for e in view.entity_columns},
            "features": [(n, f"{base}__{n}" if full_feature_names else n) for n in names],
            "ttl": view.ttl if view.ttl and view.ttl.total_seconds() > 0 else None,
        })
    return planned
