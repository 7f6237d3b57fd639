"""`velocity_features_from_state` (feature_repo/fraud_features.py) on hand-built states.

The state of a customer is the aligned arrays of its recent events (the spec: `recent_transaction_ids`,
`recent_event_us`, `recent_amount_cents`, `recent_merchant_ids`); the request gives the instant t
(`transaction_us`) and the merchant (`merchant_id`). An event counts iff t - W <= event_us < t. Checked here:
the boundaries, ties at t, events after t and older than 24 h in the state, no state at all (None, NaN, empty
arrays: zeros), sums exact in cents, a frame and a dict of columns giving the same values, the copy Feast stores
(builtins only) giving the same values, and many random states against the oracle of tests/velocity_oracle.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from platform_env import feature_repo_module
from velocity_oracle import COUNT_FEATURES, SUM_FEATURES, VELOCITY_FEATURES, Event, VelocityOracle

MIN = 60_000_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T = 1_772_452_800_000_000  # 2026-03-02T12:00:00Z in microseconds
STATE = ["recent_transaction_ids", "recent_event_us", "recent_amount_cents", "recent_merchant_ids"]


@pytest.fixture(scope="module")
def repo():
    return feature_repo_module("fraud_features_velocity_under_test")


@pytest.fixture(scope="module")
def udf(repo):
    return repo.velocity_features_from_state


def state(events: list[tuple[int, int, str]] | None, t: int = T, merchant: str = "M1", ids=None) -> dict:
    """One request row: events (event_us, cents, merchant) sorted by (event_us, id) as the spec stores them."""
    if events is None:
        return {**dict.fromkeys(STATE), "transaction_us": t, "merchant_id": merchant}
    ids = ids or [f"T{i:04d}" for i in range(len(events))]
    order = sorted(range(len(events)), key=lambda i: (events[i][0], ids[i]))
    return {"recent_transaction_ids": [ids[i] for i in order],
            "recent_event_us": [events[i][0] for i in order],
            "recent_amount_cents": [events[i][1] for i in order],
            "recent_merchant_ids": [events[i][2] for i in order],
            "transaction_us": t, "merchant_id": merchant}


def as_dict(rows: list[dict]) -> dict:
    return {column: [r[column] for r in rows] for column in [*STATE, "transaction_us", "merchant_id"]}


def as_frame(rows: list[dict], numpy_arrays: bool = False) -> pd.DataFrame:
    """What Feast hands the view offline: a frame, the arrays as lists (or numpy arrays, as pyarrow gives them)."""
    columns = as_dict(rows)
    if numpy_arrays:
        for c in STATE:
            columns[c] = [None if v is None else np.asarray(v) for v in columns[c]]
    frame = pd.DataFrame(columns)
    frame["transaction_us"] = frame["transaction_us"].astype("int64")
    return frame


def run(udf, rows: list[dict]) -> list[dict]:
    """The UDF on a frame of the rows, checked equal to the dict-of-columns and numpy-array forms, as rows."""
    out = udf(as_frame(rows))
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(range(len(rows)))
    missing = [f for f in VELOCITY_FEATURES if f not in out.columns]
    assert not missing, f"the UDF returned no {missing}"
    by_dict, by_numpy = udf(as_dict(rows)), udf(as_frame(rows, numpy_arrays=True))
    for name in VELOCITY_FEATURES:
        frame_values = out[name].to_numpy()
        assert np.array_equal(np.asarray(by_dict[name], dtype="float64"), frame_values.astype("float64")), (
            f"{name}: dict of columns {list(by_dict[name])} vs frame {list(frame_values)}")
        assert np.array_equal(by_numpy[name].to_numpy().astype("float64"), frame_values.astype("float64")), name
    return out.to_dict("records")


def expected(**nonzero) -> dict:
    return {f: nonzero.get(f, 0) for f in VELOCITY_FEATURES}


def assert_row(got: dict, want: dict, what: str) -> None:
    wrong = {f: (got[f], want[f]) for f in VELOCITY_FEATURES if float(got[f]) != float(want[f])}
    assert not wrong, f"{what}: (got, expected) {wrong}"


def test_window_boundaries(udf):
    """Exactly W before t counts, W + 1 us before does not, for each window."""
    events = [(T - DAY - 1, 101, "M1"), (T - DAY, 202, "M1"), (T - HOUR - 1, 404, "M1"), (T - HOUR, 808, "M1"),
              (T - 10 * MIN - 1, 1616, "M1"), (T - 10 * MIN, 3232, "M1")]
    [got] = run(udf, [state(events)])
    sums = {"10m": 3232, "1h": 808 + 1616 + 3232, "24h": 202 + 404 + 808 + 1616 + 3232}
    counts = {"10m": 1, "1h": 3, "24h": 5}
    want = expected(cust_distinct_merchants_1h=1, **{
        f"{p}_{k}_{w}": (counts[w] if k == "txn_count" else sums[w] / 100)
        for p in ("cust", "cm") for k in ("txn_count", "amount_sum") for w in counts})
    assert_row(got, want, "boundaries")


def test_ties_at_t_and_later_events_never_count(udf):
    """Events at t itself (the transaction, another at the same microsecond) and after t are not counted."""
    events = [(T - 1, 300, "M1"), (T, 400, "M1"), (T, 500, "M2"), (T + 1, 700, "M1"), (T + HOUR, 900, "M3")]
    for merchant, cm in (("M1", 1), ("M2", 0)):
        [got] = run(udf, [state(events, merchant=merchant)])
        want = expected(cust_distinct_merchants_1h=1,
                        **{f"cust_txn_count_{w}": 1 for w in ("10m", "1h", "24h")},
                        **{f"cust_amount_sum_{w}": 3.0 for w in ("10m", "1h", "24h")},
                        **{f"cm_txn_count_{w}": cm for w in ("10m", "1h", "24h")},
                        **{f"cm_amount_sum_{w}": 3.0 * cm for w in ("10m", "1h", "24h")})
        assert_row(got, want, f"ties at t, merchant {merchant}")


def test_a_state_older_than_t_is_windowed_from_t_not_from_its_newest_event(udf):
    """The join can hand an older state (the newest event hours before t): its windows end at t."""
    events = [(T - 30 * HOUR, 100, "M1"), (T - 20 * HOUR, 200, "M1"), (T - 2 * HOUR, 400, "M2")]
    [got] = run(udf, [state(events)])
    assert_row(got, expected(cust_txn_count_24h=2, cust_amount_sum_24h=6.0, cm_txn_count_24h=1,
                             cm_amount_sum_24h=2.0), "state hours before t")


@pytest.mark.parametrize("empty", ["none", "nan", "empty_lists"])
def test_no_state_gives_zeros_not_nulls(udf, empty):
    """No state row (a first transaction, or idle past the TTL) or an empty one: every feature is 0."""
    row = state(None)
    if empty == "nan":
        row.update(dict.fromkeys(STATE, float("nan")))
    elif empty == "empty_lists":
        row.update({c: [] for c in STATE})
    others = state([(T - MIN, 500, "M1")])
    frame_rows = run(udf, [row, others]) if empty != "nan" else None
    out = udf(as_frame([row, others]))
    for got in ([out.iloc[0].to_dict()] + ([frame_rows[0]] if frame_rows else [])):
        assert not any(pd.isna(got[f]) for f in VELOCITY_FEATURES), f"{empty}: nulls in {got}"
        assert_row(got, expected(), f"no state ({empty})")
    assert out.iloc[1]["cust_txn_count_10m"] == 1


def test_distinct_merchants_in_the_hour(udf):
    events = [(T - 3700 * 1_000_000, 100, "MZ"), *((T - s * 1_000_000, 100, m) for s, m in
              [(3000, "MA"), (2900, "MB"), (2500, "MC"), (2000, "MD"), (1500, "ME"), (1000, "MB"), (700, "MF"),
               (500, "MG"), (400, "MA"), (100, "MH"), (50, "MB")])]
    [got] = run(udf, [state(events, merchant="MA")])
    assert got["cust_distinct_merchants_1h"] == 8
    assert (got["cust_txn_count_1h"], got["cm_txn_count_1h"], got["cm_txn_count_10m"]) == (11, 2, 1)


def test_sums_are_exact_in_cents(udf):
    """10 + 20 cents is 0.3 (as 30 / 100), not 0.1 + 0.2; large sums keep every cent."""
    [small] = run(udf, [state([(T - MIN, 10, "M1"), (T - MIN + 1, 20, "M1")])])
    assert small["cust_amount_sum_10m"] == 30 / 100 == 0.3
    many = [(T - MIN - i, 1, "M1") for i in range(1000)] + [(T - 2 * MIN, 99_999_999_99, "M1")]
    [big] = run(udf, [state(many)])
    assert big["cust_amount_sum_10m"] == (1000 + 99_999_999_99) / 100


def test_output_types(udf):
    out = udf(as_frame([state([(T - MIN, 10, "M1")]), state(None)]))
    wrong = {f: str(out[f].dtype) for f in COUNT_FEATURES if not pd.api.types.is_integer_dtype(out[f])}
    wrong |= {f: str(out[f].dtype) for f in SUM_FEATURES if out[f].dtype != np.float64}
    assert not wrong, f"counts must be integers and sums float64: {wrong}"


def test_the_copy_feast_stores_gives_the_same_values(repo):
    """The view's UDF is a copy that sees only builtins (Feast stores it by value): same results."""
    stored = repo.velocity_features.feature_transformation.udf
    rows = [state([(T - MIN, 10, "M1"), (T - HOUR, 20, "M2")]), state(None)]
    a, b = stored(as_frame(rows)), repo.velocity_features_from_state(as_frame(rows))
    pd.testing.assert_frame_equal(a[VELOCITY_FEATURES], b[VELOCITY_FEATURES])


