"""Feast definitions for the fraud model: entities, a feature view per dbt feature mart, an on-demand view of
transaction-level features, and one feature service per model version.

The sources are the parquet exports of the dbt feature marts. A row's `event_timestamp` is the end of the day it
summarises, so the point-in-time join only ever hands a transaction the figures of days that had ended before it
happened; `created_timestamp` breaks ties between rows of the same event time (the later load wins).

`transaction_features` is computed from the request (the transaction being scored) and the stored views by
`transaction_level_features`, the same function offline (training sets, a pandas frame) and online (the
scoring service, plain columns).

`customer_recent_transactions` holds each customer's transactions of the last 24 hours (the state the velocity
features are computed from): offline one row per transaction instant from the dbt mart
`fct_customer_recent_transactions`, online the newest state, written by the stream consumer through the push
source `customer_transactions_push`. `velocity_features` evaluates the windows at the instant of the transaction
being scored, with the same function offline and online, so both agree exactly for the same instant.

`build_feature_objects` builds everything for a given exports directory; the module-level names below are what
`feast apply` finds when run from the CLI (PLATFORM_DATA_DIR, default ../data).
"""

from __future__ import annotations

import builtins
import inspect
import os
import types
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, RequestSource, ValueType
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.types import Array, Float64, Int64, String

CUSTOMER_FEATURES = {
    "cust_txn_count_1d": Int64,
    "cust_amount_sum_1d": Float64,
    "cust_amount_avg_1d": Float64,
    "cust_amount_max_1d": Float64,
    "cust_txn_count_7d": Int64,
    "cust_amount_sum_7d": Float64,
    "cust_amount_avg_7d": Float64,
    "cust_amount_max_7d": Float64,
    "cust_night_txn_share_7d": Float64,
    "cust_online_txn_share_7d": Float64,
    "cust_distinct_merchants_7d": Int64,
    "cust_txn_count_30d": Int64,
    "cust_amount_sum_30d": Float64,
    "cust_amount_avg_30d": Float64,
    "cust_amount_max_30d": Float64,
    "cust_distinct_merchants_30d": Int64,
    "cust_last_txn_epoch": Int64,
    "cust_account_age_days": Int64,
}
MERCHANT_FEATURES = {
    "merch_txn_count_1d": Int64,
    "merch_txn_count_7d": Int64,
    "merch_amount_avg_7d": Float64,
    "merch_amount_max_7d": Float64,
    "merch_night_txn_share_7d": Float64,
    "merch_online_txn_share_7d": Float64,
    "merch_distinct_customers_7d": Int64,
    "merch_txn_count_30d": Int64,
    "merch_amount_avg_30d": Float64,
    "merch_known_frauds_30d": Int64,
    "merch_chargeback_rate_30d": Float64,
    "merch_category_code": Int64,
    "merch_high_risk_mcc": Int64,
}
CUSTOMER_MERCHANT_FEATURES = {"cm_txn_count_to_date": Int64}
# What the request (the transaction being scored) carries: its amount and its time as Unix seconds.
REQUEST_FIELDS = {"amount": Float64, "transaction_epoch": Int64}
TRANSACTION_FEATURES = {
    "amount_to_cust_avg_30d": Float64,
    "amount_to_cust_max_30d": Float64,
    "txn_hour_of_day": Int64,
    "seconds_since_last_txn": Float64,
    "first_purchase_at_merchant": Int64,
}
# Velocity: what the customer did in the last minutes and hours before the instant of a transaction. An event e of
# the customer counts for a transaction at instant t (microseconds) iff t - W <= e < t: strictly before t, so the
# transaction itself (and anything at the very same microsecond) never counts. No event in a window is 0, not NaN:
# the history is complete, so "none" is the true answer. cm_* count the events at the transaction's merchant.
VELOCITY_WINDOWS = (("10m", 600), ("1h", 3_600), ("24h", 86_400))  # name, seconds
RECENT_HORIZON_SECONDS = max(seconds for _, seconds in VELOCITY_WINDOWS)
# The state a velocity feature is computed from: aligned arrays, sorted by (event time, transaction id), of the
# customer's transactions with event time >= the newest one's - RECENT_HORIZON_SECONDS (dbt mart
# fct_customer_recent_transactions offline, the stream consumer online). Amounts in cents: sums are exact and do
# not depend on the order of addition.
RECENT_TRANSACTION_FIELDS = {
    "recent_transaction_ids": Array(String),
    "recent_event_us": Array(Int64),
    "recent_amount_cents": Array(Int64),
    "recent_merchant_ids": Array(String),
}
DISTINCT_MERCHANTS_WINDOW = "1h"
# The instant t of the transaction being scored (microseconds since the epoch, UTC). Its merchant, whose events
# the cm_* features count, is the entity row's `merchant_id` (a join key: Feast hands join keys to on-demand views
# offline and online; as a request field it would stop being one).
VELOCITY_REQUEST_FIELDS = {"transaction_us": Int64}
VELOCITY_FEATURES = {
    **{f"cust_txn_count_{name}": Int64 for name, _ in VELOCITY_WINDOWS},
    **{f"cust_amount_sum_{name}": Float64 for name, _ in VELOCITY_WINDOWS},
    f"cust_distinct_merchants_{DISTINCT_MERCHANTS_WINDOW}": Int64,
    **{f"cm_txn_count_{name}": Int64 for name, _ in VELOCITY_WINDOWS},
    **{f"cm_amount_sum_{name}": Float64 for name, _ in VELOCITY_WINDOWS},
}
# A state older than the horizon holds no event inside any window; the minute on top covers the online store
# keeping event times to the second.
RECENT_TTL = timedelta(seconds=RECENT_HORIZON_SECONDS + 60)

