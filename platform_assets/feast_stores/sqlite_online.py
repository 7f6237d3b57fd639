"""A SQLite online store with one row per entity and feature view.

Feast's stock SQLite store keeps one row per entity *and feature* and writes them with one `execute` each: at 1M
entities x 10 features that is 10M upserts (~5k entities/s, stack-facts). Here each feature view is one table
with a column per feature, written with `executemany` (from Arrow batches when the `ArrowLocalComputeEngine`
materializes, from protobufs when Feast's own write paths call `online_write_batch`), and read with one
primary-key lookup per view. The values and statuses a read returns are Feast's: the equivalence tests compare
`get_online_features` against the stock store on the same data.

Values of primitive types (int32/64, float32/64, string, bool) are stored as SQLite values; every other type as
its serialized `ValueProto`. Like the stock store, event timestamps are kept to the second, NaN is stored as
NULL (Feast's protobuf conversion treats NaN as missing too), and the feature view TTL is not applied on read.
Columns for new features are added on `feast apply` (and on first write); removed views' tables are dropped.
Unlike the stock store, a read never creates a missing file (it raises `OnlineStoreMissing`, so a lost store is
an error rather than None for every feature), a write never replaces a row with an older event time (as
Feast's Redis store: a materialization may overlap the stream consumer's pushes), and a connection whose file
was replaced at the path (rebuilt by `feast_online_store`) is reopened on the next call.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from feast import Entity
from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
from feast.online_response import TIMESTAMP_POSTFIX, OnlineResponse
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType
from pydantic import field_validator

from platform_assets.feast_stores import data_dir

STORE_TYPE = "platform_assets.feast_stores.sqlite_online.WideSqliteOnlineStore"
TABLE_SUFFIX = "__wide"

# Declared value type -> (ValueProto field, Arrow type the column is cast to before writing).
NATIVE_TYPES: dict[ValueType, tuple[str, pa.DataType]] = {
    ValueType.INT32: ("int32_val", pa.int32()),
    ValueType.INT64: ("int64_val", pa.int64()),
    ValueType.FLOAT: ("float_val", pa.float32()),
    ValueType.DOUBLE: ("double_val", pa.float64()),
    ValueType.STRING: ("string_val", pa.string()),
    ValueType.BOOL: ("bool_val", pa.bool_()),
}
_KEY_STRUCT = struct.Struct("<II")
_STRING = ValueType.STRING.value
_INT64_TYPE = ValueType.INT64.value
_INT64 = struct.Struct("<q")
_INT64_HEAD = _KEY_STRUCT.pack(_INT64_TYPE, 8)
SMALL = 64  # keys encoded in plain Python below this many rows


def quote(identifier: str) -> str:
    """An SQLite identifier: feature names come from the registry, not from users' requests, but may be any
    string Feast accepts, so they are always quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def wide_table_name(project: str, view: Any, versioning: bool) -> str:
    # A suffix of its own: a stock store's table of the same view (one row per feature) is never misread.
    return compute_table_id(project, view, versioning) + TABLE_SUFFIX


def encode_entity_keys(join_keys: list[str], columns: list[Any], value_types: list[ValueType]) -> list[bytes]:
    """Feast's entity-key serialization (version 3) for whole columns at once, in Arrow.

    Equal, byte for byte, to `serialize_entity_key(EntityKeyProto(...), 3)` (tested), without building a
    protobuf per row: a constant head (number of keys, then each key name, sorted by name as Feast does), then
    per value its type, byte length and bytes. Values are strings or int64s (other key types go through Feast's
    own function: TypeError here)."""
    order = sorted(range(len(join_keys)), key=lambda i: join_keys[i])
    head = [struct.pack("<I", len(join_keys))]
    for i in order:
        name = join_keys[i].encode("utf8")
        head.append(_KEY_STRUCT.pack(_STRING, len(name)) + name)
    if not isinstance(columns[0], pa.Array | pa.ChunkedArray) and len(columns[0]) <= SMALL:
        return _encode_small(b"".join(head), [columns[i] for i in order], [value_types[i] for i in order])
    parts: list[Any] = [pa.scalar(b"".join(head), pa.binary())]
    for i in order:
        column = columns[i]
        if not isinstance(column, pa.Array | pa.ChunkedArray):
            column = pa.array(column)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if column.null_count:
            raise TypeError("null entity key")
        if value_types[i] == ValueType.STRING:
            values = pc.cast(column, pa.binary())
            lengths = pc.binary_length(values).to_numpy(zero_copy_only=False).astype("<u4")
            parts += [pa.scalar(struct.pack("<I", _STRING), pa.binary()), _fixed_bytes(lengths, 4), values]
        elif value_types[i] == ValueType.INT64:
            numbers = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False).astype("<i8")
            parts += [pa.scalar(_KEY_STRUCT.pack(_INT64_TYPE, 8), pa.binary()), _fixed_bytes(numbers, 8)]
        else:
            raise TypeError(f"no fast key encoding for {value_types[i]}")
    return pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary())).to_pylist()


