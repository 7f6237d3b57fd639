"""The only text spliced into SQL: identifiers and partition keys."""

from datetime import date

import pytest

from platform_assets.lib.identifiers import partition_date, sql_identifier


@pytest.mark.parametrize("name", ["raw", "transactions", "_loaded_at", "A1", "fct_customer_daily_features",
                                  "x" * 63])
def test_valid_identifiers_are_returned_unchanged(name):
    assert sql_identifier(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "1table", "a-b", "a b", "a.b", "a;drop table raw.transactions", "t'--", 'a"b', "x" * 64, "naïve",
     "raw\n", "\traw", "tbl)"],
)
def test_invalid_identifiers_are_refused(name):
    with pytest.raises(ValueError, match="not a valid SQL identifier"):
        sql_identifier(name)


def test_allowlist_is_enforced_after_the_pattern():
    allowed = frozenset({"fct_transactions", "fct_transaction_labels"})
    assert sql_identifier("fct_transactions", allowed) == "fct_transactions"
    with pytest.raises(ValueError, match="is not one of"):
        sql_identifier("dim_customers", allowed)
    with pytest.raises(ValueError, match="not a valid SQL identifier"):
        sql_identifier("fct_transactions;", allowed | {"fct_transactions;"})
    with pytest.raises(ValueError):
        sql_identifier("anything", set())


@pytest.mark.parametrize(
    ("key", "expected"), [("2026-01-01", date(2026, 1, 1)), ("2024-02-29", date(2024, 2, 29))]
)
def test_partition_keys_parse_to_dates(key, expected):
    assert partition_date(key) == expected


@pytest.mark.parametrize(
    "key",
    ["2026-1-1", "2026-01-01'; drop table raw.transactions; --", "2026-01-01 ", " 2026-01-01", "2026-01-01\n",
     "20260101", "2026/01/01", "2026-02-30", "2025-02-29", "2026-13-01", "", "2026-01-01T00:00:00",
     "٢٠٢٦-٠١-٠١", "２０２６-01-01"],
)
def test_malformed_partition_keys_are_refused(key):
    with pytest.raises(ValueError):
        partition_date(key)
