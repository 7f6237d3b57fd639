"""The served feature vector: the same features, values and freshness as the offline point-in-time join.

For each transaction the service reads the stored figures of its customer, merchant and pair straight from
Feast's online store interface (`OnlineStore.online_read`, so the SQLite store of the local profile and Redis in
production behave alike), nulls every value older than its view's TTL at the transaction's time (Feast's online
read does not apply the TTL, feast#6821) and lists it as stale, then computes the on-demand features with the
function the training set was built with: the registry's own `transaction_features` UDF, called on plain columns,
so no pandas frame is built per request (Feast's pandas-mode path took p50 14 ms for one row). A batch of
requests is one lookup per view and one UDF call.

The request-level model inputs (`is_online`, `is_night`, the epoch) follow the dbt model
`int_transactions_enriched` and `lib/training_sets.transactions_between`, definition for definition.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from platform_assets.lib import names
from platform_assets.lib import online_store_health as health
from platform_assets.lib.online_features import is_stale
from platform_assets.lib.transaction_rules import instant_us

NIGHT_HOURS = range(6)  # dbt: hour_of_day between 0 and 5 (UTC)
# Views whose rows carry their own event times (the velocity state: arrays of event instants, windowed exactly by
# the UDF at the request's instant): the TTL guard would null a row whose newest event is 24 h + a fraction of a
# second old while that event still counts (rows keep whole seconds), so they are not guarded.
SELF_TIMED_VIEWS = frozenset({names.CUSTOMER_RECENT_TRANSACTIONS_VIEW})


def transaction_us(event_ts: datetime) -> int:
    """The request's instant in microseconds since the epoch, as the consumer reads the same transaction."""
    return instant_us(event_ts)
STATE_FIELDS = frozenset({"recent_transaction_ids", "recent_event_us", "recent_amount_cents", "recent_merchant_ids"})


def fold_batch_into_states(columns: dict[str, list], rows: list[dict]) -> None:
    """A customer's other transactions of the same request join the velocity state each of its rows reads.

    Ten card tests in one batch are scored together, before the consumer has seen any of them; offline the tenth
    counts the nine before it (they are transactions like any other once they land). So each row's state gets the
    batch's other transactions of its customer that it does not hold yet (by id); the UDF keeps only those strictly
    before the row's instant, as it does for stored events. Amounts in cents as the prediction log hands them to the
    consumer (`serving/log.amount_text`)."""
    by_customer: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_customer.setdefault(row["customer_id"], []).append(i)
    for members in by_customer.values():
        if len(members) < 2:
            continue
        batch = [(rows[j].get("transaction_id"), columns["transaction_us"][j], round(float(rows[j]["amount"]) * 100),
                  rows[j]["merchant_id"]) for j in members]
        for i in members:
            ids = list(columns["recent_transaction_ids"][i] or [])
            held = set(ids)
            extra = [event for j, event in zip(members, batch, strict=True)
                     if j != i and (event[0] is None or event[0] not in held)]
            if not extra:
                continue
            columns["recent_transaction_ids"][i] = ids + [e[0] for e in extra]
            columns["recent_event_us"][i] = list(columns["recent_event_us"][i] or []) + [e[1] for e in extra]
            columns["recent_amount_cents"][i] = list(columns["recent_amount_cents"][i] or []) + [e[2] for e in extra]
            columns["recent_merchant_ids"][i] = list(columns["recent_merchant_ids"][i] or []) + [e[3] for e in extra]


# How long a probe of the online store is trusted: a lost store is refused within this, at ~1 ms per probe.
PROBE_SECONDS = 5.0


