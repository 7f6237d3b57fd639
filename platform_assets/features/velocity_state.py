"""The per-customer velocity state and its merge: pure Python, no Feast, no stream (unit-tested alone).

A customer's state is what the feature view `customer_recent_transactions` stores (docs: /work/shared/18/spec.md):
the customer's events with `event_us >= newest_event_us - horizon` (the newest included), as four aligned
arrays sorted by (event_us, transaction_id). `merge(state, events)` is the one write rule, online and offline:
union by transaction_id (an id already held keeps its first values: a duplicate counts once), re-sort, trim to
the horizon of the newest. Because the trim only ever moves forward (the newest can only grow) the merge is
idempotent and order-free: `merge(merge(s, a), b) == merge(s, a + b) == merge(merge(s, b), a)` for any batches,
replays included, which is what makes a single-writer consumer that re-reads events after a crash exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from platform_assets.lib.transaction_rules import ValidTransaction

STATE_FIELDS = ("recent_transaction_ids", "recent_event_us", "recent_amount_cents", "recent_merchant_ids")
DEFAULT_HORIZON_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class CustomerState:
    customer_id: str
    transaction_ids: tuple[str, ...]
    event_us: tuple[int, ...]
    amount_cents: tuple[int, ...]
    merchant_ids: tuple[str, ...]

    @property
    def newest_us(self) -> int:
        return self.event_us[-1]

    def __len__(self) -> int:
        return len(self.transaction_ids)

    def as_row(self) -> dict:
        """The feature view's columns (lists, as Feast's Array types take them)."""
        return {"customer_id": self.customer_id,
                "recent_transaction_ids": list(self.transaction_ids), "recent_event_us": list(self.event_us),
                "recent_amount_cents": list(self.amount_cents), "recent_merchant_ids": list(self.merchant_ids)}

    @classmethod
    def from_values(cls, customer_id: str, values: Mapping[str, object]) -> CustomerState | None:
        """A state read back from the online store (None: no row, or an empty or inconsistent one)."""
        columns = [values.get(f) for f in STATE_FIELDS]
        if any(c is None for c in columns):
            return None
        ids, times, cents, merchants = (list(c) for c in columns)
        if not ids or not len(ids) == len(times) == len(cents) == len(merchants):
            return None
        return cls(customer_id, tuple(ids), tuple(int(t) for t in times), tuple(int(c) for c in cents),
                   tuple(merchants))


def merge(state: CustomerState | None, events: Iterable[ValidTransaction], customer_id: str,
          horizon_us: int = DEFAULT_HORIZON_US) -> CustomerState | None:
    """The state after `events` (all of `customer_id`): union by id, sorted by (event_us, id), trimmed to the
    `horizon_us` before the newest. None only when there is nothing at all."""
    held: dict[str, tuple[int, str, int, str]] = {}
    if state is not None:
        for i, tid in enumerate(state.transaction_ids):
            held[tid] = (state.event_us[i], tid, state.amount_cents[i], state.merchant_ids[i])
    for event in events:
        if event.customer_id != customer_id:
            raise ValueError(f"event {event.transaction_id} is of customer {event.customer_id}, not {customer_id}")
        held.setdefault(event.transaction_id, (event.event_us, event.transaction_id, event.amount_cents,
                                               event.merchant_id))
    if not held:
        return None
    rows = sorted(held.values())
    oldest_kept = rows[-1][0] - horizon_us
    rows = [r for r in rows if r[0] >= oldest_kept]
    return CustomerState(customer_id, tuple(r[1] for r in rows), tuple(r[0] for r in rows),
                         tuple(r[2] for r in rows), tuple(r[3] for r in rows))


def merge_batch(states: Mapping[str, CustomerState | None], events: Iterable[ValidTransaction],
                horizon_us: int = DEFAULT_HORIZON_US) -> dict[str, CustomerState]:
    """The new states of the customers `events` touch, from their current `states`; only those that changed."""
    by_customer: dict[str, list[ValidTransaction]] = {}
    for event in events:
        by_customer.setdefault(event.customer_id, []).append(event)
    changed = {}
    for customer_id, own in by_customer.items():
        before = states.get(customer_id)
        after = merge(before, own, customer_id, horizon_us)
        if after is not None and after != before:
            changed[customer_id] = after
    return changed
