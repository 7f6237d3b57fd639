"""Landing files -> DuckDB raw tables: quarantine reasons, types, idempotency and all-or-nothing loads.

Files are written by hand in the landing layout of docs/data-contracts.md; the warehouse is a DuckDB file in
tmp_path with a UTC session, as WarehouseResource opens it.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from platform_assets.ingestion.loader import LandingFileMissing, load_source
from platform_assets.ingestion.sources import CHARGEBACKS, CUSTOMERS, MERCHANTS, SOURCES, TRANSACTIONS
from platform_assets.simulator import SimulationConfig, simulate, write_landing_zone

DAY1 = date(2026, 3, 1)
DAY2 = date(2026, 3, 2)
LOADED_AT = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
TX_HEADER = ["transaction_id", "customer_id", "merchant_id", "amount", "currency", "channel", "event_ts"]

# One row per quarantine reason (and the edge cases of the good ones), line numbers as in the file (header = 1).
TX_ROWS = [
    ["T001", "C1", "M1", "12.50", "EUR", "online", "2026-03-01T10:00:00.123456Z"],  # 2 good
    ["T002", "C2", "M2", "0.01", "EUR", "card_present", "2026-03-01T00:00:00+00:00"],  # 3 good, first instant
    ["T003", "C3", "M3", "999999.99", "EUR", "online", "2026-03-01T23:59:59.999999Z"],  # 4 good, last instant
    ["", "C1", "M1", "5.00", "EUR", "online", "2026-03-01T11:00:00Z"],  # 5 missing_transaction_id
    ["T005", "  ", "M1", "5.00", "EUR", "online", "2026-03-01T11:00:00Z"],  # 6 missing_customer_id
    ["T006", "C1", "", "5.00", "EUR", "online", "2026-03-01T11:00:00Z"],  # 7 missing_merchant_id
    ["T007", "C1", "M1", "-12.00", "EUR", "online", "2026-03-01T11:00:00Z"],  # 8 invalid_amount
    ["T008", "C1", "M1", "0", "EUR", "online", "2026-03-01T11:00:00Z"],  # 9 invalid_amount
    ["T009", "C1", "M1", "n/a", "EUR", "online", "2026-03-01T11:00:00Z"],  # 10 invalid_amount
    ["T010", "C1", "M1", "", "EUR", "online", "2026-03-01T11:00:00Z"],  # 11 invalid_amount
    ["T011", "C1", "M1", "5.00", "eur", "online", "2026-03-01T11:00:00Z"],  # 12 invalid_currency
    ["T012", "C1", "M1", "5.00", "EUR", "atm", "2026-03-01T11:00:00Z"],  # 13 unknown_channel
    ["T013", "C1", "M1", "5.00", "EUR", "online", "not-a-timestamp"],  # 14 invalid_timestamp
    ["T014", "C1", "M1", "5.00", "EUR", "online", "2026-03-02T00:00:00Z"],  # 15 timestamp_outside_partition
    ["T015", "C1", "M1", "5.00", "EUR", "online", "2026-02-28T23:59:59.999999Z"],  # 16 timestamp_outside_partition
    ["T016", "C1", "M1", "n/a", "EUR", "online", "2026-03-01T12:00:00Z"],  # 17 invalid_amount (first copy)
    ["T016", "C6", "M6", "7.25", "EUR", "card_present", "2026-03-01T15:00:00Z"],  # 18 good: second copy loads
    ["T001", "C1", "M1", "12.50", "EUR", "online", "2026-03-01T10:00:00.123456Z"],  # 19 duplicate_transaction_id
]
TX_EXPECTED_REASONS = {
    "missing_transaction_id": 1,
    "missing_customer_id": 1,
    "missing_merchant_id": 1,
    "invalid_amount": 5,
    "invalid_currency": 1,
    "unknown_channel": 1,
    "invalid_timestamp": 1,
    "timestamp_outside_partition": 2,
    "duplicate_transaction_id": 1,
}
TX_EXPECTED_LINES = {
    5: "missing_transaction_id", 6: "missing_customer_id", 7: "missing_merchant_id", 8: "invalid_amount",
    9: "invalid_amount", 10: "invalid_amount", 11: "invalid_amount", 12: "invalid_currency", 13: "unknown_channel",
    14: "invalid_timestamp", 15: "timestamp_outside_partition", 16: "timestamp_outside_partition",
    17: "invalid_amount", 19: "duplicate_transaction_id",
}


def write_file(landing: Path, source: str, day: date | None, header: list[str], rows: list[list[str]]) -> Path:
    path = SOURCES[source].landing_file(landing, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def tx_row(tx_id: str, day: date, hour: int = 12, amount: str = "10.00") -> list[str]:
    return [tx_id, "C1", "M1", amount, "EUR", "online", f"{day.isoformat()}T{hour:02d}:00:00Z"]


CUSTOMER_HEADER = ["customer_id", "created_at", "country", "card_type", "birth_year"]
MERCHANT_HEADER = ["merchant_id", "merchant_name", "category_code", "category", "country", "created_at"]


def seed_references(con, landing: Path, n: int = 9) -> None:
    """Customers C1..Cn and merchants M1..Mn: transactions are checked against the snapshots."""
    write_file(landing, "customers", None, CUSTOMER_HEADER,
               [[f"C{i}", "2025-01-01T00:00:00Z", "DE", "credit", "1980"] for i in range(1, n + 1)])
    write_file(landing, "merchants", None, MERCHANT_HEADER,
               [[f"M{i}", "Shop", "5411", "grocery", "DE", "2024-01-01T00:00:00Z"] for i in range(1, n + 1)])
    load_source(con, CUSTOMERS, landing, None, LOADED_AT)
    load_source(con, MERCHANTS, landing, None, LOADED_AT)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.execute("SET TimeZone = 'UTC'")  # as WarehouseResource.get_connection does
    yield connection
    connection.close()


@pytest.fixture
def tx_con(con, tmp_path):
    """A warehouse whose snapshots hold the customers and merchants the hand-written transactions name."""
    seed_references(con, tmp_path / "references")
    return con


@pytest.fixture
def landing(tmp_path) -> Path:
    return tmp_path / "landing"


def rows(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or {}).fetchall()


def quarantine(con, source: str, day: date | None) -> list[tuple]:
    return rows(
        con,
        "SELECT line_number, reason, record FROM raw.quarantine "
        "WHERE source = $s AND partition_date IS NOT DISTINCT FROM $d ORDER BY line_number",
        {"s": source, "d": day},
    )


# --- transactions -----------------------------------------------------------------------------------------------


def test_every_quarantine_reason_is_counted_and_good_rows_load(tx_con, landing):
    con = tx_con
    write_file(landing, "transactions", DAY1, TX_HEADER, TX_ROWS)
    result = load_source(con, TRANSACTIONS, landing, [DAY1], LOADED_AT)

    assert result.rows_read == len(TX_ROWS) == 18
    assert result.rows_loaded == 4
    assert dict(result.quarantine_by_reason) == TX_EXPECTED_REASONS
    assert result.rows_quarantined == 14
    assert result.quarantine_share == pytest.approx(14 / 18)
    assert result.files == [str(TRANSACTIONS.landing_file(landing, DAY1))]

    loaded = rows(con, "SELECT transaction_id, customer_id, amount FROM raw.transactions ORDER BY transaction_id")
    assert loaded == [
        ("T001", "C1", Decimal("12.50")),  # the first T001, not the later duplicate
        ("T002", "C2", Decimal("0.01")),
        ("T003", "C3", Decimal("999999.99")),
        ("T016", "C6", Decimal("7.25")),  # the good second copy of a malformed first one
    ]

    q = quarantine(con, "transactions", DAY1)
    assert {line: reason for line, reason, _ in q} == TX_EXPECTED_LINES
    records = {line: json.loads(record) for line, _, record in q}
    assert records[10]["amount"] == "n/a"
    assert records[17] == dict(zip(TX_HEADER, TX_ROWS[15]))
    assert records[19] == dict(zip(TX_HEADER, TX_ROWS[0]))


def test_loaded_rows_have_contract_types_utc_and_microseconds(tx_con, landing):
    con = tx_con
    write_file(landing, "transactions", DAY1, TX_HEADER, TX_ROWS)
    load_source(con, TRANSACTIONS, landing, [DAY1], LOADED_AT)

    types = dict(rows(con, "SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = 'raw' AND table_name = 'transactions'"))
    assert types == {
        "transaction_id": "VARCHAR", "customer_id": "VARCHAR", "merchant_id": "VARCHAR",
        "amount": "DECIMAL(18,2)", "currency": "VARCHAR", "channel": "VARCHAR",
        "event_ts": "TIMESTAMP WITH TIME ZONE", "partition_date": "DATE", "_loaded_at": "TIMESTAMP WITH TIME ZONE",
    }
    ts = dict(rows(con, "SELECT transaction_id, event_ts FROM raw.transactions"))
    assert ts["T001"] == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert ts["T002"] == datetime(2026, 3, 1, 0, 0, 0, tzinfo=UTC)
    assert ts["T003"] == datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert all(t.utcoffset() == timedelta(0) for t in ts.values())
    # Independent of the Python conversion: the stored instant, rendered in UTC by DuckDB itself.
    assert rows(con, "SELECT strftime(event_ts AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%f') FROM raw.transactions "
                     "WHERE transaction_id = 'T001'") == [("2026-03-01T10:00:00.123456",)]
    assert rows(con, "SELECT DISTINCT partition_date, _loaded_at FROM raw.transactions") == [(DAY1, LOADED_AT)]


def test_reloading_a_day_is_idempotent(tx_con, landing):
    con = tx_con
    write_file(landing, "transactions", DAY1, TX_HEADER, TX_ROWS)
    first = load_source(con, TRANSACTIONS, landing, [DAY1], LOADED_AT)
    later = LOADED_AT + timedelta(hours=1)
    unchanged = load_source(con, TRANSACTIONS, landing, [DAY1], later)
    forced = load_source(con, TRANSACTIONS, landing, [DAY1], later, reload_unchanged=True)

    for again in (unchanged, forced):
        assert (again.rows_read, again.rows_loaded, again.quarantine_by_reason) == (
            first.rows_read, first.rows_loaded, first.quarantine_by_reason)
    assert (first.files_unchanged, unchanged.files_unchanged, forced.files_unchanged) == (0, 1, 0)
    assert rows(con, "SELECT count(*), count(DISTINCT transaction_id) FROM raw.transactions") == [(4, 4)]
    assert rows(con, "SELECT count(*) FROM raw.quarantine WHERE source = 'transactions'") == [(14,)]
    # The same bytes are loaded once; a forced reload replaces the rows, it leaves no leftovers of the first.
    assert rows(con, "SELECT count(*) FROM raw.landed_files WHERE source = 'transactions'") == [(2,)]
    assert rows(con, "SELECT DISTINCT _loaded_at FROM raw.transactions") == [(later,)]
    assert rows(con, "SELECT DISTINCT _loaded_at FROM raw.quarantine WHERE source = 'transactions'") == [(later,)]


def test_reloading_one_day_leaves_other_days_alone(tx_con, landing):
    con = tx_con
    write_file(landing, "transactions", DAY1, TX_HEADER, [tx_row("A1", DAY1), tx_row("A2", DAY1, 13)])
    write_file(landing, "transactions", DAY2, TX_HEADER, [tx_row("B1", DAY2), ["B2", "", "M1", "1", "EUR",
                                                                               "online", "2026-03-02T01:00:00Z"]])
    load_source(con, TRANSACTIONS, landing, [DAY1, DAY2], LOADED_AT)
    write_file(landing, "transactions", DAY2, TX_HEADER, [tx_row("B3", DAY2)])
    result = load_source(con, TRANSACTIONS, landing, [DAY2], LOADED_AT)

    assert result.rows_loaded == 1 and result.rows_quarantined == 0
    assert rows(con, "SELECT transaction_id FROM raw.transactions ORDER BY 1") == [("A1",), ("A2",), ("B3",)]
    assert quarantine(con, "transactions", DAY2) == []


def test_missing_file_raises_with_the_way_to_make_one(tx_con, landing):
    con = tx_con
    write_file(landing, "transactions", DAY1, TX_HEADER, [tx_row("A1", DAY1)])
    with pytest.raises(LandingFileMissing, match="make simulate") as excinfo:
        load_source(con, TRANSACTIONS, landing, [DAY1, DAY2], LOADED_AT)
    assert isinstance(excinfo.value, FileNotFoundError)
    assert str(TRANSACTIONS.landing_file(landing, DAY2)) in str(excinfo.value)
    # Nothing was loaded (the check runs before anything is written).
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = "
                     "'transactions'") == [(0,)]


def test_missing_column_refuses_the_file_line_by_line(tx_con, landing):
    con = tx_con
    header = [c for c in TX_HEADER if c != "currency"]
    write_file(landing, "transactions", DAY1, header, [["A1", "C1", "M1", "1.00", "online", "2026-03-01T10:00:00Z"]])
    result = load_source(con, TRANSACTIONS, landing, [DAY1], LOADED_AT)
    assert (result.rows_read, result.rows_loaded, dict(result.quarantine_by_reason)) == (1, 0, {"header_mismatch": 1})
    assert "missing column(s) ['currency']" in result.file_problems[0]
    assert rows(con, "SELECT count(*) FROM raw.transactions") == [(0,)]


def test_failure_in_a_later_file_leaves_earlier_days_untouched(tx_con, landing):
    con = tx_con
    good_day1 = [tx_row("A1", DAY1), tx_row("A2", DAY1, 13), ["A3", "", "M1", "1", "EUR", "online",
                                                              "2026-03-01T14:00:00Z"]]
    write_file(landing, "transactions", DAY1, TX_HEADER, good_day1)
    load_source(con, TRANSACTIONS, landing, [DAY1], LOADED_AT)
    before = rows(con, "SELECT * FROM raw.transactions ORDER BY transaction_id")
    q_before = rows(con, "SELECT * FROM raw.quarantine ORDER BY line_number")
    manifest_before = rows(con, "SELECT count(*) FROM raw.landed_files")
    assert len(before) == 2 and len(q_before) == 1

    # Day 1 changes, and the process dies after it, while day 2 loads: the multi-day load changes nothing.
    write_file(landing, "transactions", DAY1, TX_HEADER, [tx_row("X1", DAY1)])
    write_file(landing, "transactions", DAY2, TX_HEADER, [tx_row("B1", DAY2)])

    def die_after_first_file(_rows):
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        load_source(con, TRANSACTIONS, landing, [DAY1, DAY2], LOADED_AT + timedelta(days=1),
                    on_file_loaded=die_after_first_file)

    assert rows(con, "SELECT * FROM raw.transactions ORDER BY transaction_id") == before
    assert rows(con, "SELECT * FROM raw.quarantine ORDER BY line_number") == q_before
    assert rows(con, "SELECT count(*) FROM raw.landed_files") == manifest_before
    # The connection is usable again (no transaction left open).
    result = load_source(con, TRANSACTIONS, landing, [DAY1, DAY2], LOADED_AT)
    assert result.rows_loaded == 2
    assert rows(con, "SELECT transaction_id FROM raw.transactions ORDER BY 1") == [("B1",), ("X1",)]


def test_partition_check_does_not_depend_on_the_session_time_zone(tmp_path, landing):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_references(con, tmp_path / "references")
    con.execute("SET TimeZone = 'America/New_York'")
    write_file(landing, "transactions", DAY1, TX_HEADER,
               [tx_row("A1", DAY1, hour=2), tx_row("A2", DAY1, hour=23)])
    result = load_source(con, TRANSACTIONS, landing, [DAY1], LOADED_AT)
    assert result.rows_loaded == 2, dict(result.quarantine_by_reason)


# --- chargebacks and snapshots ----------------------------------------------------------------------------------


def test_chargeback_quarantine_reasons(tx_con, landing):
    con = tx_con
    write_file(landing, "transactions", DAY1, TX_HEADER, [tx_row(f"T{i}", DAY1) for i in range(1, 10)])
    load_source(con, TRANSACTIONS, landing, [DAY1], LOADED_AT)
    header = ["chargeback_id", "transaction_id", "reported_at", "reason"]
    write_file(landing, "chargebacks", DAY2, header, [
        ["CB1", "T1", "2026-03-02T09:00:00Z", "fraud"],
        ["CB2", "T2", "2026-03-02T10:00:00.5Z", "product_not_received"],
        ["", "T3", "2026-03-02T10:00:00Z", "fraud"],
        ["CB4", "", "2026-03-02T10:00:00Z", "fraud"],
        ["CB5", "T5", "yesterday", "fraud"],
        ["CB6", "T6", "2026-03-01T10:00:00Z", "fraud"],
        ["CB7", "T7", "2026-03-02T10:00:00Z", "changed_my_mind"],
        ["CB1", "T1", "2026-03-02T09:00:00Z", "fraud"],
    ])
    result = load_source(con, CHARGEBACKS, landing, [DAY2], LOADED_AT)
    assert result.rows_loaded == 2
    assert dict(result.quarantine_by_reason) == {
        "missing_chargeback_id": 1, "missing_transaction_id": 1, "invalid_timestamp": 1,
        "timestamp_outside_partition": 1, "unknown_reason": 1, "duplicate_chargeback_id": 1,
    }
    assert rows(con, "SELECT chargeback_id, transaction_id, reported_at FROM raw.chargebacks ORDER BY 1") == [
        ("CB1", "T1", datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("CB2", "T2", datetime(2026, 3, 2, 10, 0, 0, 500000, tzinfo=UTC)),
    ]


def test_header_only_chargebacks_file_is_an_empty_day(tx_con, landing):
    con = tx_con
    write_file(landing, "chargebacks", DAY1, ["chargeback_id", "transaction_id", "reported_at", "reason"], [])
    result = load_source(con, CHARGEBACKS, landing, [DAY1], LOADED_AT)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (0, 0, 0)
    assert result.quarantine_share == 0.0


def test_snapshot_reload_replaces_table_and_quarantine(con, landing):
    write_file(landing, "customers", None, CUSTOMER_HEADER, [
        ["C1", "2025-01-01T00:00:00Z", "DE", "credit", "1980"],
        ["C2", "2025-01-01T00:00:00Z", "FR", "debit", "1975"],
        ["", "2025-01-01T00:00:00Z", "FR", "debit", "1975"],
        ["C4", "2025-01-01T00:00:00Z", "FR", "gold", "1975"],
        ["C5", "2025-01-01T00:00:00Z", "FR", "debit", "1850"],
    ])
    first = load_source(con, CUSTOMERS, landing, None, LOADED_AT)
    second = load_source(con, CUSTOMERS, landing, None, LOADED_AT)

    assert first.rows_loaded == second.rows_loaded == 2
    assert dict(second.quarantine_by_reason) == {
        "missing_customer_id": 1, "unknown_card_type": 1, "invalid_birth_year": 1}
    assert rows(con, "SELECT customer_id, birth_year FROM raw.customers ORDER BY 1") == [("C1", 1980), ("C2", 1975)]
    # Snapshot quarantine rows have no partition date, and are replaced, not doubled.
    assert [(line, reason) for line, reason, _ in quarantine(con, "customers", None)] == [
        (4, "missing_customer_id"), (5, "unknown_card_type"), (6, "invalid_birth_year")]


def test_non_numeric_birth_year_is_quarantined_not_fatal(con, landing):
    write_file(landing, "customers", None, CUSTOMER_HEADER, [
        ["C1", "2025-01-01T00:00:00Z", "DE", "credit", "1980"],
        ["C2", "2025-01-01T00:00:00Z", "DE", "credit", "abc"],
    ])
    result = load_source(con, CUSTOMERS, landing, None, LOADED_AT)
    assert result.rows_loaded == 1
    assert dict(result.quarantine_by_reason) == {"invalid_birth_year": 1}


def test_merchant_category_code_must_be_four_digits(con, landing):
    write_file(landing, "merchants", None, MERCHANT_HEADER, [
        ["M1", "Shop", "5411", "grocery", "DE", "2024-01-01T00:00:00Z"],
        ["M2", "Shop", "541", "grocery", "DE", "2024-01-01T00:00:00Z"],
        ["M3", "Shop", "", "grocery", "DE", "2024-01-01T00:00:00Z"],
        ["M4", "Shop", "5411", "grocery", "DE", "soon"],
    ])
    result = load_source(con, MERCHANTS, landing, None, LOADED_AT)
    assert result.rows_loaded == 1
    assert result.quarantine_by_reason == Counter({"invalid_category_code": 2, "invalid_timestamp": 1})


def test_partitioned_source_needs_a_day(landing):
    with pytest.raises(ValueError, match="a day is required"):
        TRANSACTIONS.landing_file(landing, None)
    assert CUSTOMERS.landing_file(landing, None) == landing / "customers" / "customers.csv"
    assert TRANSACTIONS.path_glob == "transactions/date=*/transactions.csv"


# --- the simulator's files through the loader -------------------------------------------------------------------


def test_simulated_landing_zone_loads_and_quarantines_exactly_the_malformed_rows(con, tmp_path):
    config = SimulationConfig(start_date=DAY1, days=4, n_customers=200, n_merchants=40, transactions_per_day=400,
                              malformed_rate=0.02, seed=3)
    landing = tmp_path / "sim"
    summary = write_landing_zone(config, landing)
    days = [DAY1 + timedelta(days=i) for i in range(config.days)]

    customers = load_source(con, CUSTOMERS, landing, None, LOADED_AT)
    merchants = load_source(con, MERCHANTS, landing, None, LOADED_AT)
    tx = load_source(con, TRANSACTIONS, landing, days, LOADED_AT)
    cb = load_source(con, CHARGEBACKS, landing, days, LOADED_AT)

    assert summary.malformed_rows > 0
    assert tx.rows_quarantined == summary.malformed_rows
    assert tx.rows_loaded == summary.transactions - sum(
        v for k, v in tx.quarantine_by_reason.items() if k != "duplicate_transaction_id")
    assert tx.rows_read == tx.rows_loaded + tx.rows_quarantined
    assert cb.rows_quarantined == 0 and cb.rows_loaded == summary.chargebacks_written
    assert customers.rows_quarantined == 0 and customers.rows_loaded == config.n_customers
    assert merchants.rows_quarantined == 0 and merchants.rows_loaded == config.n_merchants

    # Good rows keep their exact amount and microsecond timestamp through CSV and DuckDB.
    expected = {}
    for batch in simulate(config):
        t = batch.transactions
        expected.update(zip(t.column("transaction_id").to_pylist(),
                            zip(t.column("amount").to_pylist(), t.column("event_ts").to_pylist())))
    loaded = rows(con, "SELECT transaction_id, amount, event_ts FROM raw.transactions")
    assert len(loaded) == tx.rows_loaded
    assert any(ts.microsecond for _, _, ts in loaded)
    for tx_id, amount, ts in loaded:
        assert (float(amount), ts) == expected[tx_id]
