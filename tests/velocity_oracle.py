"""What every velocity feature means, recomputed from the raw events alone (never from dbt, Feast or the UDF).

The definition (issue 18, the shared contract): for a transaction of customer c at merchant m at instant t
(microseconds since the epoch, UTC) and a window W, an event e of c counts iff `t - W <= e.event_us < t`: the
transaction itself and anything at the very same microsecond never count, an event exactly W before t does.
Events are the clean transactions (`raw.transactions`: the loader already refused the quarantined lines and kept
one copy of a repeated id); counts are integers, sums are summed in integer cents and given in EUR; an empty
window is 0, never null. `cm_*` are the events of c at m.

Deliberately simple, so that it is obviously right and shares nothing with the implementation (no SQL window, no
numpy, no state arrays): per customer (and per customer-merchant pair) a list of event instants sorted once, two
`bisect_left` calls per window, and plain Python sums over the slice.

`python tests/velocity_oracle.py DATA_DIR` checks the newest training set of a platform's data dir (e.g. the one
`make demo` built, if it holds the velocity features) and prints the wrong values per feature.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

# The spec's windows, written here from the spec, not imported from the implementation (a test compares them).
WINDOWS_SECONDS = {"10m": 600, "1h": 3_600, "24h": 86_400}
CUSTOMER_FEATURES = [
    "cust_txn_count_10m", "cust_txn_count_1h", "cust_txn_count_24h",
    "cust_amount_sum_10m", "cust_amount_sum_1h", "cust_amount_sum_24h",
    "cust_distinct_merchants_1h",
]
PAIR_FEATURES = [
    "cm_txn_count_10m", "cm_txn_count_1h", "cm_txn_count_24h",
    "cm_amount_sum_10m", "cm_amount_sum_1h", "cm_amount_sum_24h",
]
VELOCITY_FEATURES = CUSTOMER_FEATURES + PAIR_FEATURES
COUNT_FEATURES = [f for f in VELOCITY_FEATURES if "_count_" in f or "_distinct_" in f]
SUM_FEATURES = [f for f in VELOCITY_FEATURES if "_sum_" in f]
MICROS = 1_000_000


@dataclass(frozen=True)
class Event:
    transaction_id: str
    customer_id: str
    merchant_id: str
    event_us: int
    amount_cents: int


def cents(amount) -> int:
    """Exact integer cents of a decimal amount (a DECIMAL(18,2), its text, or a Decimal); refuses sub-cents."""
    value = Decimal(str(amount)) * 100
    if value != value.to_integral_value():
        raise ValueError(f"amount {amount!r} is not a whole number of cents")
    return int(value)


def raw_events(warehouse: Path) -> list[Event]:
    """Every transaction of `raw.transactions`, as the platform loaded it. The amount is read as text and
    converted to cents in Python (no float on the way); the instant as integer microseconds since the epoch."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(
            "SELECT transaction_id, customer_id, merchant_id, epoch_us(event_ts), CAST(amount AS VARCHAR) "
            "FROM raw.transactions"
        ).fetchall()
    finally:
        con.close()
    return [Event(t, c, m, int(us), cents(a)) for t, c, m, us, a in rows]


@dataclass(frozen=True)
class Truth:
    """The velocity features of one transaction: counts and sums in integer cents, per window name."""

    values: dict[str, int]

    def eur(self, name: str) -> float:
        """The value as the platform gives it: counts as they are, sums in EUR (cents / 100)."""
        value = self.values[name]
        return value / 100 if name in SUM_FEATURES else value