# The daily marts hold a row per entity and day from its first activity on (dbt macro feature_calendar): every
# day until its longest window has drained to 0, then one row every LONGEST_WINDOW_DAYS days while it stays idle.
# So a seen entity always has a row less than LONGEST_WINDOW_DAYS + 1 days old, and the TTL follows: a join finds
# no row in it only for an entity never seen, or when nothing was loaded for longer than that (the online freshness
# guard then reports the values stale). dbt reads the same figure (var longest_window_days in dbt_project.yml).
# The pair view holds a count to date, which never goes out of date, so it has no TTL (0 = never expires, offline
# and online): "first purchase at this merchant" looks at all history.
LONGEST_WINDOW_DAYS = 30
FEATURE_TTL = timedelta(days=LONGEST_WINDOW_DAYS + 1)
PAIR_TTL = timedelta(0)

# Model version -> the features it reads. A new model version gets a new service; old ones stay servable.
V1_CUSTOMER = ["cust_txn_count_1d", "cust_amount_sum_1d", "cust_txn_count_7d", "cust_amount_sum_7d",
               "cust_amount_avg_7d", "cust_amount_max_7d", "cust_night_txn_share_7d", "cust_online_txn_share_7d",
               "cust_txn_count_30d", "cust_amount_avg_30d", "cust_account_age_days"]
V1_MERCHANT = ["merch_txn_count_1d", "merch_txn_count_7d", "merch_amount_avg_7d", "merch_night_txn_share_7d",
               "merch_online_txn_share_7d", "merch_category_code"]
# cust_last_txn_epoch is an input of seconds_since_last_txn, not a model feature (a raw clock value would leak
# the calendar into the model).
V2_CUSTOMER = [n for n in CUSTOMER_FEATURES if n != "cust_last_txn_epoch"]


def transaction_level_features(inputs):
    """Transaction-level features from the request and the customer's and pair's stored figures.

    Plain numpy with no Feast in it, so training (offline, a pandas frame of millions of rows), serving (online,
    a dict of columns, no frame per request: platform_assets/serving) and the freshness guard all run exactly
    this code. `inputs` is a pandas DataFrame (returns a DataFrame on its index) or a mapping of column name to a
    sequence (returns a dict of numpy arrays). A missing stored value (no history yet, or expired) gives NaN, never
    a made-up number, except `first_purchase_at_merchant`, whose "no pair row yet" *is* the answer.
    Self-contained (imports inside) because Feast serializes the function by value into its registry.
    """
    import numpy as np

    frame = hasattr(inputs, "columns")

    def numeric(column):
        values = inputs[column]
        if frame:
            import pandas as pd

            return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        return np.asarray(values, dtype="float64")  # None -> NaN

    amount, epoch = numeric("amount"), numeric("transaction_epoch")
    average, maximum = numeric("cust_amount_avg_30d"), numeric("cust_amount_max_30d")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "amount_to_cust_avg_30d": amount / np.where(average > 0, average, np.nan),
            "amount_to_cust_max_30d": amount / np.where(maximum > 0, maximum, np.nan),
            "txn_hour_of_day": (np.floor(epoch / 3600) % 24).astype("int64"),
            "seconds_since_last_txn": epoch - numeric("cust_last_txn_epoch"),
            "first_purchase_at_merchant": (np.nan_to_num(numeric("cm_txn_count_to_date"), nan=0.0) <= 0).astype(
                "int64"),
        }
    if frame:
        import pandas as pd

        return pd.DataFrame(out, index=inputs.index)
    return out


