"""raw.customers / raw.merchants carry updated_at and deleted_at (the system of record fills them, a file leaves
them NULL); a warehouse from before they existed gets them on its next load, its rows kept."""

import duckdb

from platform_assets.ingestion.loader import ensure_raw_tables
from platform_assets.ingestion.sources import CUSTOMERS, MERCHANTS, TRANSACTIONS


def _columns(con, table):
    return [r[0] for r in con.execute(f"DESCRIBE raw.{table}").fetchall()]


def test_an_older_warehouse_gains_the_history_columns():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.customers (customer_id VARCHAR, created_at TIMESTAMPTZ, country VARCHAR, "
                "card_type VARCHAR, birth_year INTEGER, _loaded_at TIMESTAMPTZ NOT NULL)")
    con.execute("INSERT INTO raw.customers VALUES ('C1', '2026-01-01 00:00:00+00', 'DE', 'debit', 1980, now())")
    for spec in (CUSTOMERS, MERCHANTS, TRANSACTIONS):
        ensure_raw_tables(con, spec)
        ensure_raw_tables(con, spec)  # idempotent
    assert _columns(con, "customers")[-2:] == ["updated_at", "deleted_at"]
    assert _columns(con, "merchants")[-2:] == ["updated_at", "deleted_at"]
    assert "updated_at" not in _columns(con, "transactions")
    assert con.execute("SELECT customer_id, updated_at, deleted_at FROM raw.customers").fetchall() == [
        ("C1", None, None)]
