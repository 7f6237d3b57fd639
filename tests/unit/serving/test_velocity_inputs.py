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


def test_a_locked_scored_stream_never_stalls_the_prediction_log(tmp_path):
    """The embedded scored stream lives in its own SQLite file, and its append waits at most
    SCORED_STREAM_BUSY_SECONDS for another writer's lock: the file record is written at once, the stream batch
    is dropped and counted, and the next batch goes through once the lock is gone."""
    import sqlite3
    import time

    from platform_assets.lib.transaction_stream import open_stream
    from platform_assets.serving.app import SCORED_STREAM_BUSY_SECONDS
    from platform_assets.serving.log import PredictionLog, served_at
    from platform_assets.settings import load_settings

    settings = load_settings({"PLATFORM_DATA_DIR": str(tmp_path)})
    assert settings.scored_stream_log_path != settings.stream_log_path
    assert settings.scored_stream_maxlen == 1_000_000
    path = settings.scored_stream_log_path
    open_stream("embedded", "scored", log_path=path).close()  # the schema

    def opener():
        return open_stream("embedded", "scored", log_path=path, busy_timeout_seconds=SCORED_STREAM_BUSY_SECONDS)

    record = {"transaction_id": "T1", "customer_id": "C1", "merchant_id": "M1", "amount": 1500.0, "currency": "JPY",
              "channel": "online", "event_ts": "2026-03-01T00:00:00+00:00", "served_at": served_at(), "score": 0.1}
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    log = PredictionLog(tmp_path / "log", scored_stream=opener)
    started = time.perf_counter()
    log._write([record])
    assert time.perf_counter() - started < 2.0  # not the 30 s default
    assert log.written == 1 and log.stream_dropped == 1 and log.streamed == 0
    holder.execute("ROLLBACK")
    holder.close()
    log._write([{**record, "transaction_id": "T2"}])
    assert log.streamed == 1
    log.close()
    stream = open_stream("embedded", "scored", log_path=path)
    events = stream.peek(None, 10)
    stream.close()
    assert [e.fields["transaction_id"] for e in events] == ["T2"] and events[0].fields["amount"] == "1500"
