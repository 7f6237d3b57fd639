"""Feast's DuckDB offline store with the point-in-time join done by DuckDB's ASOF JOIN.

Stock Feast (ibis) joins every entity row to *every* earlier feature row of its key within the TTL, then ranks
them to keep the newest: 3.5-4.4x the time of DuckDB's own ASOF JOIN on the same files (stack-facts). An ASOF
JOIN finds the newest earlier row directly. Feast's semantics are kept, view by view:

- a feature row applies when `feature_ts <= entity_ts` and, with a TTL, `feature_ts >= entity_ts - ttl`
  (both inclusive, as in Feast's ibis join); older than the TTL means nulls;
- among rows with the same key and event timestamp the newest `created_timestamp` wins (the rows are
  deduplicated that way before the join, so the ASOF JOIN's pick is Feast's pick);
- every entity row comes back, in the entity frame's order, with nulls where no feature row applies.

Cases this path does not cover go to the stock implementation unchanged: an entity frame given as SQL,
`filter_by_created_timestamp=True` (two inequalities, not an ASOF join), sources other than local parquet files
or with a field mapping, substrait on-demand views. `pull_latest_from_table_or_query` (materialization) is one
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

STORE_TYPE = "platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore"
ENTITY_TABLE = "__feast_entity_rows"
ROW_ID = "__feast_row"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def local_parquet_path(source: DataSource | None) -> str | None:
    """The file a source reads, when this store can read it itself (a local parquet file, no field mapping)."""
    if not isinstance(source, FileSource) or source.field_mapping:
        return None
    path = source.path
    if "://" in path and not path.startswith("file://"):
        return None
    if not (isinstance(source.file_format, ParquetFormat) or (source.file_format is None and path.endswith(".parquet"))):
        return None
    return path.removeprefix("file://")


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


class AsofDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    type: Literal["platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore"] = STORE_TYPE  # type: ignore[assignment]


class ArrowRetrievalJob(RetrievalJob):
    """A retrieval whose result DuckDB computes on first use; on-demand views are applied by Feast's base class."""

    def __init__(self, compute, on_demand_feature_views=None, full_feature_names=False, metadata=None):
        super().__init__()
        self._compute = compute
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
    """The newest row per key in [start, end] ($start, $end), Feast's order: event time, then created time."""
    columns = [*join_keys, *features, timestamp_field, *([created] if created else [])]
    order = f"{quote(timestamp_field)} DESC" + (f", {quote(created)} DESC" if created else "")
    partition = ", ".join(quote(k) for k in join_keys) or "1"
    return (
        f"SELECT {', '.join(quote(c) for c in columns)} FROM read_parquet({literal(path)}) "
        f"WHERE {quote(timestamp_field)} >= $start AND {quote(timestamp_field)} <= $end "
        f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {order}) = 1"
    )


def point_in_time_sql(entity_columns: list[str], event_timestamp_col: str, views: list[dict]) -> str:
    """One statement: each view's rows deduplicated on (key, event time) by newest created time, then ASOF-joined
    to the entity rows; a TTL turns an older match into nulls."""
    ctes, joins, selected = [], [], [f"e.{quote(c)}" for c in entity_columns]
    ets = f"e.{quote(event_timestamp_col)}"
    for i, view in enumerate(views):
        alias = f"f{i}"
        keys = [f"{quote(k)} AS {quote(f'__k{j}')}" for j, k in enumerate(view["join_key_map"])]
        feats = [f"{quote(src)} AS {quote(f'__v{j}')}" for j, (src, _) in enumerate(view["features"])]
        ts = f"{quote(view['timestamp_field'])} AS __ts"
        body = f"SELECT {', '.join([*keys, ts, *feats])} FROM read_parquet({literal(view['path'])})"
        if view["created"]:
            key_list = ", ".join(quote(k) for k in view["join_key_map"])
            body += (f" QUALIFY row_number() OVER (PARTITION BY {key_list}, {quote(view['timestamp_field'])} "
                     f"ORDER BY {quote(view['created'])} DESC) = 1")
        ctes.append(f"{alias} AS ({body})")
        on = [f"{ets} >= {alias}.__ts"]
        on += [f"e.{quote(entity_col)} = {alias}.{quote(f'__k{j}')}"
               for j, entity_col in enumerate(view["join_key_map"].values())]
        joins.append(f"ASOF LEFT JOIN {alias} ON {' AND '.join(on)}")
        ttl: timedelta | None = view["ttl"]
        for j, (_, out) in enumerate(view["features"]):
            value = f"{alias}.{quote(f'__v{j}')}"
            if ttl:
                micros = int(ttl.total_seconds() * 1_000_000)
                value = f"CASE WHEN {alias}.__ts >= {ets} - INTERVAL ({micros}) MICROSECOND THEN {value} END"
            selected.append(f"{value} AS {quote(out)}")
    return (
        f"WITH e AS (SELECT * FROM {ENTITY_TABLE}), {', '.join(ctes)} "
        f"SELECT {', '.join(selected)} FROM e {' '.join(joins)} ORDER BY e.{quote(ROW_ID)}"
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
            con = connect()
            try:
                return con.execute(sql, {"start": start_date, "end": end_date}).fetch_arrow_table()
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
        if (isinstance(entity_df, pd.DataFrame) and not filter_by_created_timestamp
                and not any(v.mode == "substrait" for v in odfvs)):
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
        rows = entity_df.assign(**{event_timestamp_col: timestamps, ROW_ID: range(len(entity_df))})
        sql = point_in_time_sql(entity_columns, event_timestamp_col, views)

        def compute() -> pa.Table:
            con = connect()
            try:
                con.register(ENTITY_TABLE, rows)
                return con.execute(sql).fetch_arrow_table()
            finally:
                con.close()

        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in entity_columns if c != event_timestamp_col],
            min_event_timestamp=timestamps.min().to_pydatetime() if len(rows) else None,
            max_event_timestamp=timestamps.max().to_pydatetime() if len(rows) else None,
        )
        return ArrowRetrievalJob(compute, [v for v in odfvs if v.mode != "substrait"], full_feature_names, metadata)


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