def _encode_small(head: bytes, columns: list[list], value_types: list[ValueType]) -> list[bytes]:
    """The same bytes in plain Python, for a few keys (a serving request): no Arrow call overhead."""
    encoders = []
    for value_type in value_types:
        if value_type == ValueType.STRING:
            encoders.append(_encode_string)
        elif value_type == ValueType.INT64:
            encoders.append(_encode_int64)
        else:
            raise TypeError(f"no fast key encoding for {value_type}")
    if any(v is None for column in columns for v in column):
        raise TypeError("null entity key")
    return [head + b"".join(encode(column[r]) for encode, column in zip(encoders, columns))
            for r in range(len(columns[0]))]


def _encode_string(value: str) -> bytes:
    raw = value.encode("utf8")
    return _KEY_STRUCT.pack(_STRING, len(raw)) + raw


def _encode_int64(value: int) -> bytes:
    return _INT64_HEAD + _INT64.pack(value)


def _fixed_bytes(array, width: int) -> pa.Array:
    """Each element's little-endian bytes as a binary value."""
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(array), [None, pa.py_buffer(array.tobytes())])
    return pc.cast(fixed, pa.binary())


def _epoch_seconds(column: pa.ChunkedArray | pa.Array) -> list[int | None]:
    """Timestamps as whole UTC seconds since the epoch (what the stock store keeps)."""
    if pa.types.is_timestamp(column.type):
        micros = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
        return pc.floor(pc.divide(pc.cast(micros, pa.float64()), 1_000_000)).cast(pa.int64()).to_pylist()
    return [None if v is None else int(v.timestamp()) for v in column.to_pylist()]


def _to_epoch(ts: datetime | None) -> int | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp())


class OnlineStoreMissing(sqlite3.OperationalError):
    """A read found no online store file at the configured path."""


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class WideSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """`online_store: {type: platform_assets.feast_stores.sqlite_online.WideSqliteOnlineStore, path: ...}`"""

    type: Literal["platform_assets.feast_stores.sqlite_online.WideSqliteOnlineStore"] = STORE_TYPE  # type: ignore[assignment]

    @field_validator("path")
    @classmethod
    def _default_data_dir(cls, path: str) -> str:
        """`${PLATFORM_DATA_DIR}` left unfilled by the feast CLI means the project's data dir (data_dir.py)."""
        return data_dir.resolve(path)


