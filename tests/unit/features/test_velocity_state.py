"""The velocity state's merge: union by id, sorted, trimmed to 24 h of the newest; idempotent and order-free."""

from __future__ import annotations

import itertools
import random

from platform_assets.features.velocity_state import DEFAULT_HORIZON_US, CustomerState, merge, merge_batch
from platform_assets.lib.transaction_rules import ValidTransaction

H = 3_600 * 1_000_000


def tx(tid: str, us: int, cents: int = 100, merchant: str = "M1", customer: str = "C1") -> ValidTransaction:
    return ValidTransaction(tid, customer, merchant, cents, "EUR", "online", us)


def oracle(events: list[ValidTransaction]) -> list[tuple]:
    first = {}
    for e in events:
        first.setdefault(e.transaction_id, e)
    newest = max(e.event_us for e in first.values())
    return sorted((e.event_us, e.transaction_id, e.amount_cents, e.merchant_id) for e in first.values()
                  if e.event_us >= newest - DEFAULT_HORIZON_US)


def rows(state: CustomerState) -> list[tuple]:
    return list(zip(state.event_us, state.transaction_ids, state.amount_cents, state.merchant_ids, strict=True))


def test_trim_keeps_exactly_24_hours_of_the_newest_and_ties_sort_by_id():
    events = [tx("b", 0), tx("a", 0), tx("c", DEFAULT_HORIZON_US), tx("d", 1), tx("e", DEFAULT_HORIZON_US + 1)]
    state = merge(None, events[:3], "C1")
    assert rows(state) == [(0, "a", 100, "M1"), (0, "b", 100, "M1"), (DEFAULT_HORIZON_US, "c", 100, "M1")]
    state = merge(state, events[3:], "C1")
    assert [r[1] for r in rows(state)] == ["d", "c", "e"]  # 0 is now more than 24 h before the newest


def test_replays_and_any_batching_give_the_same_state():
    rng = random.Random(18)
    events = [tx(f"t{i}", rng.randrange(0, 60 * H), rng.randrange(1, 10_000), f"M{rng.randrange(5)}")
              for i in range(300)]
    events += rng.sample(events, 40)  # duplicates (identical copies)
    expected = oracle(events)
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        state = None
        cuts = sorted(rng.sample(range(1, len(shuffled)), 8))
        for a, b in itertools.pairwise([0, *cuts, len(shuffled)]):
            state = merge(state, shuffled[a:b], "C1")
            state = merge(state, shuffled[a:b], "C1")  # a replay of the batch changes nothing
        assert rows(state) == expected


def test_a_duplicate_id_keeps_its_first_values():
    state = merge(None, [tx("t1", 10, 100)], "C1")
    assert rows(merge(state, [tx("t1", 20, 999)], "C1")) == [(10, "t1", 100, "M1")]


def test_merge_batch_returns_only_changed_states_and_reads_back():
    current = {"C1": merge(None, [tx("t1", 10)], "C1"), "C2": None}
    changed = merge_batch(current, [tx("t1", 10), tx("t2", 5, customer="C2")])
    assert list(changed) == ["C2"]
    back = CustomerState.from_values("C2", changed["C2"].as_row())
    assert back == changed["C2"]
    assert CustomerState.from_values("C3", {"recent_transaction_ids": None}) is None
