"""Our Feast stores against Feast's stock ones on the same data: identical training frames and online vectors.

One small world with the cases point-in-time joins get wrong: rows tied on event time (newest created time must
win), gaps longer than the TTL (nulls), entity rows before any feature row (kept, with nulls), entity
timestamps equal to a feature timestamp and exactly one TTL after it (both inclusive), nulls and NaN in
features, every primitive type, two entities with different TTLs, a multi-chunk materialization window.
"""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.types import Bool, Float32, Float64, Int32, Int64, String
from feast.value_type import ValueType

from platform_assets.feast_stores.arrow_engine import ENGINE_TYPE
from platform_assets.feast_stores.duckdb_offline import STORE_TYPE as OFFLINE_TYPE
from platform_assets.feast_stores.sqlite_online import STORE_TYPE as ONLINE_TYPE
from platform_assets.feast_stores.sqlite_online import encode_entity_keys

T0 = datetime(2026, 2, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CUSTOMER_TTL = timedelta(days=3)


def _world(tmp_path):
    rng = np.random.default_rng(11)
    rows = []
    for c in range(40):
        # customers 30..39 only start on day 8: entity rows before that have no feature row yet
        first_day = 8 if c >= 30 else 0
        for d in range(first_day, 14):
            if c % 7 == 3 and 4 <= d <= 9:  # a gap longer than the TTL
                continue
            ts = T0 + d * DAY
            rows.append({
                "customer_id": f"C{c:03d}", "event_timestamp": ts, "created_timestamp": ts + timedelta(hours=1),
                "spend": None if (c + d) % 11 == 0 else float(rng.gamma(2, 30)),
                "txn_count": None if (c + d) % 13 == 0 else int(rng.integers(0, 20)),
                "ratio32": float(np.float32(rng.random())) if (c + d) % 9 else float("nan"),
                "small_int": int(rng.integers(-5, 5)),
                "segment": ["gold", "silver", "bronze"][(c + d) % 3],
                "is_vip": bool((c + d) % 2),
            })
            if (c + d) % 5 == 0:  # a late correction of the same day: the newer created_timestamp wins
                late = dict(rows[-1], created_timestamp=ts + timedelta(days=2), spend=-1.0, txn_count=999)
                rows.append(late)
    customers = pd.DataFrame(rows)
    customers["txn_count"] = customers["txn_count"].astype("Int64")
    customers["ratio32"] = customers["ratio32"].astype("float32")
    customers["small_int"] = customers["small_int"].astype("int32")
    merchants = pd.DataFrame([
        {"merchant_id": f"M{m:02d}", "event_timestamp": T0 + d * DAY, "created_timestamp": T0 + d * DAY,
         "merch_volume": float(m * 100 + d)}
        for m in range(6) for d in range(0, 14, 2)
    ])
    paths = {}
    for name, frame in (("customers", customers), ("merchants", merchants)):
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False, coerce_timestamps="us", allow_truncated_timestamps=True)

    entities = []
    for i in range(600):
        c = int(rng.integers(0, 42))  # C040, C041 never have features
        ts = T0 + timedelta(seconds=int(rng.integers(-DAY.total_seconds(), 16 * DAY.total_seconds())))
        entities.append({"customer_id": f"C{c:03d}", "merchant_id": f"M{int(rng.integers(0, 7)):02d}",
                         "event_timestamp": ts, "request_id": i})
    for c, d in ((1, 5), (2, 6)):  # exactly on a feature row, and exactly one TTL after one
        entities.append({"customer_id": f"C{c:03d}", "merchant_id": "M01", "event_timestamp": T0 + d * DAY,
                         "request_id": len(entities)})
        entities.append({"customer_id": f"C{c:03d}", "merchant_id": "M01",
                         "event_timestamp": T0 + (d - 1) * DAY + CUSTOMER_TTL, "request_id": len(entities)})
    entity_df = pd.DataFrame(entities)
    entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], utc=True)
    return paths, entity_df


def _objects(paths):
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING)
    customer_view = FeatureView(
        name="customer_stats", entities=[customer], ttl=CUSTOMER_TTL,
        schema=[Field(name="spend", dtype=Float64), Field(name="txn_count", dtype=Int64),
                Field(name="ratio32", dtype=Float32), Field(name="small_int", dtype=Int32),
                Field(name="segment", dtype=String), Field(name="is_vip", dtype=Bool)],
        source=FileSource(path=str(paths["customers"]), timestamp_field="event_timestamp",
                          created_timestamp_column="created_timestamp"),
    )
    merchant_view = FeatureView(
        name="merchant_stats", entities=[merchant], ttl=timedelta(0),
        schema=[Field(name="merch_volume", dtype=Float64)],
        source=FileSource(path=str(paths["merchants"]), timestamp_field="event_timestamp",
                          created_timestamp_column="created_timestamp"),
    )
    service = FeatureService(name="scoring", features=[customer_view, merchant_view])
    return [customer, merchant, customer_view, merchant_view, service]


