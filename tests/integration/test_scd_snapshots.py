"""dbt snapshots of customers and merchants, and the attributes the marts read as of each row's time.

One small world, real dbt and DuckDB. The first build sees the raw tables as the files mode loads them (no
`updated_at` / `deleted_at` columns at all); then the system of record's columns appear, a merchant changes
category at `CHANGED_AT`, a customer is deleted at `DELETED_AT` (a tombstone), another merchant disappears
from the source and a third one changes the files-mode way (no `updated_at`: a new file, dated by its load); the
second build must record those versions, and the transactions and feature rows must read
the category valid at their own time. Expected values come from the simulator's landing files and the changes
this test writes, never from the models.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from platform_assets.ingestion.loader import load_source
from platform_assets.ingestion.sources import SOURCES
from platform_assets.settings import PROJECT_ROOT
from platform_assets.simulator import SimulationConfig, write_landing_zone

START = date(2026, 3, 1)
DAYS = 4
FIRST_LOAD = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)  # the initial backfill: its rows count as known on time
CHANGED_AT = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # the merchant's new category, in the system of record
DELETED_AT = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
SECOND_LOAD = datetime(2026, 3, 5, 2, 0, tzinfo=UTC)  # when the changes reached `raw`
NEW_CODE, NEW_CATEGORY = "7995", "gambling"
REFILED_CODE, REFILED_CATEGORY = "5411", "grocery"
DBT = PROJECT_ROOT / "dbt_project"
EXPORTS = ("fct_transactions", "fct_merchant_daily_features", "fct_customer_daily_features", "dim_customers",
           "dim_merchants")


def _dbt_build(data_dir: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--profiles-dir", ".", "--quiet",
         "--target-path", str(data_dir / "dbt_target"), "--log-path", str(data_dir / "dbt_logs"),
         "--vars", json.dumps({"platform_data_dir": str(data_dir), "platform_duckdb_memory_limit": "1GB"})],
        cwd=DBT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def _query(data_dir: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, list(params)).fetchall()


def _export(data_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "exports" / f"{name}.parquet")


def _digests(data_dir: Path) -> dict[str, str]:
    return {name: hashlib.sha256((data_dir / "exports" / f"{name}.parquet").read_bytes()).hexdigest()
            for name in EXPORTS}


def _landing_rows(landing: Path, name: str) -> list[dict]:
    rows = []
    for path in sorted(landing.rglob(f"{name}*.csv")):
        with path.open(newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def _high_risk_codes() -> set[int]:
    with (DBT / "seeds" / "merchant_category_codes.csv").open(newline="") as f:
        return {int(r["merchant_category_code"]) for r in csv.DictReader(f) if r["risk_level"] == "high"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("scd")
    landing = data_dir / "landing"
    config = SimulationConfig(start_date=START, days=DAYS, n_customers=200, n_merchants=30,
                              transactions_per_day=300, malformed_rate=0.0)
    write_landing_zone(config, landing)
    (data_dir / "warehouse").mkdir()
    (data_dir / "exports").mkdir()
    days = [START + timedelta(days=i) for i in range(DAYS)]
    database = str(data_dir / "warehouse" / "warehouse.duckdb")
    with duckdb.connect(database) as con:
        for name in ("customers", "merchants", "transactions", "chargebacks"):
            load_source(con, SOURCES[name], landing, days, FIRST_LOAD)
        con.execute("CHECKPOINT")

    _dbt_build(data_dir)
    first = {"digests": _digests(data_dir),
             "snapshot_rows": _query(data_dir, "select count(*) from snapshots.merchants_snapshot")[0][0]}

    merchants = {r["merchant_id"]: r for r in _landing_rows(landing, "merchants")}
    transactions = _landing_rows(landing, "transactions")
    per_merchant = pd.Series([t["merchant_id"] for t in transactions]).value_counts()
    busy = [m for m in per_merchant.index if merchants[m]["category_code"] not in {NEW_CODE, REFILED_CODE}]
    changed, removed, refiled = busy[:3]
    deleted_customer = min(t["customer_id"] for t in transactions)
    with duckdb.connect(database) as con:
        # what the database source adds to the files mode's tables (issue 17's contract)
        for table in ("customers", "merchants"):
            con.execute(f"ALTER TABLE raw.{table} ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ")
            con.execute(f"ALTER TABLE raw.{table} ADD COLUMN IF NOT EXISTS deleted_at TIMESTAMPTZ")
        con.execute("UPDATE raw.merchants SET category_code = ?, category = ?, updated_at = ?, _loaded_at = ? "
                    "WHERE merchant_id = ?", [NEW_CODE, NEW_CATEGORY, CHANGED_AT, SECOND_LOAD, changed])
        con.execute("DELETE FROM raw.merchants WHERE merchant_id = ?", [removed])
        con.execute("UPDATE raw.merchants SET category_code = ?, category = ?, _loaded_at = ? WHERE merchant_id = ?",
                    [REFILED_CODE, REFILED_CATEGORY, SECOND_LOAD, refiled])
        con.execute("UPDATE raw.customers SET deleted_at = ?, updated_at = ?, _loaded_at = ? WHERE customer_id = ?",
                    [DELETED_AT, DELETED_AT, SECOND_LOAD, deleted_customer])
        con.execute("CHECKPOINT")
    _dbt_build(data_dir)
    second = _digests(data_dir)
    _dbt_build(data_dir)
    return {"data_dir": data_dir, "first": first, "second": second, "merchants": merchants,
            "transactions": transactions, "changed": changed, "removed": removed, "refiled": refiled,
            "deleted_customer": deleted_customer}


def test_first_build_without_the_source_columns_records_one_version_per_key(world):
    merchants = world["merchants"]
    assert world["first"]["snapshot_rows"] == len(merchants)


def test_snapshot_holds_the_old_and_the_new_category_with_their_validity(world):
    data_dir, changed = world["data_dir"], world["changed"]
    rows = _query(data_dir, "select category_code, category, dbt_valid_from, dbt_valid_to "
                            "from snapshots.merchants_snapshot where merchant_id = ? order by dbt_valid_from", changed)
    old = world["merchants"][changed]
    assert rows == [(old["category_code"], old["category"], FIRST_LOAD, CHANGED_AT),
                    (NEW_CODE, NEW_CATEGORY, CHANGED_AT, None)]
    # every other merchant still has exactly one version (plus the removed one's deletion record)
    counts = dict(_query(data_dir, "select merchant_id, count(*) from snapshots.merchants_snapshot group by 1"))
    assert {m: n for m, n in counts.items() if n != 1} == {changed: 2, world["removed"]: 2, world["refiled"]: 2}


def test_a_change_without_updated_at_is_dated_by_its_load_and_leaves_the_past_alone(world):
    data_dir, refiled = world["data_dir"], world["refiled"]
    old = world["merchants"][refiled]
    rows = _query(data_dir, "select category_code, dbt_valid_from, dbt_valid_to from snapshots.merchants_snapshot "
                            "where merchant_id = ? order by dbt_valid_from", refiled)
    assert rows == [(old["category_code"], FIRST_LOAD, SECOND_LOAD), (REFILED_CODE, SECOND_LOAD, None)]
    # every loaded transaction and feature row is older than the load that brought the new category
    facts = _export(data_dir, "fct_transactions")
    codes = facts[facts.merchant_id == refiled].merchant_category_code
    assert len(codes) == sum(t["merchant_id"] == refiled for t in world["transactions"])
    assert set(codes) == {int(old["category_code"])}
    features = _export(data_dir, "fct_merchant_daily_features")
    assert set(features[features.merchant_id == refiled].merch_category_code) == {int(old["category_code"])}
    assert _export(data_dir, "dim_merchants").set_index("merchant_id").loc[refiled, "merchant_category_code"] == \
        int(REFILED_CODE)


def test_deleted_customer_is_invalidated_and_flagged(world):
    data_dir, customer = world["data_dir"], world["deleted_customer"]
    rows = _query(data_dir, "select deleted_at, dbt_valid_from, dbt_valid_to from snapshots.customers_snapshot "
                            "where customer_id = ? order by dbt_valid_from", customer)
    assert rows == [(None, FIRST_LOAD, DELETED_AT), (DELETED_AT, DELETED_AT, None)]
    dims = _export(data_dir, "dim_customers").set_index("customer_id")
    assert bool(dims.loc[customer, "is_deleted"]) and int(dims.is_deleted.sum()) == 1


def test_customer_feature_rows_ignore_a_version_that_changes_nothing_they_read(world):
    """The tombstone changes no attribute of the customer mart: its rows stay known on time."""
    customer = world["deleted_customer"]
    created_at = next(r["created_at"] for r in _landing_rows(world["data_dir"] / "landing", "customers")
                      if r["customer_id"] == customer)
    rows = _export(world["data_dir"], "fct_customer_daily_features")
    rows = rows[rows.customer_id == customer]
    assert len(rows) and (rows.event_timestamp >= DELETED_AT).any()
    for row in rows.itertuples():
        assert row.cust_account_age_days == (row.feature_date - datetime.fromisoformat(created_at).date()).days
        assert row.created_timestamp == row.event_timestamp


def test_merchant_gone_from_the_source_gets_a_deletion_record(world):
    data_dir, removed = world["data_dir"], world["removed"]
    rows = _query(data_dir, "select dbt_is_deleted, dbt_valid_to is null from snapshots.merchants_snapshot "
                            "where merchant_id = ? order by dbt_valid_from", removed)
    assert rows == [("False", False), ("True", True)]
    dims = _export(data_dir, "dim_merchants").set_index("merchant_id")
    assert len(dims) == len(world["merchants"])  # transactions still point at it
    assert dims.is_deleted.sum() == 1 and bool(dims.loc[removed, "is_deleted"])
    assert dims.loc[removed, "merchant_category_code"] == int(world["merchants"][removed]["category_code"])


def test_transactions_read_the_category_valid_at_their_time(world):
    changed, old_code = world["changed"], int(world["merchants"][world["changed"]]["category_code"])
    expected = {t["transaction_id"]: (NEW_CODE if datetime.fromisoformat(t["event_ts"]) >= CHANGED_AT
                                      else str(old_code))
                for t in world["transactions"] if t["merchant_id"] == changed}
    assert set(expected.values()) == {NEW_CODE, str(old_code)}, "the world must have transactions on both sides"
    facts = _export(world["data_dir"], "fct_transactions")
    got = facts[facts.merchant_id == changed].set_index("transaction_id").merchant_category_code
    assert {t: str(int(c)) for t, c in got.items()} == expected
    # everyone else keeps the category the landing file gave them when the transactions were loaded
    others = facts[facts.merchant_id != changed]
    assert (others.merchant_category_code
            == others.merchant_id.map(lambda m: int(world["merchants"][m]["category_code"]))).all()


def test_merchant_feature_rows_read_the_category_as_of_their_event_timestamp(world):
    changed, old_code = world["changed"], int(world["merchants"][world["changed"]]["category_code"])
    high = _high_risk_codes()
    rows = _export(world["data_dir"], "fct_merchant_daily_features")
    rows = rows[rows.merchant_id == changed].sort_values("feature_date")
    assert len(rows) == DAYS
    for row in rows.itertuples():
        new = row.event_timestamp >= CHANGED_AT
        code = int(NEW_CODE) if new else old_code
        assert (row.merch_category_code, row.merch_high_risk_mcc) == (code, int(code in high)), row
        # the new category reached the platform with the second load: a row that reads it is known from then
        assert row.created_timestamp == (SECOND_LOAD if new else row.event_timestamp), row


def test_rebuild_with_unchanged_raw_adds_nothing(world):
    data_dir = world["data_dir"]
    assert _query(data_dir, "select count(*) from snapshots.merchants_snapshot")[0][0] == len(world["merchants"]) + 3
    assert _query(data_dir, "select count(*) from snapshots.customers_snapshot")[0][0] == \
        len(_landing_rows(data_dir / "landing", "customers")) + 1
    assert _digests(data_dir) == world["second"]