def test_random_states_against_the_oracle(udf):
    """Many random states (ties, merchants, all windows) and request instants: the UDF is the oracle."""
    rng = np.random.default_rng(18)
    rows, truths = [], []
    for k in range(300):
        n = int(rng.integers(0, 25))
        # instants on a coarse grid (ties and exact boundaries are common), within ~26 h before t and a bit after
        offsets = rng.choice([0, 1, 10 * MIN, HOUR, DAY, DAY + 1], size=n) * rng.integers(0, 2, n)
        offsets = offsets + rng.integers(-1, 53, n) * (30 * MIN) * (rng.random(n) < 0.7)
        instants = [int(T - o) for o in offsets]
        merchants = [f"M{int(m)}" for m in rng.integers(0, 4, n)]
        cents = [int(c) for c in rng.integers(1, 100_000, n)]
        ids = [f"R{k:03d}-{i:02d}" for i in range(n)]
        request_merchant = f"M{int(rng.integers(0, 4))}"
        rows.append(state(list(zip(instants, cents, merchants, strict=True)), merchant=request_merchant, ids=ids)
                    if n else state(None, merchant=request_merchant))
        oracle = VelocityOracle([Event(i, "C", m, us, c) for i, m, us, c in zip(ids, merchants, instants, cents,
                                                                                 strict=True)])
        truths.append(oracle.features("C", request_merchant, T))
    got = run(udf, rows)
    wrong = [(k, f, got[k][f], truths[k].eur(f)) for k in range(len(rows)) for f in VELOCITY_FEATURES
             if float(got[k][f]) != float(truths[k].eur(f))]
    assert not wrong, f"{len(wrong)} wrong (row, feature, got, oracle): {wrong[:10]}"


def test_sums_are_exact_up_to_2_53_cents(udf):
    """A window's sum is exact while it stays below 2**53 cents (~90 trillion EUR): float64 holds every such
    integer, and one division by 100 rounds it correctly."""
    cents = 2**53 - 1
    [got] = run(udf, [state([(T - MIN, cents - 100, "M1"), (T - MIN + 1, 100, "M1")])])
    assert got["cust_amount_sum_10m"] == cents / 100


@pytest.mark.xfail(strict=True, reason="sums go through float64 before the division: above 2**53 cents the EUR value "
                   "is rounded twice; the landing contract accepts amounts up to 15 integer digits "
                   "(/work/shared/18/notes-oracle.md, 05:16)")
def test_a_sum_above_2_53_cents_is_still_the_correctly_rounded_eur_value(udf):
    """An amount of 90,071,992,547,409.93 EUR passes the landing contract ([0-9]{1,15}, DECIMAL(18,2)); its sum
    in EUR should be the float64 nearest to 9007199254740993 / 100."""
    cents = 2**53 + 1
    [got] = run(udf, [state([(T - MIN, cents, "M1")])])
    assert got["cust_amount_sum_10m"] == cents / 100