def _store(tmp_path, name: str, ours: bool, paths) -> FeatureStore:
    root = tmp_path / name
    root.mkdir()
    config = {
        "project": "equivalence", "provider": "local", "registry": str(root / "registry.db"),
        "online_store": {"type": ONLINE_TYPE if ours else "sqlite", "path": str(root / "online.db")},
        "offline_store": {"type": OFFLINE_TYPE if ours else "duckdb"},
        "entity_key_serialization_version": 3,
        # A small batch size: the materialization window is written in several chunks.
        "materialization": {"online_write_batch_size": 7},
    }
    if ours:
        config["batch_engine"] = {"type": ENGINE_TYPE}
    store = FeatureStore(config=RepoConfig(repo_path=root, **config))
    store.apply(_objects(paths))
    return store


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("feast-stores")
    paths, entity_df = _world(tmp_path)
    return _store(tmp_path, "stock", False, paths), _store(tmp_path, "ours", True, paths), entity_df


def _training_frame(store, entity_df, **kwargs):
    frame = store.get_historical_features(entity_df=entity_df.copy(), **kwargs).to_df()
    return frame.sort_values("request_id").reset_index(drop=True)


@pytest.mark.parametrize("full_feature_names", [False, True])
def test_training_frames_are_identical_to_stock(stores, full_feature_names):
    stock, ours, entity_df = stores
    kwargs = {"features": stock.get_feature_service("scoring"), "full_feature_names": full_feature_names}
    expected = _training_frame(stock, entity_df, **kwargs)
    actual = _training_frame(ours, entity_df, **kwargs)
    assert len(actual) == len(entity_df)  # entity rows without features are kept
    pd.testing.assert_frame_equal(actual, expected)
    spend = "customer_stats__spend" if full_feature_names else "spend"
    assert actual[spend].isna().any() and actual[spend].notna().any()
    assert (actual[spend] == -1.0).any()  # late corrections won their ties


def test_training_frame_with_a_feature_subset_and_the_stock_fallback(stores):
    stock, ours, entity_df = stores
    refs = ["customer_stats:segment", "merchant_stats:merch_volume"]
    pd.testing.assert_frame_equal(_training_frame(ours, entity_df, features=refs),
                                  _training_frame(stock, entity_df, features=refs))



@pytest.mark.parametrize("full_feature_names", [False, True])
def test_training_frames_with_the_created_timestamp_filter_are_identical_to_stock(stores, full_feature_names):
    """A row counts only once it was loaded (created <= entity time): late corrections lose until then."""
    stock, ours, entity_df = stores
    kwargs = {"features": stock.get_feature_service("scoring"), "full_feature_names": full_feature_names,
              "filter_by_created_timestamp": True}
    expected = _training_frame(stock, entity_df, **kwargs)
    actual = _training_frame(ours, entity_df, **kwargs)
    pd.testing.assert_frame_equal(actual, expected)
    unfiltered = _training_frame(ours, entity_df, features=kwargs["features"], full_feature_names=full_feature_names)
    assert not actual.equals(unfiltered)  # the filter changed some rows, and ours changed the same ones


@pytest.mark.parametrize("filter_by_created_timestamp", [False, True])
def test_training_frames_of_time_slices_are_identical_to_stock(stores, filter_by_created_timestamp):
    """A chunked build asks for a few days of entity rows at a time, and ours then reads only the feature rows of
    those keys and times (`_view_cte`): rows older than a slice minus the TTL, known after it, or of other keys
    must be exactly the ones no entity row of the slice could pick."""
    stock, ours, entity_df = stores
    kwargs = {"features": stock.get_feature_service("scoring"),
              "filter_by_created_timestamp": filter_by_created_timestamp}
    edges = [T0 + d * DAY for d in (-1, 3, 6, 9, 12, 17)]
    for lo, hi in itertools.pairwise(edges):
        chunk = entity_df[(entity_df["event_timestamp"] >= lo) & (entity_df["event_timestamp"] < hi)]
        chunk = chunk[chunk["customer_id"] < "C020"]  # and a subset of the keys
        assert len(chunk) > 20
        actual = _training_frame(ours, chunk, **kwargs)
        pd.testing.assert_frame_equal(actual, _training_frame(stock, chunk, **kwargs))
        assert actual["spend"].notna().any()
    # A slice starting in a gap: these customers' newest rows are 2.5 days old, inside the 3-day TTL, so the
    # lower bound (oldest entity row minus the TTL) must still hold them.
    gap = pd.DataFrame({"customer_id": ["C003", "C010", "C017"], "merchant_id": "M01",
                        "event_timestamp": pd.to_datetime([T0 + 5 * DAY + timedelta(hours=12)] * 3, utc=True),
                        "request_id": [900, 901, 902]})
    actual = _training_frame(ours, gap, **kwargs)
    pd.testing.assert_frame_equal(actual, _training_frame(stock, gap, **kwargs))
    assert actual["segment"].notna().all()


def _online(store, service_name: str, rows):
    response = store.get_online_features(features=store.get_feature_service(service_name), entity_rows=rows)
    return response.to_dict(include_event_timestamps=True), response.proto