def velocity_features_from_state(inputs, windows=VELOCITY_WINDOWS, distinct_window=DISTINCT_MERCHANTS_WINDOW):
    """Velocity features at the instant `transaction_us` from the customer's recent-transactions state.

    One definition for training sets (a pandas frame from the point-in-time join), batch scoring and the scoring
    service (a mapping of column name to a sequence, one entry per request): for each window W, the events with
    `transaction_us - W <= event < transaction_us`; cm_* those at the row's `merchant_id`. A missing state (no
    transaction in the last 24 hours, or none at all) counts as no events. Only Feast's schema inference calls it
    without `merchant_id` (it passes the declared sources' fields alone); every real read has the join key. Vectorised over all rows' events at once
    (no Python loop over events), so a training set of millions of rows costs seconds.
    Self-contained (imports inside, windows as a default) because Feast serializes the function by value.
    """
    import numpy as np
    import pandas as pd

    frame = hasattr(inputs, "columns")
    n = len(inputs["transaction_us"])

    def flat(column, dtype):
        """All rows' arrays of `column` end to end, a missing state (None/NaN) as no events."""
        values = pd.Series(inputs[column], dtype=object).to_numpy(copy=True) if not frame else (
            inputs[column].to_numpy(dtype=object, copy=True))
        empty = np.zeros(0, dtype=dtype)
        for i in np.flatnonzero(pd.isna(values)):
            values[i] = empty
        return np.concatenate([empty, *values]).astype(dtype, copy=False), values

    event_us, per_row = flat("recent_event_us", np.int64)
    lengths = np.fromiter(map(len, per_row), dtype=np.int64, count=n)
    amount_cents = flat("recent_amount_cents", np.int64)[0]
    merchants = flat("recent_merchant_ids", object)[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    # merchants as integer codes, the request's merchant coded alike (one hash pass, no string comparisons)
    wanted = list(inputs["merchant_id"]) if "merchant_id" in inputs else [None] * n
    codes, uniques = pd.factorize(np.concatenate([merchants, np.asarray(wanted, dtype=object)]))
    event_merchant, request_merchant = codes[: len(merchants)], codes[len(merchants):]
    instant = np.asarray(list(inputs["transaction_us"]), dtype=np.int64)
    age = instant[rows] - event_us  # > 0: strictly before the instant
    here = event_merchant == request_merchant[rows]
    out = {}
    for name, seconds in windows:
        inside = (age > 0) & (age <= seconds * 1_000_000)
        at_merchant = inside & here
        out[f"cust_txn_count_{name}"] = np.bincount(rows[inside], minlength=n).astype(np.int64)
        out[f"cust_amount_sum_{name}"] = np.bincount(rows[inside], weights=amount_cents[inside], minlength=n) / 100
        out[f"cm_txn_count_{name}"] = np.bincount(rows[at_merchant], minlength=n).astype(np.int64)
        out[f"cm_amount_sum_{name}"] = np.bincount(rows[at_merchant], weights=amount_cents[at_merchant],
                                                   minlength=n) / 100
        if name == distinct_window:
            known = inside & (event_merchant >= 0)  # a missing merchant (code -1) is no merchant to count
            pairs = np.unique(rows[known] * (len(uniques) + 1) + event_merchant[known])
            out[f"cust_distinct_merchants_{name}"] = np.bincount(pairs // (len(uniques) + 1), minlength=n).astype(
                np.int64)
    if frame:
        import pandas as pd

        return pd.DataFrame(out, index=inputs.index)
    return out


def _portable(function):
    """A copy of `function` that Feast's serializer (dill) stores by value: it belongs to no importable module and
    sees only builtins, so any process can load it from the registry. (Feast's own decorator does this by
    rewriting the original's module, which breaks when the definitions are built more than once.)"""
    copy = types.FunctionType(function.__code__, {"__builtins__": builtins}, function.__name__, function.__defaults__)
    copy.__module__ = "__main__"
    copy.__doc__ = function.__doc__
    return copy


class FeatureObjects(NamedTuple):
    customer: Entity
    merchant: Entity
    customer_daily_source: FileSource
    merchant_daily_source: FileSource
    customer_merchant_source: FileSource
    transaction_request: RequestSource
    customer_daily_features: FeatureView
    merchant_daily_features: FeatureView
    customer_merchant_features: FeatureView
    transaction_features: OnDemandFeatureView
    fraud_detector_v1: FeatureService
    fraud_detector_v2: FeatureService
    customer_recent_source: FileSource
    customer_transactions_push: PushSource
    customer_recent_transactions: FeatureView
    velocity_request: RequestSource
    velocity_features: OnDemandFeatureView
    fraud_detector_v3: FeatureService

    def all(self) -> list:
        return list(self)


def _view(
    exports_dir: Path, mart: str, name: str, entities: list[Entity], features: dict, ttl: timedelta,
    description: str,
) -> tuple[FileSource, FeatureView]:
    """A feature view over one dbt feature mart, read from its parquet export."""
    source = FileSource(
        name=mart,
        path=_export(exports_dir, mart),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"dbt mart {mart} (parquet export)",
    )
    view = FeatureView(
        name=name,
        entities=entities,
        ttl=ttl,
        schema=[Field(name=n, dtype=t) for n, t in features.items()],
        source=source,
        online=True,
        description=description,
        tags={"team": "fraud", "dbt_model": mart},
    )
    return source, view


def _on_demand(name: str, sources: list, features: dict, udf, description: str) -> OnDemandFeatureView:
    """An on-demand view whose function (numpy, frame or columns) runs offline and online alike, stored by value."""
    return OnDemandFeatureView(
        name=name,
        sources=sources,
        schema=[Field(name=n, dtype=t) for n, t in features.items()],
        mode="pandas",
        udf=_portable(udf),
        udf_string=inspect.getsource(udf),
        description=description,
        tags={"team": "fraud"},
    )


def _export(exports_dir: Path | str, mart: str) -> str:
    """The mart's parquet file: a path under a folder, or a URL under the shared store's (never Path("s3://..."),
    which would fold the "//")."""
    return f"{str(exports_dir).rstrip('/')}/{mart}.parquet"


def build_feature_objects(exports_dir: Path) -> FeatureObjects:
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING,
                      description="A card holder")
    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING,
                      description="A card acceptor")
    customer_source, customer_view = _view(
        exports_dir, "fct_customer_daily_features", "customer_daily_features", [customer], CUSTOMER_FEATURES,
        FEATURE_TTL, "Customer spending over the 1, 7 and 30 whole days before each day (one row per day)",
    )
    merchant_source, merchant_view = _view(
        exports_dir, "fct_merchant_daily_features", "merchant_daily_features", [merchant], MERCHANT_FEATURES,
        FEATURE_TTL, "Merchant volume, mix and known chargeback rate over the 1, 7 and 30 whole days before each day",
    )
    pair_source, pair_view = _view(
        exports_dir, "fct_customer_merchant_features", "customer_merchant_features", [customer, merchant],
        CUSTOMER_MERCHANT_FEATURES, PAIR_TTL, "How often the customer has paid this merchant so far (all history: no TTL)",
    )
    request = RequestSource(
        name="transaction_request",
        schema=[Field(name=n, dtype=t) for n, t in REQUEST_FIELDS.items()],
        description="The transaction being scored: its amount and its time (Unix seconds)",
    )
    transaction_features = _on_demand(
        "transaction_features", [customer_view, pair_view, request], TRANSACTION_FEATURES, transaction_level_features,
        "Amount relative to the customer's history, hour of day, time since the last transaction, first purchase at "
        "this merchant",
    )
    v1 = FeatureService(
        name="fraud_detector_v1",
        features=[customer_view[V1_CUSTOMER], merchant_view[V1_MERCHANT]],
        description="The features fraud_detector model version 1 reads (daily customer and merchant figures)",
        tags={"model": "fraud_detector", "model_version": "1"},
    )
    v2 = FeatureService(
        name="fraud_detector_v2",
        features=[customer_view[V2_CUSTOMER], merchant_view, transaction_features],
        description="The features fraud_detector model version 2 reads: v1 plus 30-day windows, distinct "
                    "counterparties, known chargeback rate and transaction-level on-demand features",
        tags={"model": "fraud_detector", "model_version": "2"},
    )
    recent_source = FileSource(
        name="fct_customer_recent_transactions",
        path=_export(exports_dir, "fct_customer_recent_transactions"),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description="dbt mart fct_customer_recent_transactions (parquet export): the state after each instant",
    )
    push = PushSource(
        name="customer_transactions_push",
        batch_source=recent_source,
        description="The stream consumer's writes of each customer's newest recent-transactions state",
    )
    recent_view = FeatureView(
        name="customer_recent_transactions",
        entities=[customer],
        ttl=RECENT_TTL,
        schema=[Field(name=n, dtype=t) for n, t in RECENT_TRANSACTION_FIELDS.items()],
        source=push,
        online=True,
        description="The customer's transactions of the last 24 hours (ids, times, amounts in cents, merchants): "
                    "offline one row per instant, online the newest, pushed by the stream consumer",
        tags={"team": "fraud", "dbt_model": "fct_customer_recent_transactions"},
    )
    velocity_request = RequestSource(
        name="velocity_request",
        schema=[Field(name=n, dtype=t) for n, t in VELOCITY_REQUEST_FIELDS.items()],
        description="The instant of the transaction being scored (microseconds since the epoch, UTC)",
    )
    velocity = _on_demand(
        "velocity_features", [recent_view, velocity_request], VELOCITY_FEATURES, velocity_features_from_state,
        "Counts and amounts of the customer's and the customer-merchant pair's transactions in the last 10 minutes, "
        "1 hour and 24 hours before the transaction, distinct merchants in the last hour",
    )
    v3 = FeatureService(
        name="fraud_detector_v3",
        features=[customer_view[V2_CUSTOMER], merchant_view, transaction_features, velocity],
        description="The features fraud_detector model version 3 reads: v2 plus velocity over the last minutes "
                    "and hours (online from the transaction stream)",
        tags={"model": "fraud_detector", "model_version": "3"},
    )
    return FeatureObjects(customer, merchant, customer_source, merchant_source, pair_source, request,
                          customer_view, merchant_view, pair_view, transaction_features, v1, v2,
                          recent_source, push, recent_view, velocity_request, velocity, v3)