def request_inputs(amount: float, channel: str, event_ts: datetime) -> dict[str, float]:
    """What the transaction itself contributes, exactly as dbt and the training-set reader derive it."""
    epoch = event_ts.timestamp()
    hour = math.floor(epoch / 3600) % 24
    return {
        "amount": float(amount),
        "is_online": 1.0 if channel == "online" else 0.0,
        "is_night": 1.0 if hour in NIGHT_HOURS else 0.0,
        # DuckDB's CAST(epoch(event_ts) AS BIGINT) rounds to the nearest second
        "transaction_epoch": float(math.floor(epoch + 0.5)),
    }


@dataclass
class ViewRead:
    view: object  # feast FeatureView
    join_keys: list[str]
    features: list[str]
    ttl_seconds: float


@dataclass
class FeatureBatch:
    """Model inputs of a batch, in the model's column order, with what the guard found per row."""

    matrix: np.ndarray  # (rows, model features), float64, NaN = missing
    stale: list[list[str]]
    unknown_customer: list[bool]
    unknown_merchant: list[bool]


class FeatureReadError(RuntimeError):
    """The online store could not be read (down, missing, corrupted): the request gets a 503, not a guess."""


class OnlineFeatureReader:
    """Reads one feature service's inputs for a model whose columns are `model_features`.

    Built once per model version (the registry is read here, never per request)."""

    def __init__(self, store, feature_service: str, model_features: list[str]):
        from feast.infra.online_stores.helpers import get_online_store_from_config

        self.config = store.config
        self.online_store = get_online_store_from_config(store.config.online_store)
        self.feature_service = feature_service
        service = store.get_feature_service(feature_service)
        on_demand = {v.name: v for v in store.list_on_demand_feature_views()}
        wanted: dict[str, list[str]] = {}
        self.udfs: list[tuple[object, list[str]]] = []  # (the on-demand view's UDF, its outputs in the service)
        for projection in service.feature_view_projections:
            if projection.name in on_demand:
                odfv = on_demand[projection.name]
                self.udfs.append((odfv.feature_transformation.udf, [f.name for f in projection.features]))
                for source in odfv.source_feature_view_projections.values():
                    names = wanted.setdefault(source.name, [])
                    names += [f.name for f in source.features if f.name not in names]
            else:
                names = wanted.setdefault(projection.name, [])
                names += [f.name for f in projection.features if f.name not in names]
        self.reads = []
        for name, features in wanted.items():
            view = store.get_feature_view(name)
            ttl = view.ttl.total_seconds() if view.ttl else 0.0
            self.reads.append(ViewRead(view, list(view.join_keys), features, ttl))
        provided = {"amount", "is_online", "is_night", "transaction_epoch", "transaction_us"}
        provided |= {f for r in self.reads for f in r.features}
        provided |= {o for _, outputs in self.udfs for o in outputs}
        missing = [f for f in model_features if f not in provided]
        if missing:
            raise ValueError(f"feature service {feature_service} does not provide the model's inputs {missing}")
        self.model_features = list(model_features)
        self._probed: tuple[float, str | None] | None = None

    def problem(self) -> str | None:
        """Why the online store cannot serve (missing, corrupt, emptied), or None. The SQLite file is probed
        (lib/online_store_health); an emptied store answers every read with "unknown entity", so it is refused
        like a missing one instead of scoring on all-None features. Redis is not probed: its reads fail loudly."""
        found = None
        if health.is_sqlite(self.config.online_store):
            found = health.sqlite_problem(self.online_store._get_db_path(self.config), self.config.project)
        self._probed = (time.monotonic(), None if found is None else f"online store {found}")
        return self._probed[1]

    def _refuse_lost_store(self) -> None:
        if self._probed is None or time.monotonic() - self._probed[0] > PROBE_SECONDS:
            self.problem()
        if self._probed[1] is not None:
            raise FeatureReadError(self._probed[1])

    def read(self, rows: list[dict], transactions: bool = False) -> FeatureBatch:
        """`rows`: dicts with customer_id, merchant_id, amount, channel and event_ts (an aware datetime).

        The on-demand UDFs get plain columns: the request inputs, `transaction_us` (event_ts in microseconds),
        the entity columns `customer_id` and `merchant_id`, and every stored feature read."""
        self._refuse_lost_store()
        n = len(rows)
        columns: dict[str, list] = {}
        for key, values in ((k, [None] * n) for k in ("amount", "is_online", "is_night", "transaction_epoch")):
            columns[key] = values
        now = []
        for i, row in enumerate(rows):
            inputs = request_inputs(row["amount"], row["channel"], row["event_ts"])
            for key, value in inputs.items():
                columns[key][i] = value
            now.append(row["event_ts"].timestamp())
        columns["transaction_us"] = [transaction_us(row["event_ts"]) for row in rows]
        columns["customer_id"] = [row["customer_id"] for row in rows]
        columns["merchant_id"] = [row["merchant_id"] for row in rows]
        stale: list[list[str]] = [[] for _ in range(n)]
        found: dict[str, list[bool]] = {}
        fast = getattr(self.online_store, "read_values", None)  # our SQLite store: Python values, no protobufs
        for read in self.reads:
            try:
                if fast is not None:
                    row_ts, values = fast(self.config, read.view,
                                          {k: [row[k] for row in rows] for k in read.join_keys}, read.features)
                else:
                    row_ts, values = self._read_protos(read, rows)
            except Exception as exc:  # sqlite3/redis errors: the store is unusable, not this request
                raise FeatureReadError(f"online store read of {read.view.name} failed: {exc}") from exc
            hits = [seconds != 0 for seconds in row_ts]  # 0: no row; -1: a row without an event time
            guarded = read.view.name not in SELF_TIMED_VIEWS
            for i, seconds in enumerate(row_ts):
                if guarded and seconds > 0 and is_stale(seconds, read.ttl_seconds, now[i]):
                    stale[i].extend(read.features)
                    for name in read.features:
                        values[name][i] = None
            columns.update(values)
            found[read.view.name] = hits
        if transactions and STATE_FIELDS <= columns.keys():  # rows are transactions, not probes of instants
            fold_batch_into_states(columns, rows)
        for udf, outputs in self.udfs:
            computed = udf(columns)
            for name in outputs:
                columns[name] = computed[name]
        matrix = np.empty((n, len(self.model_features)), dtype="float64")
        for j, name in enumerate(self.model_features):
            matrix[:, j] = np.asarray(columns[name], dtype="float64")
        unknown_customer = [not hit for hit in self._hits(found, "customer_id", n)]
        unknown_merchant = [not hit for hit in self._hits(found, "merchant_id", n)]
        return FeatureBatch(matrix, stale, unknown_customer, unknown_merchant)

    def _read_protos(self, read: ViewRead, rows: list[dict]) -> tuple[list[int], dict[str, list]]:
        """Feast's `OnlineStore.online_read` (any store, e.g. Redis), as (row times, Python values); a row time is
        0 when there is no row, -1 for a row without an event time (never stale)."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        keys = [EntityKey(join_keys=read.join_keys, entity_values=[Value(string_val=str(row[k]))
                                                                    for k in read.join_keys]) for row in rows]
        results = self.online_store.online_read(self.config, read.view, keys, read.features)
        row_ts = [0] * len(rows)
        values = {name: [None] * len(rows) for name in read.features}
        for i, (ts, data) in enumerate(results):
            if data is None:
                continue
            row_ts[i] = int(ts.timestamp()) if ts is not None else -1
            for name in read.features:
                proto = data.get(name)
                if proto is not None:
                    values[name][i] = feast_value_type_to_python_type(proto)
        return row_ts, values

    def _hits(self, found: dict[str, list[bool]], join_key: str, n: int) -> list[bool]:
        """An entity is known when any view keyed by it alone holds a row for it."""
        views = [r.view.name for r in self.reads if r.join_keys == [join_key]]
        if not views:
            return [True] * n
        return [any(found[v][i] for v in views) for i in range(n)]