def test_online_vectors_are_identical_to_stock(stores):
    stock, ours, _ = stores
    end = T0 + 20 * DAY
    for store in (stock, ours):
        store.materialize(start_date=T0 - 30 * DAY, end_date=end)
    rows = [{"customer_id": f"C{c:03d}", "merchant_id": f"M{c % 8:02d}"} for c in range(42)]
    expected, expected_proto = _online(stock, "scoring", rows)
    actual, actual_proto = _online(ours, "scoring", rows)
    assert actual == expected
    assert actual_proto == expected_proto  # values, statuses and event timestamps
    provider = ours._get_provider()
    assert type(provider.online_store).__name__ == "WideSqliteOnlineStore"
    assert type(provider.offline_store).__name__ == "AsofDuckDBOfflineStore"
    assert type(provider.batch_engine).__name__ == "ArrowLocalComputeEngine"
    with sqlite3.connect(ours.config.online_store.path) as con:  # the wide tables hold one row per entity
        assert con.execute('SELECT count(*) FROM "equivalence_customer_stats__wide"').fetchone()[0] == 40
    for row in rows[:5]:  # one entity at a time, the serving case
        assert _online(ours, "scoring", [row]) == _online(stock, "scoring", [row])
    # the fast serving path answered (not Feast's protobuf path), also with prefixed names and repeated entities
    service = ours.get_feature_service("scoring")
    repeated = rows[:3] + rows[:2]
    response = ours.get_online_features(features=service, entity_rows=repeated, full_feature_names=True)
    assert type(response).__name__ == "RowsOnlineResponse"
    assert response.to_dict() == stock.get_online_features(
        features=stock.get_feature_service("scoring"), entity_rows=repeated, full_feature_names=True).to_dict()
    assert expected["spend"].count(-1.0) > 0 and None in expected["spend"]


def test_protobuf_writes_land_in_the_same_rows(stores):
    """`write_to_online_store` / push go through `online_write_batch`: same result as the stock store."""
    stock, ours, _ = stores
    frame = pd.DataFrame({
        "customer_id": ["C001", "C777"], "event_timestamp": [T0 + 30 * DAY] * 2,
        "created_timestamp": [T0 + 30 * DAY] * 2, "spend": [12.5, None], "txn_count": [3, 4],
        "ratio32": [0.5, 0.25], "small_int": [1, 2], "segment": ["gold", None], "is_vip": [True, False],
    })
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["created_timestamp"] = pd.to_datetime(frame["created_timestamp"], utc=True)
    for store in (stock, ours):
        store.write_to_online_store("customer_stats", frame)
    rows = [{"customer_id": c, "merchant_id": "M01"} for c in ("C001", "C777", "C002")]
    ours_dict, _ = result = _online(ours, "scoring", rows)
    assert result == _online(stock, "scoring", rows)
    # The written values are what both serve (equal but empty would prove nothing).
    assert ours_dict["spend"][:2] == [12.5, None] and ours_dict["txn_count"][:2] == [3, 4]


def test_a_write_never_replaces_a_newer_row_with_an_older_one(stores):
    """A materialization of the history may overlap the stream consumer's pushes of newer states: like Feast's
    Redis store, ours keeps the newer row (the stock SQLite store would overwrite it)."""
    _, ours, _ = stores

    def write(seconds: int, spend: float) -> None:
        frame = pd.DataFrame({"customer_id": ["C050"], "event_timestamp": [T0 + 40 * DAY + timedelta(seconds=seconds)],
                              "created_timestamp": [T0 + 40 * DAY], "spend": [spend], "txn_count": [1],
                              "ratio32": [0.5], "small_int": [1], "segment": ["gold"], "is_vip": [True]})
        for column in ("event_timestamp", "created_timestamp"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        ours.write_to_online_store("customer_stats", frame)

    def spend() -> float:
        return _online(ours, "scoring", [{"customer_id": "C050", "merchant_id": "M01"}])[0]["spend"][0]

    write(10, 1.0)
    write(5, 2.0)  # older: kept out
    assert spend() == 1.0
    write(10, 3.0)  # the same instant: a re-write (a merged late event) lands
    assert spend() == 3.0
    write(20, 4.0)
    assert spend() == 4.0


def test_fast_entity_key_encoding_is_feasts():
    for join_keys, values, types in (
        (["customer_id"], [["C1", "ü-2", ""]], [ValueType.STRING]),
        (["b_id", "a_id"], [["x", "y", "z"], [1, -2, 2**40]], [ValueType.STRING, ValueType.INT64]),
    ):
        fast = encode_entity_keys(join_keys, values, types)
        assert encode_entity_keys(join_keys, [pa.array(v) for v in values], types) == fast  # Arrow path
        for i, encoded in enumerate(fast):
            protos = [ValueProto(string_val=col[i]) if t == ValueType.STRING else ValueProto(int64_val=col[i])
                      for col, t in zip(values, types)]
            assert encoded == serialize_entity_key(EntityKeyProto(join_keys=join_keys, entity_values=protos), 3)