class WideSqliteOnlineStore(SqliteOnlineStore):
    _conn: sqlite3.Connection | None = None

    def __init__(self) -> None:
        super().__init__()
        self._identity: tuple[int, int] | None = None
        self._columns: dict[str, set[str]] = {}
        self._read_plans: dict[int, tuple] = {}

    # -- connection and schema -------------------------------------------------------------------------------

    def _get_conn(self, config: RepoConfig, create: bool = True) -> sqlite3.Connection:
        """The connection to the file at the configured path. Reads pass `create=False`: a missing store is an
        error, not a new empty database answering None for every feature. When the file at the path is no longer
        the one opened (deleted, or rebuilt and the corrupt one moved aside), the connection is reopened: a
        long-running reader must not keep reading a file the platform has replaced."""
        path = Path(self._get_db_path(config))
        identity = _file_identity(path)
        if self._conn is not None and identity != self._identity:
            self._conn.close()
            self._conn = None
            self._columns.clear()
        if self._conn is None:
            if getattr(config.online_store, "vector_enabled", False):
                raise ValueError("WideSqliteOnlineStore does not store vectors: use Feast's sqlite store for them")
            if identity is None and not create:
                raise OnlineStoreMissing(f"the online store {path} does not exist: materialize feast_online_store")
            path.parent.mkdir(parents=True, exist_ok=True)
            # No detect_types: timestamps are stored as integers, so there is nothing to convert.
            self._conn = sqlite3.connect(str(path), check_same_thread=False)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._identity = _file_identity(path)
        return self._conn

    def _ensure_table(self, conn: sqlite3.Connection, table_name: str, features: Sequence[str]) -> None:
        known = self._columns.get(table_name)
        if known is not None and all(f in known for f in features):
            return
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(table_name)} "
            "(entity_key BLOB PRIMARY KEY, event_ts INTEGER, created_ts INTEGER) WITHOUT ROWID"
        )
        existing = {row[1] for row in conn.execute(f"PRAGMA table_info({quote(table_name)})")}
        for feature in features:
            if feature not in existing:
                conn.execute(f"ALTER TABLE {quote(table_name)} ADD COLUMN {quote(feature)}")
                existing.add(feature)
        conn.commit()
        self._columns[table_name] = existing

    def table_name(self, config: RepoConfig, table: FeatureView) -> str:
        return wide_table_name(config.project, table, config.registry.enable_online_feature_view_versioning)

    _table_name = table_name

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ):
        conn = self._get_conn(config)
        for table in tables_to_keep:
            self._ensure_table(conn, self._table_name(config, table), [f.name for f in table.features])
        for table in tables_to_delete:
            name = self._table_name(config, table)
            conn.execute(f"DROP TABLE IF EXISTS {quote(name)}")
            self._columns.pop(name, None)
        conn.commit()

    def plan(self, config: RepoConfig, desired_registry_proto) -> list:
        # The tables are created by `update` (every `feast apply`); there is no separate infra object to track.
        return []

    def teardown(self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]):
        self._columns.clear()
        super().teardown(config, tables, entities)

    # -- writes ------------------------------------------------------------------------------------------------

    def _upsert_sql(self, table_name: str, features: Sequence[str]) -> str:
        columns = ["entity_key", "event_ts", "created_ts", *features]
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns[1:])
        # Never replace a row with an older one: a materialization of the offline history may run while the
        # stream consumer pushes newer states of the same view (Feast's Redis store skips older writes too).
        table = quote(table_name)
        return (
            f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT(entity_key) DO UPDATE SET {updates} "
            f"WHERE {table}.event_ts IS NULL OR excluded.event_ts IS NULL OR excluded.event_ts >= {table}.event_ts"
        )

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Feast's protobuf write path (push sources, `write_to_online_store`, stock engines)."""
        if not data:
            return
        conn = self._get_conn(config)
        table_name = self._table_name(config, table)
        types = {f.name: f.dtype.to_value_type() for f in table.features}
        # Rows may carry different feature subsets (stock semantics: only the given features change).
        by_features: dict[tuple[str, ...], list[tuple]] = {}
        for entity_key, values, event_ts, created_ts in data:
            key = serialize_entity_key(entity_key, config.entity_key_serialization_version)
            names = tuple(values)
            cells = [_stored_value(values[n], types.get(n)) for n in names]
            by_features.setdefault(names, []).append((key, _to_epoch(event_ts), _to_epoch(created_ts), *cells))
        with conn:
            for names, rows in by_features.items():
                self._ensure_table(conn, table_name, names)
                conn.executemany(self._upsert_sql(table_name, names), rows)
        if progress:
            progress(len(data))

    def online_write_arrow(
        self,
        config: RepoConfig,
        table: FeatureView,
        batch: pa.Table | pa.RecordBatch,
        join_key_types: dict[str, ValueType],
        timestamp_field: str,
        created_timestamp_column: str | None,
    ) -> int:
        """Write the newest feature rows of `table` straight from Arrow (`ArrowLocalComputeEngine`)."""
        if batch.num_rows == 0:
            return 0
        conn = self._get_conn(config)
        table_name = self._table_name(config, table)
        features = [f.name for f in table.features]
        self._ensure_table(conn, table_name, features)

        join_keys = list(join_key_types)
        key_types = [join_key_types[k] for k in join_keys]
        try:
            keys = encode_entity_keys(join_keys, [batch.column(k) for k in join_keys], key_types)
        except TypeError:
            keys = _keys_via_protos(batch, join_keys, key_types, config.entity_key_serialization_version)
        event_ts = _epoch_seconds(batch.column(timestamp_field))
        created = (
            _epoch_seconds(batch.column(created_timestamp_column))
            if created_timestamp_column and created_timestamp_column in batch.column_names
            else [None] * batch.num_rows
        )
        columns = [_stored_column(batch.column(f.name), f.dtype.to_value_type()) for f in table.features]
        with conn:
            conn.executemany(self._upsert_sql(table_name, features), zip(keys, event_ts, created, *columns))
        return batch.num_rows

    # -- reads -------------------------------------------------------------------------------------------------

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        conn = self._get_conn(config, create=False)
        table_name = self._table_name(config, table)
        names = list(requested_features) if requested_features else [f.name for f in table.features]
        available = self._columns.get(table_name)
        if available is None or any(n not in available for n in names):
            self._ensure_table(conn, table_name, [f.name for f in table.features])
            available = self._columns[table_name]
        names = [n for n in names if n in available]
        types = {f.name: f.dtype.to_value_type() for f in table.features}
        decoders = [_decoder(types.get(n)) for n in names]
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys]
        select = ", ".join(["entity_key", "event_ts", *(quote(n) for n in names)])
        if len(keys) == 1:
            rows = conn.execute(f"SELECT {select} FROM {quote(table_name)} WHERE entity_key = ?", keys).fetchall()
        else:
            rows = []
            for start in range(0, len(keys), 500):  # below SQLite's bound-parameter limit
                chunk = keys[start:start + 500]
                rows.extend(conn.execute(
                    f"SELECT {select} FROM {quote(table_name)} WHERE entity_key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall())
        found = {row[0]: row for row in rows}
        result: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            row = found.get(key)
            if row is None:
                result.append((None, None))
                continue
            ts = None if row[1] is None else datetime.fromtimestamp(row[1], tz=UTC)
            result.append((ts, {n: decode(v) for n, decode, v in zip(names, decoders, row[2:])}))
        return result

    # -- the serving path -----------------------------------------------------------------------------------

    def read_values(self, config: RepoConfig, table: FeatureView, columns: dict[str, list], requested: list[str]
                    ) -> tuple[list[int], dict[str, list]]:
        """One view's rows for the entities in `columns` (join key -> values, one per entity), as the Python
        values Feast's online response would hold (None: no row, or no value), with each row's event time in
        Unix seconds (0: no row). One primary-key lookup per distinct entity, no protobuf: the read the scoring
        service and `get_online_features` share."""
        conn = self._get_conn(config, create=False)
        table_name = self._table_name(config, table)
        # Per view object (the registry hands out new ones when it changes): its types and decoders, built once.
        plan = self._read_plans.get(id(table))
        if plan is None or plan[0] is not table:
            types = {f.name: f.dtype.to_value_type() for f in table.features}
            if len(self._read_plans) > 256:
                self._read_plans.clear()
            plan = self._read_plans[id(table)] = (table, types, {n: _python_decoder(t) for n, t in types.items()})
        _, types, decoders = plan
        available = self._columns.get(table_name)
        if available is None or any(n not in available for n in requested):
            self._ensure_table(conn, table_name, list(types))
            available = self._columns[table_name]
        names = [n for n in requested if n in available]
        keys = _entity_keys(table, columns, None, config.entity_key_serialization_version)
        unique = list(dict.fromkeys(keys))
        select = ", ".join(["entity_key", "event_ts", *(quote(n) for n in names)])
        rows = {}
        for start in range(0, len(unique), 500):  # below SQLite's bound-parameter limit
            chunk = unique[start:start + 500]
            where = "entity_key = ?" if len(chunk) == 1 else f"entity_key IN ({','.join('?' * len(chunk))})"
            for row in conn.execute(f"SELECT {select} FROM {quote(table_name)} WHERE {where}", chunk):
                rows[row[0]] = row
        found = [rows.get(k) for k in keys]
        row_ts = [0 if r is None or r[1] is None else r[1] for r in found]
        values: dict[str, list] = {}
        for name in requested:
            if name in names:
                i = 2 + names.index(name)
                to_python = decoders.get(name) or _python_decoder(None)
                values[name] = [None if r is None else to_python(r[i]) for r in found]
            else:
                values[name] = [None] * len(keys)
        return row_ts, values

    def get_online_features(self, config, features, entity_rows, registry, project, full_feature_names=False,
                            include_feature_view_version_metadata=False):
        """Feast's `get_online_features` for plain feature views, answered from SQLite rows as Python values.

        The stock path turns every value into a protobuf, copies it into a response protobuf and `to_dict()`
        turns it back; one entity costs ~0.2 ms of that. Here the rows are read once per view and `to_dict()` is
        served from them; the protobuf response (`.proto`) is built by Feast's own path when asked for. Feature
        resolution is Feast's (cached per registry refresh); on-demand views, request data, entity-less views,
        versioned reads and version metadata take the stock path."""
        from feast import utils

        plan = None
        if not include_feature_view_version_metadata:
            context = utils._get_cached_request_context(registry, project, features, full_feature_names)
            plan = _fast_plan(context, entity_rows)
        if plan is None:
            return super().get_online_features(config, features, entity_rows, registry, project,
                                               full_feature_names, include_feature_view_version_metadata)
        join_keys_set, entity_type_map, grouped_refs = plan
        columns = _columnar(entity_rows)
        n_rows = len(next(iter(columns.values())))
        values: dict[str, list] = {}
        timestamps: dict[str, list] = {}
        for name, column in columns.items():
            if name in join_keys_set:
                value_type = entity_type_map.get(name, ValueType.UNKNOWN)
                values[name] = column if value_type in (ValueType.STRING, ValueType.INT64) else [
                    feast_value_type_to_python_type(v) for v in python_values_to_proto_values(column, value_type)]
                timestamps[name] = [0] * n_rows
        for table, requested in grouped_refs:
            row_ts, found = self.read_values(config, table, columns, requested)
            prefix = table.projection.name_to_use()
            for name in requested:
                out = f"{prefix}__{name}" if full_feature_names else name
                values[out] = found[name]
                timestamps[out] = row_ts

        def stock_proto():
            return super(WideSqliteOnlineStore, self).get_online_features(
                config, features, entity_rows, registry, project, full_feature_names, False).proto

        return RowsOnlineResponse(values, timestamps, stock_proto)


def _stored_value(value: ValueProto, declared: ValueType | None) -> Any:
    native = NATIVE_TYPES.get(declared) if declared is not None else None
    kind = value.WhichOneof("val")
    if kind is None:
        return None
    if native is not None and kind == native[0]:
        return getattr(value, kind)
    return value.SerializeToString()


def _stored_column(column: pa.ChunkedArray | pa.Array, declared: ValueType) -> list[Any]:
    native = NATIVE_TYPES.get(declared)
    if native is not None:
        values = column if column.type == native[1] else pc.cast(column, native[1])
        if pa.types.is_floating(native[1]):
            values = pc.if_else(pc.is_nan(values), pa.scalar(None, native[1]), values)
        return values.to_pylist()
    protos = python_values_to_proto_values(column.to_numpy(zero_copy_only=False), declared)
    return [p.SerializeToString() if p.WhichOneof("val") else None for p in protos]


def _decoder(declared: ValueType | None) -> Callable[[Any], ValueProto]:
    native = NATIVE_TYPES.get(declared) if declared is not None else None

    def decode(value: Any) -> ValueProto:
        if value is None:
            return ValueProto()
        if isinstance(value, bytes):
            proto = ValueProto()
            proto.ParseFromString(value)
            return proto
        if native[0] == "bool_val":
            return ValueProto(bool_val=bool(value))
        return ValueProto(**{native[0]: value})

    return decode


def _keys_via_protos(batch, join_keys: list[str], key_types: list[ValueType], version: int) -> list[bytes]:
    values = [python_values_to_proto_values(batch.column(k).to_numpy(zero_copy_only=False), t)
              for k, t in zip(join_keys, key_types)]
    return [
        serialize_entity_key(EntityKeyProto(join_keys=join_keys, entity_values=[v[i] for v in values]), version)
        for i in range(batch.num_rows)
    ]


class RowsOnlineResponse(OnlineResponse):
    """An `OnlineResponse` holding Python values; its protobuf is Feast's own, built on first use."""

    def __init__(self, values: dict[str, list], timestamps: dict[str, list], build_proto: Callable[[], Any]):
        self._values = values
        self._timestamps = timestamps
        self._build_proto = build_proto
        self._proto = None
        self._feature_types = {}

    @property
    def proto(self):
        if self._proto is None:
            self._proto = self._build_proto()
        return self._proto

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, Any]:
        if not include_event_timestamps:
            return {name: list(column) for name, column in self._values.items()}
        response: dict[str, Any] = {}
        for name, column in self._values.items():
            response[name] = list(column)
            response[name + TIMESTAMP_POSTFIX] = list(self._timestamps[name])
        return response


def _columnar(entity_rows) -> dict[str, list]:
    if isinstance(entity_rows, list):
        columns: dict[str, list] = {k: [] for k in entity_rows[0]}
        for row in entity_rows:
            if row.keys() != columns.keys():
                raise ValueError("All entity_rows must have the same keys.")
            for k, v in row.items():
                columns[k].append(v)
        return columns
    return {k: list(v) for k, v in entity_rows.items()}


def _fast_plan(context, entity_rows):
    """(join keys, entity types, grouped refs) when the request is one the fast path answers exactly as Feast."""
    (_, odfvs, _, entity_type_map, join_keys_set, grouped_refs, _requested_names, needed_request_data,
     entityless) = context
    if odfvs or needed_request_data or entityless or not grouped_refs or not entity_rows:
        return None
    names = entity_rows[0].keys() if isinstance(entity_rows, list) else entity_rows.keys()
    if any(n not in join_keys_set for n in names):
        return None
    for table, _ in grouped_refs:
        if type(table) is not FeatureView or getattr(table.projection, "version_tag", None) is not None:
            return None
        columns = [(table.projection.join_key_map or {}).get(c.name, c.name) for c in table.entity_columns]
        if any(c not in names for c in columns):
            return None
    return join_keys_set, entity_type_map, grouped_refs


def _entity_keys(table: FeatureView, columns: dict[str, list], entity_type_map, version: int) -> list[bytes]:
    join_key_map = table.projection.join_key_map or {}
    join_keys = [c.name for c in table.entity_columns]
    values = [columns[join_key_map.get(k, k)] for k in join_keys]
    types = [table_type.dtype.to_value_type() for table_type in table.entity_columns]
    try:
        return encode_entity_keys(join_keys, values, types)
    except TypeError:
        protos = [python_values_to_proto_values(v, t) for v, t in zip(values, types)]
        return [serialize_entity_key(EntityKeyProto(join_keys=join_keys, entity_values=[p[i] for p in protos]),
                                     version) for i in range(len(values[0]))]


def _python_decoder(declared: ValueType | None) -> Callable[[Any], Any]:
    """A stored SQLite value as `feast_value_type_to_python_type` returns the stock store's protobuf."""
    native = NATIVE_TYPES.get(declared) if declared is not None else None
    proto_decoder = _decoder(declared)

    def decode(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bytes) or native is None:
            return feast_value_type_to_python_type(proto_decoder(value), declared)
        if native[0] == "bool_val":
            return bool(value)
        if native[0] in ("float_val", "double_val"):
            return float(value)
        return value

    return decode