# What `feast apply` and the CLI see: the exports on the shared store in production, else under the data dir.
_objects = build_feature_objects(
    os.environ.get("PLATFORM_SHARED_STORE_URL", "").rstrip("/") + "/exports" if os.environ.get("PLATFORM_SHARED_STORE_URL")
    else Path(os.environ.get("PLATFORM_DATA_DIR", Path(__file__).resolve().parent.parent / "data")) / "exports"
)
customer = _objects.customer
merchant = _objects.merchant
customer_daily_source = _objects.customer_daily_source
merchant_daily_source = _objects.merchant_daily_source
customer_merchant_source = _objects.customer_merchant_source
transaction_request = _objects.transaction_request
customer_daily_features = _objects.customer_daily_features
merchant_daily_features = _objects.merchant_daily_features
customer_merchant_features = _objects.customer_merchant_features
transaction_features = _objects.transaction_features
fraud_detector_v1 = _objects.fraud_detector_v1
fraud_detector_v2 = _objects.fraud_detector_v2
customer_recent_source = _objects.customer_recent_source
customer_transactions_push = _objects.customer_transactions_push
customer_recent_transactions = _objects.customer_recent_transactions
velocity_request = _objects.velocity_request
velocity_features = _objects.velocity_features
fraud_detector_v3 = _objects.fraud_detector_v3
