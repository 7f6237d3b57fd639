"""The landing contract's value rules for one transaction, in plain Python (no DuckDB, no Dagster).

The loader applies the rules as SQL predicates over the staged all-text rows (`ingestion/sources.py`, which takes
its patterns from here); the online velocity consumer (`features/velocity_online.py`) refuses exactly the same
records one at a time, as they arrive, by the same patterns and in the same order, so the first rule that
matches names the same reason both ways (tests/unit/lib/test_transaction_rules.py runs both on the same rows).
Rules that need other tables (unknown customer or merchant, a duplicate id) are not value rules: the caller
knows its own history (the consumer dedupes by transaction_id).

`check_transaction(fields)` returns either a `ValidTransaction` (the exact values the warehouse would hold: the
amount in cents, the instant in microseconds since the epoch, UTC) or the refusal reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
# ISO 8601 with a zone, at most microseconds; hour 24 and second 60 are refused (DuckDB would roll them over).
ZONED_TS = (r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
            r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)")
ZONELESS_TS = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
# ISO 4217 currencies without minor units; every other accepted currency has two (DECIMAL(18,2) holds no more).
ZERO_DECIMAL_CURRENCIES = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND",
                           "VUV", "XAF", "XOF", "XPF")
AMOUNT_PATTERN = r"[0-9]{1,15}(\.[0-9]+)?"
ZERO_AMOUNT_PATTERN = r"0+(\.0+)?"
CURRENCY_PATTERN = "[A-Z]{3}"
CHANNELS = ("card_present", "online")
ID_COLUMNS = ("transaction_id", "customer_id", "merchant_id")

_ID = re.compile(ID_PATTERN)
_ZONED = re.compile(ZONED_TS)
_ZONELESS = re.compile(ZONELESS_TS)
_AMOUNT = re.compile(AMOUNT_PATTERN)
_ZERO = re.compile(ZERO_AMOUNT_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class ValidTransaction:
    transaction_id: str
    customer_id: str
    merchant_id: str
    amount_cents: int
    currency: str
    channel: str
    event_us: int


def _text(value: object) -> str:
    return "" if value is None else str(value)


def instant_us(instant: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (integer arithmetic, no float)."""
    return (instant - _EPOCH) // _ONE_US


def parse_instant_us(text: str) -> int | None:
    """Microseconds since the epoch of a zoned ISO timestamp the contract accepts, else None."""
    if not _ZONED.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:  # a day that does not exist (DuckDB's try_cast gives NULL)
        return None
    if parsed.tzinfo is None:
        return None
    return instant_us(parsed)


def amount_cents(text: str) -> int:
    """An accepted amount (plain decimal, at most 2 decimals) as integer cents, exactly."""
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


def check_transaction(fields: Mapping[str, object], sent_at: str | None = None,
                      lookback_days: int | None = None) -> ValidTransaction | str:
    """The record as the warehouse would hold it, or the reason the landing contract refuses it (the first rule
    that matches, in the contract's order). With `sent_at` and `lookback_days` (a stream event), an event_ts
    whose day is after sent_at's day or more than `lookback_days` before it is refused as the stream loader does
    (`timestamp_outside_partition`: lib/transaction_stream.event_days sends it to the day it was sent)."""
    values = {k: _text(fields.get(k)) for k in (*ID_COLUMNS, "amount", "currency", "channel", "event_ts")}
    for column in ID_COLUMNS:
        value = values[column]
        if not value.strip(" "):  # DuckDB trim() removes spaces only
            return f"missing_{column}"
        if '"' in value:
            return "stray_quote"
        if not _ID.fullmatch(value):
            return f"invalid_{column}"
    amount, currency = values["amount"], values["currency"]
    if not _AMOUNT.fullmatch(amount) or _ZERO.fullmatch(amount):
        return "invalid_amount"
    if not _CURRENCY.fullmatch(currency):
        return "invalid_currency"
    decimals = len(amount.partition(".")[2])
    if decimals > (0 if currency in ZERO_DECIMAL_CURRENCIES else 2):
        return "amount_precision"
    if values["channel"] not in CHANNELS:
        return "unknown_channel"
    ts = values["event_ts"]
    if _ZONELESS.fullmatch(ts):
        return "timestamp_without_zone"
    event_us = parse_instant_us(ts)
    if event_us is None:
        return "invalid_timestamp"
    if sent_at is not None and lookback_days is not None:
        sent_us = parse_instant_us(sent_at) if isinstance(sent_at, str) else None
        if sent_us is not None:
            sent_day = _day(sent_us)
            if not sent_day - timedelta(days=lookback_days) <= _day(event_us) <= sent_day:
                return "timestamp_outside_partition"
    return ValidTransaction(values["transaction_id"], values["customer_id"], values["merchant_id"],
                            amount_cents(amount), currency, values["channel"], event_us)


def _day(us: int) -> date:
    return (_EPOCH + timedelta(microseconds=us)).date()
