"""Feast definitions for the fraud model: two entities, a feature view per dbt feature mart, one service.

The sources are the parquet exports of `fct_customer_daily_features` and `fct_merchant_daily_features`. A row's
`event_timestamp` is the end of the day it summarises, so the point-in-time join only ever hands a transaction
the figures of days that had ended before it happened.

`build_feature_objects` builds everything for a given exports directory; the module-level names below are what
`feast apply` finds when run from the CLI (PLATFORM_DATA_DIR, default ../data).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

CUSTOMER_FEATURES = {
    "cust_txn_count_1d": Int64,
    "cust_amount_sum_1d": Float64,
    "cust_txn_count_7d": Int64,
    "cust_amount_sum_7d": Float64,
    "cust_amount_avg_7d": Float64,
    "cust_amount_max_7d": Float64,
    "cust_night_txn_share_7d": Float64,
    "cust_online_txn_share_7d": Float64,
    "cust_txn_count_30d": Int64,
    "cust_amount_avg_30d": Float64,
    "cust_account_age_days": Int64,
}
MERCHANT_FEATURES = {
    "merch_txn_count_1d": Int64,
    "merch_txn_count_7d": Int64,
    "merch_amount_avg_7d": Float64,
    "merch_night_txn_share_7d": Float64,
    "merch_online_txn_share_7d": Float64,
    "merch_category_code": Int64,
}
# Beyond this age a feature row no longer describes the entity: the join returns nulls instead.
FEATURE_TTL = timedelta(days=30)
FEATURE_SERVICE_NAME = "fraud_detector_v1"


class FeatureObjects(NamedTuple):
    customer: Entity
    merchant: Entity
    customer_daily_source: FileSource
    merchant_daily_source: FileSource
    customer_daily_features: FeatureView
    merchant_daily_features: FeatureView
    fraud_detector_v1: FeatureService

    def all(self) -> list:
        return list(self)


def _daily_view(
    exports_dir: Path, mart: str, name: str, entity: Entity, features: dict, description: str
) -> tuple[FileSource, FeatureView]:
    """A feature view over one daily dbt feature mart, read from its parquet export."""
    source = FileSource(
        name=mart,
        path=str(Path(exports_dir) / f"{mart}.parquet"),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"dbt mart {mart} (parquet export)",
    )
    view = FeatureView(
        name=name,
        entities=[entity],
        ttl=FEATURE_TTL,
        schema=[Field(name=n, dtype=t) for n, t in features.items()],
        source=source,
        online=True,
        description=description,
        tags={"team": "fraud", "dbt_model": mart},
    )
    return source, view


def build_feature_objects(exports_dir: Path) -> FeatureObjects:
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING,
                      description="A card holder")
    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING,
                      description="A card acceptor")
    customer_source, customer_view = _daily_view(
        exports_dir, "fct_customer_daily_features", "customer_daily_features", customer, CUSTOMER_FEATURES,
        "Customer spending over the last 1, 7 and 30 days, as of the end of each day",
    )
    merchant_source, merchant_view = _daily_view(
        exports_dir, "fct_merchant_daily_features", "merchant_daily_features", merchant, MERCHANT_FEATURES,
        "Merchant volume and mix over the last 1 and 7 days, as of the end of each day",
    )
    service = FeatureService(
        name=FEATURE_SERVICE_NAME,
        features=[customer_view, merchant_view],
        description="Every feature the fraud_detector model reads",
        tags={"model": "fraud_detector"},
    )
    return FeatureObjects(customer, merchant, customer_source, merchant_source, customer_view, merchant_view,
                          service)


_objects = build_feature_objects(
    Path(os.environ.get("PLATFORM_DATA_DIR", Path(__file__).resolve().parent.parent / "data")) / "exports"
)
customer = _objects.customer
merchant = _objects.merchant
customer_daily_source = _objects.customer_daily_source
merchant_daily_source = _objects.merchant_daily_source
customer_daily_features = _objects.customer_daily_features
merchant_daily_features = _objects.merchant_daily_features
fraud_detector_v1 = _objects.fraud_detector_v1
