"""Future-dated events never wipe a customer's online state, and the online horizon (24 h + MAX_FUTURE) keeps
every event any request within MAX_FUTURE of the newest needs."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from feature_repo.fraud_features import RECENT_HORIZON_SECONDS
from platform_assets.features.velocity_online import parse_events
from platform_assets.features.velocity_state import merge, merge_batch
from platform_assets.lib import velocity_consumer
from platform_assets.lib.transaction_rules import ValidTransaction
from platform_assets.lib.transaction_stream import Event
from platform_assets.lib.velocity_consumer import FUTURE_REFUSAL, MAX_FUTURE_SECONDS, ONLINE_HORIZON_US

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
NOW_US = (NOW - EPOCH) // timedelta(microseconds=1)
S = 1_000_000


def event(tid: str, at: datetime, sent_at: datetime | None = None) -> Event:
    fields = {"transaction_id": tid, "customer_id": "C1", "merchant_id": "M1", "amount": "10.00",
              "currency": "EUR", "channel": "online", "event_ts": at.isoformat()}
    if sent_at is not None:
        fields["sent_at"] = sent_at.isoformat()
    return Event(tid, fields, 0.0)


def test_the_ground_floor_horizon_is_the_feature_repos():
    assert velocity_consumer.RECENT_HORIZON_SECONDS == RECENT_HORIZON_SECONDS
    assert ONLINE_HORIZON_US == (RECENT_HORIZON_SECONDS + MAX_FUTURE_SECONDS) * S


def test_an_event_more_than_max_future_ahead_is_refused():
    refused = Counter()
    limit = NOW + timedelta(seconds=MAX_FUTURE_SECONDS)
    events = [event("T1", NOW - timedelta(hours=1)), event("AT", limit), event("OVER", limit + timedelta(microseconds=1)),
              event("YEAR", NOW + timedelta(days=365))]
    valid = parse_events(events, None, refused, NOW_US)
    assert [t.transaction_id for t in valid] == ["T1", "AT"]
    assert refused == Counter({FUTURE_REFUSAL: 2})


def test_a_year_ahead_event_leaves_the_state_whole():
    """The finding: a state holding T1 and an event dated a year ahead; before, the trim to the horizon of the
    newest dropped T1. Refused at parse time, the batch changes nothing."""
    refused = Counter()
    state = merge(None, parse_events([event("T1", NOW - timedelta(minutes=30))], None, refused, NOW_US), "C1")
    batch = parse_events([event("FUTURE", NOW + timedelta(days=365))], 35, refused, NOW_US)  # no sent_at: no day rule
    assert batch == [] and refused == Counter({FUTURE_REFUSAL: 1})
    assert merge_batch({"C1": state}, batch, ONLINE_HORIZON_US) == {}
    assert state.transaction_ids == ("T1",)


def test_scored_traffic_obeys_the_day_rule_against_its_served_time():
    refused = Counter()
    old = event("OLD", NOW - timedelta(days=40), sent_at=NOW)
    fine = event("OK", NOW - timedelta(days=2), sent_at=NOW)
    valid = parse_events([old, fine], 35, refused, NOW_US)
    assert [t.transaction_id for t in valid] == ["OK"]
    assert refused == Counter({"timestamp_outside_partition": 1})


def test_the_online_horizon_keeps_every_event_of_any_request_window_within_max_future():
    """For any state merged with the online horizon and any request instant t >= newest - MAX_FUTURE, the events
    the state holds in [t - 24 h, t) are exactly those of all events ever merged (the oracle)."""
    rng = random.Random(18)
    day = RECENT_HORIZON_SECONDS * S
    for _ in range(200):
        events = [ValidTransaction(f"T{i}", "C1", "M1", 100, "EUR", "online", NOW_US + rng.randint(-2 * day, 0))
                  for i in range(rng.randint(1, 30))]
        state = merge(None, events, "C1", ONLINE_HORIZON_US)
        newest = max(e.event_us for e in events)
        for t in (newest - MAX_FUTURE_SECONDS * S, newest - rng.randint(0, MAX_FUTURE_SECONDS * S), newest,
                  newest + 1, newest + rng.randint(0, day)):
            want = sorted(e.transaction_id for e in events if t - day <= e.event_us < t)
            got = sorted(tid for tid, us in zip(state.transaction_ids, state.event_us, strict=True)
                         if t - day <= us < t)
            assert got == want
    # the 24 h trim alone would not: an event 24 h + 1 min before the newest is needed at t = newest - 2 min
    events = [ValidTransaction("A", "C1", "M1", 100, "EUR", "online", NOW_US - day - 60 * S),
              ValidTransaction("B", "C1", "M1", 100, "EUR", "online", NOW_US)]
    assert merge(None, events, "C1").transaction_ids == ("B",)
    assert merge(None, events, "C1", ONLINE_HORIZON_US).transaction_ids == ("A", "B")
