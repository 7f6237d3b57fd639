"""The Python value rules refuse exactly what the loader's SQL rules refuse, with the same first reason."""

from __future__ import annotations

import duckdb
import pytest

from platform_assets.ingestion.sources import TRANSACTIONS
from platform_assets.lib.transaction_rules import ValidTransaction, amount_cents, check_transaction

GOOD = {"transaction_id": "T1", "customer_id": "C1", "merchant_id": "M1", "amount": "12.30", "currency": "EUR",
        "channel": "online", "event_ts": "2026-03-01T10:00:00.123456+00:00"}
VARIANTS = [
    {}, {"transaction_id": ""}, {"transaction_id": "  "}, {"customer_id": ""}, {"merchant_id": "M\"1"},
    {"transaction_id": "T.1"}, {"customer_id": "-C1"}, {"merchant_id": "M" * 65}, {"transaction_id": "T\t1"},
    {"amount": ""}, {"amount": "n/a"}, {"amount": "-12.00"}, {"amount": "0"}, {"amount": "0.00"},
    {"amount": "1e3"}, {"amount": "1,000.00"}, {"amount": "12.345"}, {"amount": "12.3"}, {"amount": "12"},
    {"amount": "12.", "currency": "EUR"}, {"amount": "1200", "currency": "JPY"}, {"amount": "12.5", "currency": "JPY"},
    {"amount": "NaN"}, {"amount": "inf"}, {"currency": "eur"}, {"currency": ""}, {"channel": "atm"}, {"channel": ""},
    {"event_ts": "not-a-timestamp"}, {"event_ts": "2026-03-01"}, {"event_ts": "2026-03-01T10:00:00"},
    {"event_ts": "2026-03-01 10:00:00.5"}, {"event_ts": "2026-03-01T24:00:00Z"}, {"event_ts": "2026-03-01T10:00:60Z"},
    {"event_ts": "2026-02-30T10:00:00Z"}, {"event_ts": "2026-03-01T10:00:00.1234567Z"},
    {"event_ts": "2026-03-01T10:00:00+01"}, {"event_ts": "2026-03-01T10:00:00+0130"},
    {"event_ts": "2026-03-01 10:00:00Z"}, {"event_ts": "2026-03-01T10:00:00.5-05:00"}, {"event_ts": ""},
    {"amount": "", "customer_id": ""},
]
ROWS = [{**GOOD, **v} for v in VARIANTS]


def sql_reasons(rows: list[dict]) -> list[str | None]:
    rules = [(r, p) for r, p in TRANSACTIONS.rules if r != "timestamp_outside_partition"]
    cases = " ".join(f"WHEN {predicate} THEN '{reason}'" for reason, predicate in rules)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = list(GOOD)
    con.execute(f"CREATE TABLE staged (i INTEGER, {', '.join(f'{c} VARCHAR' for c in columns)})")
    con.executemany(f"INSERT INTO staged VALUES (?, {', '.join('?' * len(columns))})",
                    [(i, *(r[c] for c in columns)) for i, r in enumerate(rows)])
    return [r[0] for r in con.execute(f"SELECT CASE {cases} END FROM staged ORDER BY i").fetchall()]


def test_python_rules_name_the_same_reason_as_the_loaders_sql():
    python = [None if isinstance(c, ValidTransaction) else c for c in map(check_transaction, ROWS)]
    assert python == sql_reasons(ROWS)
    assert python.count(None) >= 8  # the corpus holds accepted rows too


def test_accepted_values_are_exact():
    checked = check_transaction(GOOD)
    assert checked == ValidTransaction("T1", "C1", "M1", 1230, "EUR", "online", 1772359200123456)
    late = check_transaction({**GOOD, "event_ts": "2026-03-01T11:00:00.5+01:00"})
    assert late.event_us == 1772359200500000
    assert amount_cents("7") == 700 and amount_cents("7.5") == 750 and amount_cents("0.01") == 1


@pytest.mark.parametrize(("event_ts", "reason"), [
    ("1999-12-31T23:59:59Z", "timestamp_outside_partition"),  # the simulator's broken timestamp
    ("2026-03-02T00:00:00Z", "timestamp_outside_partition"),  # a day after it was sent
    ("2026-01-25T00:00:00Z", None),  # 35 days before: still its own day
    ("2026-01-24T23:59:59Z", "timestamp_outside_partition"),
])
def test_a_stream_event_outside_the_lookback_is_refused_as_the_stream_loader_does(event_ts, reason):
    checked = check_transaction({**GOOD, "event_ts": event_ts}, "2026-03-01T23:00:00Z", 35)
    assert (None if isinstance(checked, ValidTransaction) else checked) == reason
