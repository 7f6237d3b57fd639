"""What each landing-zone source looks like and which rows of it are refused, and why.

One declaration per source drives the loader: column types, the id that must be unique within a file, and the
quarantine rules, each a SQL predicate over the all-text staged row that is true when the row is *bad*. The first
rule that matches names the reason. The rules are constants of this module, never user input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from platform_assets.lib import landing
from platform_assets.lib import transaction_rules as rules


@dataclass(frozen=True)
class Reference:
    """A value that must name a row already in another raw table (the policy: docs/data-contracts.md)."""

    column: str
    table: str
    reason: str
    # (our time column, the referenced row's time column, reason): ours may not be earlier than theirs.
    not_before: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class SourceSpec:
    name: str
    table: str
    columns: dict[str, str]
    id_column: str
    rules: tuple[tuple[str, str], ...]
    partitioned: bool
    partition_ts_column: str | None = None
    references: tuple[Reference, ...] = ()
    # Filled only by a source that knows its rows' history (the system of record), NULL for a file: when the
    # source last changed the row, and when it deleted it (the row stays, as a tombstone, for the rows naming it).
    history_columns: dict[str, str] = field(default_factory=dict)

    @property
    def path_glob(self) -> str:
        return landing.path_glob(self.name, self.partitioned)

    def landing_file(self, landing_dir: Path, day: date | None) -> Path:
        if not self.partitioned:
            return landing.snapshot_path(landing_dir, self.name)
        if day is None:
            raise ValueError(f"{self.name} is partitioned by day: a day is required")
        return landing.partition_path(landing_dir, self.name, day)


# The patterns are the ground floor's (lib/transaction_rules.py), so the online consumer checks the same ones.
ID_PATTERN, ZONED_TS, ZONELESS_TS = rules.ID_PATTERN, rules.ZONED_TS, rules.ZONELESS_TS
ZERO_DECIMAL_CURRENCIES = rules.ZERO_DECIMAL_CURRENCIES


def _missing(column: str) -> tuple[str, str]:
    return (f"missing_{column}", f"nullif(trim({column}), '') IS NULL")


def _bad_id(column: str) -> tuple[str, str]:
    return (f"invalid_{column}", f"NOT regexp_full_match({column}, '{ID_PATTERN}')")


def _ids(*columns: str) -> tuple[tuple[str, str], ...]:
    return tuple(rule for c in columns
                 for rule in (_missing(c), ("stray_quote", f"strpos({c}, '\"') > 0"), _bad_id(c)))


def _ts(column: str) -> tuple[tuple[str, str], ...]:
    return (
        ("timestamp_without_zone", f"regexp_full_match({column}, '{ZONELESS_TS}')"),
        ("invalid_timestamp",
         f"NOT regexp_full_match({column}, '{ZONED_TS}') OR try_cast({column} AS TIMESTAMPTZ) IS NULL"),
    )


def _in_day(column: str) -> tuple[str, str]:
    return ("timestamp_outside_partition", f"CAST(try_cast({column} AS TIMESTAMPTZ) AS DATE) <> $partition_date")


_ZERO_DECIMALS = ", ".join(f"'{c}'" for c in ZERO_DECIMAL_CURRENCIES)

CUSTOMERS = SourceSpec(
    name="customers",
    table="customers",
    columns={"customer_id": "VARCHAR", "created_at": "TIMESTAMPTZ", "country": "VARCHAR", "card_type": "VARCHAR",
             "birth_year": "INTEGER"},
    id_column="customer_id",
    history_columns={"updated_at": "TIMESTAMPTZ", "deleted_at": "TIMESTAMPTZ"},
    rules=(
        *_ids("customer_id"),
        *_ts("created_at"),
        ("invalid_country", "NOT regexp_full_match(country, '[A-Z]{2}')"),
        ("unknown_card_type", "card_type NOT IN ('credit', 'debit', 'prepaid')"),
        ("invalid_birth_year",
         "NOT regexp_full_match(birth_year, '(19|20)[0-9]{2}') OR try_cast(birth_year AS INTEGER) > 2030"),
    ),
    partitioned=False,
)
MERCHANTS = SourceSpec(
    name="merchants",
    table="merchants",
    columns={"merchant_id": "VARCHAR", "merchant_name": "VARCHAR", "category_code": "VARCHAR",
             "category": "VARCHAR", "country": "VARCHAR", "created_at": "TIMESTAMPTZ"},
    id_column="merchant_id",
    history_columns={"updated_at": "TIMESTAMPTZ", "deleted_at": "TIMESTAMPTZ"},
    rules=(
        *_ids("merchant_id"),
        ("missing_merchant_name", "nullif(trim(merchant_name), '') IS NULL"),
        ("invalid_category_code", "NOT regexp_full_match(category_code, '[0-9]{4}')"),
        ("invalid_country", "NOT regexp_full_match(country, '[A-Z]{2}')"),
        *_ts("created_at"),
    ),
    partitioned=False,
)
TRANSACTIONS = SourceSpec(
    name="transactions",
    table="transactions",
    columns={"transaction_id": "VARCHAR", "customer_id": "VARCHAR", "merchant_id": "VARCHAR",
             "amount": "DECIMAL(18,2)", "currency": "VARCHAR", "channel": "VARCHAR", "event_ts": "TIMESTAMPTZ"},
    id_column="transaction_id",
    rules=(
        *_ids("transaction_id", "customer_id", "merchant_id"),
        # Plain decimal notation only: no sign, exponent, thousands separator, NaN or infinity.
        ("invalid_amount",
         r"NOT regexp_full_match(amount, '[0-9]{1,15}(\.[0-9]+)?') OR regexp_full_match(amount, '0+(\.0+)?')"),
        ("invalid_currency", "NOT regexp_full_match(currency, '[A-Z]{3}')"),
        ("amount_precision", (r"length(regexp_extract(amount, '\.([0-9]+)$', 1)) > "
                              f"CASE WHEN currency IN ({_ZERO_DECIMALS}) THEN 0 ELSE 2 END")),
        ("unknown_channel", "channel NOT IN ('card_present', 'online')"),
        *_ts("event_ts"),
        _in_day("event_ts"),
    ),
    partitioned=True,
    partition_ts_column="event_ts",
    references=(
        Reference("customer_id", "customers", "unknown_customer"),
        Reference("merchant_id", "merchants", "unknown_merchant"),
    ),
)
CHARGEBACKS = SourceSpec(
    name="chargebacks",
    table="chargebacks",
    columns={"chargeback_id": "VARCHAR", "transaction_id": "VARCHAR", "reported_at": "TIMESTAMPTZ",
             "reason": "VARCHAR"},
    id_column="chargeback_id",
    rules=(
        *_ids("chargeback_id", "transaction_id"),
        *_ts("reported_at"),
        _in_day("reported_at"),
        ("unknown_reason", "reason NOT IN ('fraud', 'product_not_received', 'duplicate_processing')"),
    ),
    partitioned=True,
    partition_ts_column="reported_at",
    references=(
        Reference("transaction_id", "transactions", "unknown_transaction",
                  not_before=("reported_at", "event_ts", "reported_before_transaction")),
    ),
)
# Reasons that depend on other tables: a day that holds them is checked again on every load, unchanged or not.
REFERENCE_REASONS = frozenset(
    reason for spec in (TRANSACTIONS, CHARGEBACKS) for ref in spec.references
    for reason in (ref.reason, *(ref.not_before[2:] if ref.not_before else ()))
)
SOURCES = {s.name: s for s in (CUSTOMERS, MERCHANTS, TRANSACTIONS, CHARGEBACKS)}