class VelocityOracle:
    """The events of every customer, sorted by instant; `features(c, m, t)` by the definition."""

    def __init__(self, events: list[Event]):
        by_id: dict[str, Event] = {}
        for e in events:
            # Duplicates by transaction_id count once (the loader keeps one copy; this holds even if it did not).
            if e.transaction_id in by_id and by_id[e.transaction_id] != e:
                raise ValueError(f"two different events share transaction_id {e.transaction_id}")
            by_id[e.transaction_id] = e
        self.events = by_id
        self._customer: dict[str, list[Event]] = defaultdict(list)
        self._pair: dict[tuple[str, str], list[Event]] = defaultdict(list)
        for e in by_id.values():
            self._customer[e.customer_id].append(e)
            self._pair[(e.customer_id, e.merchant_id)].append(e)
        for lists in (self._customer, self._pair):
            for key in lists:
                lists[key].sort(key=lambda e: (e.event_us, e.transaction_id))
        self._instants = {k: [e.event_us for e in v] for k, v in self._customer.items()}
        self._pair_instants = {k: [e.event_us for e in v] for k, v in self._pair.items()}

    @staticmethod
    def _window(events: list[Event], instants: list[int], t_us: int, seconds: int) -> list[Event]:
        """The events e with t - W <= e.event_us < t."""
        lo = bisect_left(instants, t_us - seconds * MICROS)  # first event at or after t - W: counted
        hi = bisect_left(instants, t_us)  # first event at or after t: not counted, nor anything after
        return events[lo:hi]

    def features(self, customer_id: str, merchant_id: str, t_us: int) -> Truth:
        values: dict[str, int] = {}
        mine = self._customer.get(customer_id, [])
        pair = self._pair.get((customer_id, merchant_id), [])
        for name, seconds in WINDOWS_SECONDS.items():
            inside = self._window(mine, self._instants.get(customer_id, []), t_us, seconds)
            values[f"cust_txn_count_{name}"] = len(inside)
            values[f"cust_amount_sum_{name}"] = sum(e.amount_cents for e in inside)
            if name == "1h":
                values["cust_distinct_merchants_1h"] = len({e.merchant_id for e in inside})
            at_m = self._window(pair, self._pair_instants.get((customer_id, merchant_id), []), t_us, seconds)
            values[f"cm_txn_count_{name}"] = len(at_m)
            values[f"cm_amount_sum_{name}"] = sum(e.amount_cents for e in at_m)
        return Truth(values)

    def of_transaction(self, transaction_id: str) -> Truth:
        e = self.events[transaction_id]
        return self.features(e.customer_id, e.merchant_id, e.event_us)


def exactly(got, want: float) -> bool:
    """The spec promises exact values: counts as integers, sums as cents / 100 (the same float64)."""
    if got is None or (isinstance(got, float) and math.isnan(got)):
        return False
    return float(got) == float(want)


def mismatches(frame, oracle: VelocityOracle, features: list[str] = VELOCITY_FEATURES) -> list[dict]:
    """Every (row, feature) of `frame` (one row per transaction, with transaction_id, customer_id, merchant_id
    and the features) whose value is not the truth, with what the row is and both values."""
    wrong = []
    rows = frame[["transaction_id", "customer_id", "merchant_id", *features]].to_dict("records")
    for row in rows:
        event = oracle.events.get(row["transaction_id"])
        if event is None:
            wrong.append({"transaction_id": row["transaction_id"], "feature": "*",
                          "problem": "not a transaction of raw.transactions"})
            continue
        if (row["customer_id"], row["merchant_id"]) != (event.customer_id, event.merchant_id):
            wrong.append({"transaction_id": row["transaction_id"], "feature": "*",
                          "problem": f"keys {row['customer_id']}/{row['merchant_id']} but raw has "
                                     f"{event.customer_id}/{event.merchant_id}"})
            continue
        truth = oracle.of_transaction(row["transaction_id"])
        for name in features:
            if not exactly(row[name], truth.eur(name)):
                wrong.append({"transaction_id": row["transaction_id"], "customer_id": event.customer_id,
                              "merchant_id": event.merchant_id, "event_us": event.event_us, "feature": name,
                              "expected": truth.eur(name), "got": row[name]})
    return wrong


def describe(wrong: list[dict], limit: int = 15) -> str:
    by_feature: dict[str, int] = defaultdict(int)
    for w in wrong:
        by_feature[w["feature"]] += 1
    lines = [f"{len(wrong)} wrong values; per feature: {dict(sorted(by_feature.items()))}"]
    lines += [json.dumps(w, default=str) for w in wrong[:limit]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from platform_assets.lib.training_sets import TrainingSetManifest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    manifest = TrainingSetManifest.read(args.data_dir / "training_sets" / "latest.json")
    frame = pd.read_parquet(manifest.path)
    features = [f for f in VELOCITY_FEATURES if f in frame.columns]
    if not features:
        print(f"{manifest.path} ({manifest.feature_service}) holds no velocity feature")
        return 1
    oracle = VelocityOracle(raw_events(args.data_dir / "warehouse" / "warehouse.duckdb"))
    wrong = mismatches(frame, oracle, features)
    print(f"{len(frame):,} rows, {len(features)} velocity features")
    print(describe(wrong, limit=25))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
