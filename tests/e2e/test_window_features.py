"""Window features mean what their names say, checked against an oracle over the raw ingestion tables
(tests/feature_oracle.py), on the materialized stationary world: the training set, the offline point-in-time join
of every recent transaction (what batch scoring and notebooks read) and the guarded online vector at a serving
instant, for entities idle 1, 6, 7, 8, 29, 30 and 31 days and for one never seen."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import pytest
import yaml
from feature_oracle import IDLE_GAPS, WINDOW_FEATURES, compare, expected_features, idle_gaps

from platform_assets.definitions import build_resources
from platform_assets.lib.exports import query
from platform_assets.lib.online_features import fresh_online_features
from platform_assets.lib.training_sets import TrainingSetManifest, join_features, transactions_between
from platform_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e
SERVICE = "fraud_detector_v2"
# what the dbt calendar is built with (tests/unit/features/test_feature_ttl.py keeps the views' TTL in step)
LONGEST_WINDOW_DAYS = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())["vars"][
    "longest_window_days"]
NEVER_SEEN = "C9999999"


def _assert_oracle_agrees(report):
    assert report.rows > 0
    assert report.wrong_rows == 0, (report.wrong, report.examples[:10])


def test_every_window_feature_of_the_training_set_is_the_raw_truth(clean_platform):
    settings = clean_platform.settings
    manifest = TrainingSetManifest.read(settings.data_dir / "training_sets" / "latest.json")
    frame = pd.read_parquet(manifest.path)
    features = [f for f in WINDOW_FEATURES if f in frame.columns]
    assert len(features) == len(WINDOW_FEATURES), set(WINDOW_FEATURES) - set(features)
    truth = expected_features(settings.warehouse_path, frame)
    _assert_oracle_agrees(compare(frame, truth, features, ["transaction_id", "customer_id"]))
    # the world holds the idle gaps the check is about, and the windows are not all trivially full or empty
    gaps = idle_gaps(settings.warehouse_path, frame)
    assert all(gaps[n] > 0 for n in IDLE_GAPS if n <= 8), gaps
    assert (frame["cust_txn_count_7d"] == 0).any() and (frame["cust_txn_count_7d"] > 0).any()


def test_point_in_time_vectors_of_every_recent_transaction_are_the_raw_truth(clean_platform):
    """What batch scoring and a notebook read: the point-in-time join of the last 40 days' transactions through
    the model's feature service, on-demand features included. All the idle gaps occur among them."""
    settings = clean_platform.settings
    store = build_resources(settings)["feast"].store()
    end = pd.Timestamp(clean_platform.last_day, tz="UTC") + pd.Timedelta(days=1)
    rows = transactions_between(settings.exports_dir, (end - pd.Timedelta(days=40)).to_pydatetime(),
                                end.to_pydatetime())
    joined = join_features(store, rows, SERVICE)
    truth = expected_features(settings.warehouse_path, rows)
    _assert_oracle_agrees(compare(joined, truth, WINDOW_FEATURES, ["transaction_id", "customer_id"]))
    gaps = idle_gaps(settings.warehouse_path, rows)
    assert all(gaps[n] > 0 for n in IDLE_GAPS), gaps


