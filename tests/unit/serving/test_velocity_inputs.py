"""What the scoring service hands the velocity state: the request's instant to the microsecond, the amount as the
plain decimal text the landing contract reads."""

from datetime import UTC, datetime, timedelta, timezone

from platform_assets.lib.transaction_rules import check_transaction
from platform_assets.serving.features import transaction_us
from platform_assets.serving.log import amount_text


def test_transaction_us_is_exact_whatever_the_offset():
    t = datetime(2026, 3, 1, 11, 0, 0, 123457, tzinfo=timezone(timedelta(hours=1)))
    assert transaction_us(t) == 1_772_359_200_123_457
    far = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)  # beyond float64's microsecond precision
    assert transaction_us(far) == 4_102_444_799_999_999


def test_amounts_become_text_the_contract_accepts_with_the_same_cents():
    for amount, text in ((42.5, "42.50"), (0.01, "0.01"), (19.99, "19.99"), (1_000_000.0, "1000000.00"), (3, "3.00")):
        assert amount_text(amount) == text
        checked = check_transaction({"transaction_id": "T", "customer_id": "C", "merchant_id": "M", "amount": text,
                                     "currency": "EUR", "channel": "online", "event_ts": "2026-03-01T00:00:00Z"})
        assert checked.amount_cents == round(amount * 100)


def test_zero_decimal_currencies_are_written_without_decimals():
    """JPY has no minor unit: "1500.00" would be refused as amount_precision by the consumer (and the landing
    contract); "1500" is accepted with the same cents. A fraction in such a currency stays and is refused the
    same way both ways."""
    row = {"transaction_id": "T", "customer_id": "C", "merchant_id": "M", "channel": "online",
           "event_ts": "2026-03-01T00:00:00Z"}
    for currency in ("JPY", "KRW", "CLP"):
        assert amount_text(1500.0, currency) == "1500"
        checked = check_transaction({**row, "amount": amount_text(1500.0, currency), "currency": currency})
        assert checked.amount_cents == 150_000
        assert check_transaction({**row, "amount": amount_text(1500.5, currency), "currency": currency}) == (
            "amount_precision")
    assert amount_text(1500.0, "EUR") == "1500.00"
    assert amount_text(1500.0, "USD") == "1500.00"
