"""What each landing-zone source looks like and which rows of it are refused, and why.

One declaration per source drives the loader: column types, the id that must be unique within a file, and the
quarantine rules, each a SQL predicate over the all-text staged row that is true when the row is *bad*. The first
rule that matches names the reason. The rules are constants of this module, never user input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from platform_assets.lib import landing


@dataclass(frozen=True)
class SourceSpec:
    name: str
    table: str
    columns: dict[str, str]
    id_column: str
    rules: tuple[tuple[str, str], ...]
    partitioned: bool
    partition_ts_column: str | None = None

    @property
    def path_glob(self) -> str:
        return landing.path_glob(self.name, self.partitioned)

    def landing_file(self, landing_dir: Path, day: date | None) -> Path:
        if not self.partitioned:
            return landing.snapshot_path(landing_dir, self.name)
        if day is None:
            raise ValueError(f"{self.name} is partitioned by day: a day is required")
        return landing.partition_path(landing_dir, self.name, day)


def _missing(column: str) -> tuple[str, str]:
    return (f"missing_{column}", f"nullif(trim({column}), '') IS NULL")


def _bad_ts(column: str) -> tuple[str, str]:
    return ("invalid_timestamp", f"try_cast({column} AS TIMESTAMPTZ) IS NULL")


CUSTOMERS = SourceSpec(
    name="customers",
    table="customers",
    columns={"customer_id": "VARCHAR", "created_at": "TIMESTAMPTZ", "country": "VARCHAR", "card_type": "VARCHAR",
             "birth_year": "INTEGER"},
    id_column="customer_id",
    rules=(
        _missing("customer_id"),
        _bad_ts("created_at"),
        ("unknown_card_type", "card_type NOT IN ('credit', 'debit', 'prepaid') OR card_type IS NULL"),
        ("invalid_birth_year", "coalesce(NOT (try_cast(birth_year AS INTEGER) BETWEEN 1900 AND 2030), true)"),
    ),
    partitioned=False,
)
MERCHANTS = SourceSpec(
    name="merchants",
    table="merchants",
    columns={"merchant_id": "VARCHAR", "merchant_name": "VARCHAR", "category_code": "VARCHAR",
             "category": "VARCHAR", "country": "VARCHAR", "created_at": "TIMESTAMPTZ"},
    id_column="merchant_id",
    rules=(
        _missing("merchant_id"),
        ("invalid_category_code", "NOT coalesce(regexp_full_match(category_code, '[0-9]{4}'), false)"),
        _bad_ts("created_at"),
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
        _missing("transaction_id"),
        _missing("customer_id"),
        _missing("merchant_id"),
        ("invalid_amount", "coalesce(try_cast(amount AS DECIMAL(18,2)) <= 0, true)"),
        ("invalid_currency", "NOT coalesce(regexp_full_match(currency, '[A-Z]{3}'), false)"),
        ("unknown_channel", "channel NOT IN ('card_present', 'online') OR channel IS NULL"),
        _bad_ts("event_ts"),
        ("timestamp_outside_partition", "CAST(try_cast(event_ts AS TIMESTAMPTZ) AS DATE) <> $partition_date"),
    ),
    partitioned=True,
    partition_ts_column="event_ts",
)
CHARGEBACKS = SourceSpec(
    name="chargebacks",
    table="chargebacks",
    columns={"chargeback_id": "VARCHAR", "transaction_id": "VARCHAR", "reported_at": "TIMESTAMPTZ",
             "reason": "VARCHAR"},
    id_column="chargeback_id",
    rules=(
        _missing("chargeback_id"),
        _missing("transaction_id"),
        _bad_ts("reported_at"),
        ("timestamp_outside_partition", "CAST(try_cast(reported_at AS TIMESTAMPTZ) AS DATE) <> $partition_date"),
        ("unknown_reason",
         "reason NOT IN ('fraud', 'product_not_received', 'duplicate_processing') OR reason IS NULL"),
    ),
    partitioned=True,
    partition_ts_column="reported_at",
)
SOURCES = {s.name: s for s in (CUSTOMERS, MERCHANTS, TRANSACTIONS, CHARGEBACKS)}
