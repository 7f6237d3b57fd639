"""Records received one by one load by the same contract as a landing file (platform_assets/ingestion/received.py)."""

from datetime import UTC, date, datetime

import duckdb
import pytest

from platform_assets.ingestion.loader import ensure_raw_tables
from platform_assets.ingestion.received import Received, rebuild_days, receive
from platform_assets.ingestion.sources import CUSTOMERS, MERCHANTS, TRANSACTIONS

DAY = date(2026, 11, 1)
GOOD = {"transaction_id": "t1", "customer_id": "c1", "merchant_id": "m1", "amount": "12.50", "currency": "EUR",
        "channel": "online", "event_ts": "2026-11-01T10:00:00Z"}


@pytest.fixture
def con():
    con = duckdb.connect()
    for spec in (CUSTOMERS, MERCHANTS):
        ensure_raw_tables(con, spec)
    con.execute("INSERT INTO raw.customers (customer_id, created_at, country, card_type, birth_year, _loaded_at) "
                "VALUES ('c1', '2026-01-01', 'DE', 'credit', 1980, now())")
    con.execute("INSERT INTO raw.merchants (merchant_id, merchant_name, category_code, category, country, created_at, "
                "_loaded_at) VALUES ('m1', 'M', '5411', 'grocery', 'DE', '2026-01-01', now())")
    yield con
    con.close()


def _load(con, records):
    now = datetime.now(UTC)
    con.begin()
    new, days = receive(con, TRANSACTIONS, records, "test", now)
    result = rebuild_days(con, TRANSACTIONS, days, "test", now)
    con.commit()
    return new, result


def test_good_bad_and_garbage_records_each_end_in_one_place(con):
    new, result = _load(con, [
        Received("1-0", DAY, GOOD),
        Received("2-0", DAY, {**GOOD, "transaction_id": "t2", "amount": -3}),
        Received("3-0", DAY, "garbage{"),
        Received("4-0", DAY, {**GOOD, "transaction_id": "t4", "currency": None}),
        Received("5-0", DAY, {**GOOD, "transaction_id": "t5", "channel": "x" * 2000}),
    ])
    assert new == 5 and result.rows_read == 5 and result.rows_loaded == 1
    assert dict(result.quarantine_by_reason) == {"invalid_amount": 1, "not_a_record": 1, "invalid_currency": 1,
                                                 "field_too_long": 1}
    assert con.execute("SELECT transaction_id FROM raw.transactions").fetchall() == [("t1",)]
    assert con.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 4


def test_a_redelivered_position_is_received_once_and_a_rebuild_is_idempotent(con):
    _load(con, [Received("1-0", DAY, GOOD)])
    new, result = _load(con, [Received("1-0", DAY, GOOD), Received("2-0", DAY, {**GOOD, "transaction_id": "t2"})])
    assert new == 1 and result.rows_loaded == 2
    # The same transaction sent twice at two positions is a duplicate, as two copies in one file would be.
    new, result = _load(con, [Received("3-0", DAY, {**GOOD, "transaction_id": "t2"})])
    assert new == 1 and result.rows_loaded == 2 and result.quarantine_by_reason == {"duplicate_transaction_id": 1}
    assert con.execute("SELECT count(*) FROM raw.transactions").fetchone()[0] == 2
