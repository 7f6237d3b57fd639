"""The warehouse and feature store a data scientist can trust, checked on the materialized stationary world.

Online/offline skew, rebuilding a training set by its id, re-running dbt partitions, labels known at the time,
and the dbt and Feast command lines.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from platform_assets.definitions import build_definitions, build_resources
from platform_assets.features.training_set_builder import (
    SnapshotNotReproducibleError,
    build_training_set,
    rebuild_training_set,
)
from platform_assets.lib import names
from platform_assets.lib.exports import MARTS, query
from platform_assets.lib.online_features import fresh_online_features
from platform_assets.lib.training_sets import TrainingSetManifest
from platform_assets.resources import FeastResource
from platform_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
SERVICE = "fraud_detector_v2"


def _store(platform):
    return build_resources(platform.settings)["feast"].store()


def _cli(args: list[str], cwd, data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLATFORM_DATA_DIR": str(data_dir), "DO_NOT_TRACK": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def _online_vs_offline(store, exports, at: pd.Timestamp, sample: int = 40, active_since: pd.Timestamp | None = None):
    """Requests of customer x merchant pairs active in the 3 days before `active_since` (default `at`), at `at`."""
    pairs = query(
        exports,
        "SELECT DISTINCT customer_id, merchant_id FROM {tx} "
        "WHERE event_ts >= $since ORDER BY customer_id, merchant_id LIMIT $n",
        {"since": ((active_since or at) - pd.Timedelta(days=3)).to_pydatetime(), "n": sample},
        tx="fct_transactions",
    )
    rows = [
        {"customer_id": r.customer_id, "merchant_id": r.merchant_id, "amount": 10.0 + 7 * i,
         "transaction_epoch": int(at.timestamp())}
        for i, r in enumerate(pairs.itertuples())
    ]
    online = fresh_online_features(store, SERVICE, rows, at.to_pydatetime())
    entity_df = pd.DataFrame(rows).assign(event_timestamp=at)
    entity_df["event_timestamp"] = entity_df["event_timestamp"].astype("datetime64[us, UTC]")
    offline = store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service(SERVICE), filter_by_created_timestamp=True
    ).to_df().set_index(["customer_id", "merchant_id"])
    return rows, online, offline


def _assert_same_vectors(rows, online, offline, features):
    mismatches = []
    for i, row in enumerate(rows):
        expected = offline.loc[(row["customer_id"], row["merchant_id"])]
        for name in features:
            got, want = online.values[name][i], expected[name]
            if (got is None and pd.isna(want)) or (got is not None and not pd.isna(want)
                                                  and float(got) == pytest.approx(float(want), rel=1e-12)):
                continue
            mismatches.append((row["customer_id"], row["merchant_id"], name, got, want))
    assert not mismatches, mismatches[:10]


def test_online_vector_equals_offline_point_in_time_vector(clean_platform):
    """At the time the online store was materialized to, a sample of (customer, merchant, transaction) requests
    gets the same vector online (freshness-guarded) as the offline point-in-time join: stored and on-demand."""
    store = _store(clean_platform)
    at = pd.Timestamp(clean_platform.metadata("feast_online_store")["materialized_until"])
    features = [f.name for p in store.get_feature_service(SERVICE).feature_view_projections for f in p.features]
    assert {"amount_to_cust_avg_30d", "first_purchase_at_merchant", "merch_chargeback_rate_30d"} <= set(features)
    rows, online, offline = _online_vs_offline(store, clean_platform.settings.exports_dir, at)
    assert len(rows) == 40 and online.stale_count == 0
    _assert_same_vectors(rows, online, offline, features)
    # Every sampled pair was active in the 3 days before `at`: each has paid its merchant before (all history).
    assert online.values["first_purchase_at_merchant"] == [0] * len(rows)


def test_online_values_past_their_ttl_are_reported_stale_like_offline_nulls(clean_platform):
    """Forty days later nothing was loaded: Feast still serves the old values online; the guard nulls and
    reports them, which is what the offline join (TTL 30 days) returns too."""
    store = _store(clean_platform)
    materialized = pd.Timestamp(clean_platform.metadata("feast_online_store")["materialized_until"])
    at = materialized + pd.Timedelta(days=40)
    features = [f.name for p in store.get_feature_service(SERVICE).feature_view_projections for f in p.features]
    raw = store.get_online_features(
        features=["customer_daily_features:cust_txn_count_7d"],
        entity_rows=[{"customer_id": query(clean_platform.settings.exports_dir, "SELECT customer_id FROM {tx} "
                                           "ORDER BY event_ts DESC LIMIT 1", tx="fct_transactions").customer_id[0]}],
    ).to_dict()
    assert raw["cust_txn_count_7d"][0] is not None, "Feast serves expired values online (feast#6821)"
    rows, online, offline = _online_vs_offline(store, clean_platform.settings.exports_dir, at, 10, materialized)
    assert online.stale_count >= len(rows) and "cust_txn_count_7d" in online.stale
    assert all(v is None for v in online.values["cust_txn_count_7d"])
    _assert_same_vectors(rows, online, offline, features)


def test_training_set_rebuilds_identically_by_id(clean_platform, tmp_path):
    settings = clean_platform.settings
    manifest = TrainingSetManifest.read(settings.data_dir / "training_sets" / "latest.json")
    meta = clean_platform.metadata("training_set")
    assert meta["snapshot_id"] == manifest.snapshot_id and manifest.feature_service == SERVICE
    store = _store(clean_platform)
    rebuilt = rebuild_training_set(store, settings.exports_dir, settings.data_dir / "training_sets",
                                   manifest.snapshot_id)
    saved = pd.read_parquet(manifest.path)
    pd.testing.assert_frame_equal(rebuilt, saved, check_dtype=False)
    assert len(rebuilt) == manifest.rows > 1000

    # The id is recorded with the model in MLflow.
    mlflow_resource = build_resources(settings)["mlflow_tracking"]
    version = mlflow_resource.client().get_model_version_by_alias(mlflow_resource.model_name, "champion")
    assert version.tags["training_set_id"] == manifest.snapshot_id
    assert version.tags["feature_service"] == SERVICE

    # A recipe whose upstream data no longer exists is refused, not silently rebuilt from other data.
    copy = tmp_path / "sets"
    copy.mkdir()
    fields = json.loads(Path(settings.data_dir / "training_sets" / f"{manifest.snapshot_id}.json").read_text())
    fields["upstream_versions"]["fct_transactions.parquet"] = "0000000000000000"
    (copy / f"{manifest.snapshot_id}.json").write_text(json.dumps(fields))
    with pytest.raises(SnapshotNotReproducibleError, match="fct_transactions"):
        rebuild_training_set(store, settings.exports_dir, copy, manifest.snapshot_id)


def test_a_training_set_built_in_many_chunks_equals_the_one_built_whole(clean_platform, tmp_path):
    """Chunking bounds the build's memory; it must not change a single row, their order or the content hash."""
    settings = clean_platform.settings
    manifest = TrainingSetManifest.read(settings.data_dir / "training_sets" / "latest.json")
    window = {k: pd.Timestamp(getattr(manifest, k)).to_pydatetime() for k in ("window_start", "window_end", "as_of")}
    store = _store(clean_platform)

    def build(chunk_rows: int, out: str):
        return build_training_set(store, settings.exports_dir, manifest.feature_service,
                                  manifest.label_maturity_days, manifest.warmup_days, manifest.holdout_days,
                                  tmp_path / out, window, chunk_rows=chunk_rows)

    whole, chunked = build(10_000_000, "whole"), build(max(manifest.rows // 7, 1), "chunked")
    assert whole.chunks == 1 and chunked.chunks >= 7
    assert chunked.manifest_fields == whole.manifest_fields
    assert chunked.manifest_fields["content_hash"] == manifest.content_hash
    rows = chunked.read()
    pd.testing.assert_frame_equal(rows, whole.read())
    pd.testing.assert_frame_equal(rows, pd.read_parquet(manifest.path))
    assert rows["event_timestamp"].is_monotonic_increasing and len(rows) == manifest.rows
    assert (rows[manifest.feature_columns].dtypes == "float64").all()
    assert chunked.train_positives == manifest.positives - manifest.holdout_positives


def test_distinct_counterpart_counts_match_a_brute_force_count(clean_platform):
    """Oracle for the running-sum distinct counts (macros/trailing_distinct_counts.sql): the merchants a customer
    paid in the last 7 and 30 days and the customers a merchant served in the last 7, counted directly."""
    exports = clean_platform.settings.exports_dir
    tx = query(exports, "SELECT customer_id, merchant_id, transaction_date FROM {tx}", tx="fct_transactions")
    seen: dict[tuple[str, str], dict] = {}
    for row in tx.itertuples():
        seen.setdefault(("c", row.customer_id), {}).setdefault(row.transaction_date, set()).add(row.merchant_id)
        seen.setdefault(("m", row.merchant_id), {}).setdefault(row.transaction_date, set()).add(row.customer_id)

    def brute(kind: str, key: str, day, days: int) -> int:
        dates = seen[(kind, key)]
        return len(set().union(*(dates.get(day - timedelta(days=d), set()) for d in range(days))))

    customers = query(exports, "SELECT customer_id, feature_date, cust_distinct_merchants_7d AS d7, "
                               "cust_distinct_merchants_30d AS d30 FROM {m}", m="fct_customer_daily_features")
    merchants = query(exports, "SELECT merchant_id, feature_date, merch_distinct_customers_7d AS d7 FROM {m}",
                      m="fct_merchant_daily_features")
    assert len(customers) > 1000 and len(merchants) > 100
    assert (customers.d30 > customers.d7).any()  # the windows differ somewhere, or the test could not tell them apart
    for row in customers.itertuples():
        assert (row.d7, row.d30) == (brute("c", row.customer_id, row.feature_date, 7),
                                     brute("c", row.customer_id, row.feature_date, 30)), row
    for row in merchants.itertuples():
        assert row.d7 == brute("m", row.merchant_id, row.feature_date, 7), row


def test_training_rows_have_matured_labels_known_at_the_as_of_time(clean_platform):
    manifest = TrainingSetManifest.read(clean_platform.settings.data_dir / "training_sets" / "latest.json")
    frame = pd.read_parquet(manifest.path)
    labels = query(clean_platform.settings.exports_dir, "SELECT * FROM {l}", l="fct_transaction_labels")
    merged = frame.merge(labels[["transaction_id", "fraud_reported_at"]], on="transaction_id", how="left")
    as_of = pd.Timestamp(manifest.as_of)
    # Every row is older than the maturity window; its label counts only what was reported by the as-of time.
    assert (merged.event_timestamp < as_of - pd.Timedelta(days=manifest.label_maturity_days)).all()
    known = merged.fraud_reported_at.notna() & (merged.fraud_reported_at <= as_of)
    assert (merged.is_fraud == known.astype(int)).all()
    # Every matured transaction of the window is there: none dropped, none too young.
    window = query(clean_platform.settings.exports_dir, "SELECT count(*) AS n FROM {tx} WHERE event_ts >= $s "
                   "AND event_ts < $e", {"s": pd.Timestamp(manifest.window_start).to_pydatetime(),
                                         "e": pd.Timestamp(manifest.window_end).to_pydatetime()},
                   tx="fct_transactions").n[0]
    assert len(frame) == window


def test_merchant_chargeback_rate_counts_only_frauds_known_by_the_end_of_the_day(clean_platform):
    """Oracle from the transaction and label marts: frauds among the last 30 days' transactions, reported by
    the end of the feature day."""
    exports = clean_platform.settings.exports_dir
    mart = query(exports, "SELECT * FROM {m} WHERE merch_known_frauds_30d > 0 ORDER BY feature_date DESC, "
                          "merchant_id LIMIT 60", m="fct_merchant_daily_features")
    expected = query(
        exports,
        """
        SELECT m.merchant_id, m.feature_date, count(l.transaction_id) FILTER (
                   WHERE l.fraud_reported_at < m.event_timestamp) AS known,
               count(*) AS txns
        FROM {m} AS m JOIN {tx} AS t ON t.merchant_id = m.merchant_id
             AND t.transaction_date BETWEEN m.feature_date - 29 AND m.feature_date
        LEFT JOIN {l} AS l ON l.transaction_id = t.transaction_id AND l.is_fraud = 1
        GROUP BY 1, 2
        """,
        m="fct_merchant_daily_features", tx="fct_transactions", l="fct_transaction_labels",
    ).set_index(["merchant_id", "feature_date"])
    assert len(mart) > 10
    for row in mart.itertuples():
        want = expected.loc[(row.merchant_id, row.feature_date)]
        assert row.merch_known_frauds_30d == want.known, row
        assert row.merch_chargeback_rate_30d == pytest.approx(want.known / want.txns)
    # and some frauds of those windows were reported later, so a naive count would have leaked them
    later = query(exports, "SELECT count(*) AS n FROM {l} AS l JOIN {tx} AS t USING (transaction_id) "
                           "WHERE l.is_fraud = 1 AND l.fraud_reported_at >= t.transaction_date + 1",
                  l="fct_transaction_labels", tx="fct_transactions").n[0]
    assert later > 0


def _mart_counts(platform) -> dict[str, int]:
    import pyarrow.parquet as pq

    exports = platform.settings.exports_dir
    counts = {m: pq.read_metadata(exports / f"{m}.parquet").num_rows for m in sorted(MARTS)}
    with duckdb.connect(str(platform.settings.warehouse_path), read_only=True) as con:
        counts.update({f"day {d}": n for d, n in con.execute(
            "SELECT transaction_date, count(*) FROM fct_transactions GROUP BY 1").fetchall()})
    return counts


def test_rerunning_dbt_partitions_changes_no_row_counts(clean_platform):
    """The daily incremental model replaces its window: one day again, then a 3-day range in one run."""
    before = _mart_counts(clean_platform)
    defs = build_definitions(clean_platform.settings)
    daily = dg.AssetSelection.assets("fct_transactions")
    middle = clean_platform.first_day + timedelta(days=40)
    one = dg.materialize(list(defs.assets), selection=daily, partition_key=middle.isoformat(),
                         instance=clean_platform.instance, resources=defs.resources)
    assert one.success
    assert _mart_counts(clean_platform) == before
    three = dg.materialize(
        list(defs.assets), selection=daily, instance=clean_platform.instance, resources=defs.resources,
        tags=names.partition_range_tags(middle.isoformat(), (middle + timedelta(days=2)).isoformat()),
    )
    assert three.success
    partitions = sorted(e.partition for e in three.get_asset_materialization_events()
                        if e.asset_key == dg.AssetKey("fct_transactions"))
    assert len(partitions) == 3  # one run, three partitions
    assert _mart_counts(clean_platform) == before


def test_dbt_docs_generate_and_source_freshness_work(clean_platform):
    cwd = PROJECT_ROOT / "dbt_project"
    target = clean_platform.settings.data_dir / "dbt_docs"
    docs = _cli([str(BIN / "dbt"), "docs", "generate", "--profiles-dir", ".", "--target-path", str(target)],
                cwd, clean_platform.settings.data_dir)
    assert docs.returncode == 0, docs.stdout[-3000:]
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.fraud_platform.fct_merchant_daily_features" in catalog["nodes"]
    assert "seed.fraud_platform.merchant_category_codes" in catalog["nodes"]
    freshness = _cli([str(BIN / "dbt"), "source", "freshness", "--profiles-dir", ".", "--target-path", str(target)],
                     cwd, clean_platform.settings.data_dir)
    assert freshness.returncode == 0, freshness.stdout[-3000:]
    assert "PASS freshness of raw.transactions" in freshness.stdout


def test_feast_apply_and_materialize_incremental_work_from_the_cli(clean_platform, tmp_path):
    """In feature_repo/ with the CLI only, on a fresh data directory holding a copy of the exports: `feast apply`,
    a first `feast materialize` window, then `feast materialize-incremental` continues from where it ended.
    (A never-materialized view would start at *wall-clock* now minus its TTL, hence the first window.)"""
    shutil.copytree(clean_platform.settings.exports_dir, tmp_path / "exports")
    repo = PROJECT_ROOT / "feature_repo"
    applied = _cli([str(BIN / "feast"), "apply"], repo, tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    end = pd.Timestamp(clean_platform.metadata("feast_online_store")["materialized_until"]).tz_convert(None)
    fmt = "%Y-%m-%dT%H:%M:%S"
    first = _cli([str(BIN / "feast"), "materialize", (end - pd.Timedelta(days=6)).strftime(fmt),
                  (end - pd.Timedelta(days=3)).strftime(fmt)], repo, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = _online_rows(tmp_path)
    loaded = _cli([str(BIN / "feast"), "materialize-incremental", end.strftime(fmt)], repo, tmp_path)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    after = _online_rows(tmp_path)
    assert before["customer_daily_features"] > 100
    assert after["customer_daily_features"] > before["customer_daily_features"], (before, after)
    assert after["customer_merchant_features"] > before["customer_merchant_features"], (before, after)
    store = FeastResource(repo_path=str(repo), feature_store_yaml=str(repo / "feature_store.yaml"),
                          data_dir=str(tmp_path)).store()
    for view in store.list_feature_views():
        assert view.most_recent_end_time.replace(tzinfo=None) == end.to_pydatetime(), view.name


def _online_rows(data_dir: Path) -> dict[str, int]:
    """Entity rows per view in the SQLite online store: one table per view (`<project>_<view>`, plus a suffix in
    the wide store of platform_assets.feast_stores), keyed by `entity_key`."""
    views = ("customer_daily_features", "merchant_daily_features", "customer_merchant_features")
    con = sqlite3.connect(data_dir / "feast" / "online_store.db")
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
        return {view: sum(con.execute(f'SELECT count(DISTINCT entity_key) FROM "{t}"').fetchone()[0]
                          for t in tables if t.startswith(f"fraud_platform_{view}")) for view in views}
    finally:
        con.close()