def _idle_customers(warehouse, last_day) -> pd.DataFrame:
    """Per idle length (0 = active on the last loaded day, then IDLE_GAPS), up to 3 customers whose newest
    transaction is that many days before the day after `last_day`, with the merchant of that transaction."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(
            """
            WITH newest AS (
                SELECT customer_id, arg_max(merchant_id, event_ts) AS merchant_id,
                       $last - max(CAST(timezone('UTC', event_ts) AS DATE)) AS idle
                FROM raw.transactions GROUP BY 1
            )
            SELECT * FROM newest WHERE list_contains($gaps, idle)
            QUALIFY row_number() OVER (PARTITION BY idle ORDER BY customer_id) <= 3
            ORDER BY idle, customer_id
            """,
            {"last": last_day, "gaps": [0, *IDLE_GAPS]},
        ).df()


def test_online_vector_at_a_serving_instant_is_the_offline_vector_and_the_raw_truth(clean_platform):
    """In the afternoon after the last loaded day, the freshness-guarded online vector of customers idle for each
    gap length (and of one never seen) equals the offline point-in-time vector at that instant and the oracle:
    counts and sums 0 once a window is empty, never the last active day's figures; null only for the unknown."""
    settings = clean_platform.settings
    store = build_resources(settings)["feast"].store()
    at = pd.Timestamp(clean_platform.last_day, tz="UTC") + pd.Timedelta(days=1, hours=15, minutes=7)
    materialized = pd.Timestamp(clean_platform.metadata("feast_online_store")["materialized_until"])
    assert materialized <= at < materialized + pd.Timedelta(days=1)
    idle = _idle_customers(settings.warehouse_path, clean_platform.last_day)
    assert set(idle.idle) == {0, *IDLE_GAPS}, idle.groupby("idle").size()
    requests = pd.concat([idle[["customer_id", "merchant_id"]],
                          pd.DataFrame({"customer_id": [NEVER_SEEN], "merchant_id": [idle.merchant_id.iloc[0]]})],
                         ignore_index=True)
    requests.insert(0, "transaction_id", [f"R{i:04d}" for i in range(len(requests))])  # join_features' order
    requests["amount"] = [12.5 + 3 * i for i in range(len(requests))]
    requests["event_timestamp"] = at
    requests["transaction_epoch"] = int(at.timestamp())
    entity_rows = requests[["customer_id", "merchant_id", "amount", "transaction_epoch"]].to_dict("records")

    online = fresh_online_features(store, SERVICE, entity_rows, at.to_pydatetime())
    assert online.stale_count == 0
    online_frame = pd.DataFrame({name: online.values[name] for name in WINDOW_FEATURES})
    offline = join_features(store, requests, SERVICE)
    truth = expected_features(settings.warehouse_path, requests)
    keys = ["customer_id", "merchant_id"]
    _assert_oracle_agrees(compare(offline, truth, WINDOW_FEATURES, keys))
    _assert_oracle_agrees(compare(pd.concat([requests[keys], online_frame], axis=1), truth, WINDOW_FEATURES, keys))

    by_customer = online_frame.assign(customer_id=requests.customer_id).set_index("customer_id")
    for row in idle.itertuples():
        counts = by_customer.loc[row.customer_id, ["cust_txn_count_1d", "cust_txn_count_7d", "cust_txn_count_30d"]]
        windows = (1, 7, 30)
        assert [c == 0 for c in counts] == [row.idle >= w for w in windows], (row, counts.tolist())
    never = by_customer.loc[NEVER_SEEN]
    assert never[[f for f in WINDOW_FEATURES if f.startswith("cust_")]].isna().all()
    assert never["first_purchase_at_merchant"] == 1


def _calendar(activity_days: list, last_day, window: int) -> set:
    """The days a mart row is due for one entity: each activity day and the following days until the next
    activity or `window` days on (drained), then one every `window` idle days; none after `last_day`."""
    days = set()
    for i, active in enumerate(activity_days):
        until = activity_days[i + 1] if i + 1 < len(activity_days) else last_day + timedelta(days=1)
        gap = (until - active).days
        days |= {active + timedelta(days=k) for k in [*range(min(gap, window + 1)), *range(2 * window, gap, window)]}
    return days


@pytest.mark.parametrize("mart, key, other, prefix", [
    ("fct_customer_daily_features", "customer_id", "merchant_id", "cust_"),
    ("fct_merchant_daily_features", "merchant_id", "customer_id", "merch_"),
])
def test_every_mart_row_holds_the_truth_of_the_day_after_it(clean_platform, mart, key, other, prefix):
    """At any instant, not only at transactions: each row of the daily mart is what a request on the next day must
    see, and the mart has exactly the rows of its calendar (macro feature_calendar)."""
    settings = clean_platform.settings
    rows = query(settings.exports_dir, "SELECT * FROM {m} ORDER BY feature_date, " + key, m=mart)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        active = con.execute(f"SELECT DISTINCT {key}, CAST(timezone('UTC', event_ts) AS DATE) AS day "
                             "FROM raw.transactions ORDER BY 1, 2").df()
        placeholder = con.execute(f"SELECT min({other}) FROM raw.transactions").fetchone()[0]
    last_day = active.day.max().date()
    due = {(entity, d) for entity, days in active.groupby(key).day
           for d in _calendar([x.date() for x in days], last_day, LONGEST_WINDOW_DAYS)}
    assert set(zip(rows[key], (d.date() for d in pd.to_datetime(rows.feature_date)), strict=True)) == due
    assert len(rows) == len(due)
    requests = pd.DataFrame({key: rows[key], other: placeholder, "amount": 1.0,
                             "event_timestamp": pd.to_datetime(rows.event_timestamp, utc=True) + pd.Timedelta(hours=9)})
    truth = expected_features(settings.warehouse_path, requests)
    features = [f for f in WINDOW_FEATURES if f.startswith(prefix)]
    _assert_oracle_agrees(compare(rows, truth, features, [key, "feature_date"]))
    assert (rows[features[0]] == 0).any(), "no drained row: the world has no idle gap"
