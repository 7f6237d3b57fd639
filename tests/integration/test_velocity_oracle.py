"""The velocity features of a fraud_detector_v3 training set, every row and every feature, against the oracle.

The world is small and built for this module: the simulator's five days (its own malformed lines included), then
by hand, on top of its landing files, bursts (a few dozen customers paying several times within minutes, so that
non-zero 10-minute windows are common) and edge-case customers of our own (ids `E...`, unknown to the simulator,
so their whole history is the lines written here): events exactly 10 min, 1 h and 24 h before a transaction and
one microsecond outside, transactions at the very same microsecond (one written in another time zone), repeated
and conflicting ids in a landing file and across days, quarantined lines of every kind, a customer idle for
24 h + 1 us and for 48 h, a first transaction, and eight merchants within an hour.

The platform loads it for real (ingestion and warehouse runs, `feast apply`), the training set is built by the
real builder (`build_training_set`, Feast's point-in-time join), and the oracle (`tests/velocity_oracle.py`)
recomputes every value from `raw.transactions`. The edge-case transactions also carry expected values written by
hand here, which the oracle and the training set must both give.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from platform_env import local_settings
from velocity_oracle import (
    COUNT_FEATURES,
    SUM_FEATURES,
    VELOCITY_FEATURES,
    WINDOWS_SECONDS,
    VelocityOracle,
    describe,
    exactly,
    mismatches,
    raw_events,
)

FEATURE_SERVICE = "fraud_detector_v3"
START = date(2026, 3, 1)
DAYS = 5
# The training set's entity window: day 1 (after one warm-up day) to day 3 (the last two days have no matured
# label); the holdout is day 2, so day 1 is train and day 2 holdout, and the edge cases sit on both.
WARMUP_DAYS, LABEL_MATURITY_DAYS, HOLDOUT_DAYS = 1, 1, 1
D0 = datetime(2026, 3, 1, tzinfo=UTC)
D1, D2, D3 = (D0 + timedelta(days=n) for n in (1, 2, 3))
US = timedelta(microseconds=1)
S = timedelta(seconds=1)


def ts(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Line:
    """One line of a transactions landing file, as text (so a line can be malformed on purpose)."""

    file_day: date
    transaction_id: str
    customer_id: str
    merchant_id: str
    amount: str
    event_ts: str
    channel: str = "online"
    currency: str = "EUR"

    def row(self, header: list[str]) -> list[str]:
        return [getattr(self, column) for column in header]


def line(tid: str, customer: str, merchant: str, cents: int, instant: datetime, file_day: date | None = None,
         **text) -> Line:
    fields = {"amount": f"{cents // 100}.{cents % 100:02d}", "event_ts": ts(instant), **text}
    return Line(file_day or instant.astimezone(UTC).date(), tid, customer, merchant, **fields)


@dataclass
class EdgeCase:
    """A probe transaction and its velocity features, worked out by hand (features not named are 0)."""

    what: str
    probe: str
    expected: dict[str, int | float]
    lines: list[Line] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # transaction id -> the reason raw.quarantine gives


def _all(prefix: str, windows: dict[str, tuple[int, int]]) -> dict[str, int | float]:
    """{window: (count, cents)} -> the count and sum features of `prefix` (sums in EUR)."""
    out = {}
    for window, (count, cents) in windows.items():
        out[f"{prefix}_txn_count_{window}"] = count
        out[f"{prefix}_amount_sum_{window}"] = cents / 100
    return out


def edge_cases() -> list[EdgeCase]:
    cases = []
    # 1. Boundaries: events exactly 24 h, 1 h and 10 min before t count; one microsecond earlier they fall out.
    t = D1 + timedelta(hours=12)
    c, m = "E0000001", "M00001"
    offsets = [(86_400 * S + US, 101), (86_400 * S, 202), (3_600 * S + US, 404), (3_600 * S, 808),
               (600 * S + US, 1616), (600 * S, 3232)]
    cases.append(EdgeCase(
        "events exactly W before t count, W + 1 us before do not", "P1",
        {**_all("cust", {"10m": (1, 3232), "1h": (3, 808 + 1616 + 3232), "24h": (5, 202 + 404 + 808 + 1616 + 3232)}),
         **_all("cm", {"10m": (1, 3232), "1h": (3, 808 + 1616 + 3232), "24h": (5, 202 + 404 + 808 + 1616 + 3232)}),
         "cust_distinct_merchants_1h": 1},
        [*(line(f"X1{i}", c, m, cents, t - off) for i, (off, cents) in enumerate(offsets)),
         line("P1", c, m, 6464, t)],
    ))
    # 2. The only earlier event is exactly 24 h before (the state row is exactly one TTL old): it counts.
    c, m = "E0000002", "M00002"
    cases.append(EdgeCase(
        "the only earlier event is exactly 24 h old", "P2",
        {"cust_txn_count_24h": 1, "cust_amount_sum_24h": 5.0, "cm_txn_count_24h": 1, "cm_amount_sum_24h": 5.0},
        [line("X20", c, m, 500, D1 + timedelta(hours=9)), line("P2", c, m, 600, D2 + timedelta(hours=9))],
    ))
    # 3. Idle for 24 h + 1 us: everything is 0 (not null).
    c, m = "E0000003", "M00003"
    cases.append(EdgeCase(
        "idle for 24 h and 1 us", "P3", {},
        [line("X30", c, m, 500, D1 + timedelta(hours=10)), line("P3", c, m, 600, D2 + timedelta(hours=10) + US)],
    ))
    # 4. Ties: two transactions at the very same microsecond (one written as +01:00) never see each other; the
    # event one microsecond before counts for both, the one a microsecond after for neither.
    t = D1 + timedelta(hours=14)
    c = "E0000004"
    tie_lines = [
        line("X40", c, "M00004", 300, t - US),
        line("P4a", c, "M00004", 400, t),
        line("P4b", c, "M00005", 500, t, event_ts=(t + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f+01:00")),
        line("X41", c, "M00004", 700, t + US),
    ]
    same = {**_all("cust", {w: (1, 300) for w in WINDOWS_SECONDS}), "cust_distinct_merchants_1h": 1}
    cases.append(EdgeCase("a transaction at the same microsecond does not count (same merchant)", "P4a",
                          {**same, **_all("cm", {w: (1, 300) for w in WINDOWS_SECONDS})}, tie_lines))
    cases.append(EdgeCase("a transaction at the same microsecond does not count (other merchant)", "P4b", same))
    cases.append(EdgeCase(
        "both tied transactions count one microsecond later", "X41",
        {**_all("cust", {w: (3, 1200) for w in WINDOWS_SECONDS}), "cust_distinct_merchants_1h": 2,
         **_all("cm", {w: (2, 700) for w in WINDOWS_SECONDS})},
    ))
    # 5. Repeated ids: an identical copy in the same file counts once; two copies that disagree are both refused;
    # a copy of an id in another day's file is refused (the first day's stays).
    t = D2 + timedelta(hours=8)
    c, m = "E0000005", "M00006"
    cases.append(EdgeCase(
        "repeated transaction ids count once, conflicting copies never", "P5",
        {**_all("cust", {"10m": (1, 1000), "1h": (1, 1000), "24h": (2, 1200)}),
         **_all("cm", {"10m": (1, 1000), "1h": (1, 1000), "24h": (2, 1200)}), "cust_distinct_merchants_1h": 1},
        [line("X50", c, m, 1000, t - 120 * S), line("X50", c, m, 1000, t - 120 * S),
         line("X51", c, m, 1100, t - 60 * S), line("X51", c, m, 1200, t - 60 * S),
         line("X52", c, m, 200, D1 + timedelta(hours=20)), line("X52", c, m, 200, t - 30 * S),
         line("P5", c, m, 100, t)],
        {"X50": "duplicate_transaction_id", "X51": "conflicting_transaction_id",
         "X52": "duplicate_transaction_id_across_days"},
    ))
    # 6. Quarantined lines of every kind a minute before t: none counts; the good one 30 s before does.
    t = D2 + timedelta(hours=12)
    c, m = "E0000006", "M00007"
    before = t - 60 * S
    bad = {
        "Q60": ({"amount": "-5.00"}, "invalid_amount"),
        "Q61": ({"amount": "0.00"}, "invalid_amount"),
        "Q62": ({"amount": "12.345"}, "amount_precision"),
        "Q63": ({"amount": "1e3"}, "invalid_amount"),
        "Q64": ({"event_ts": "not-a-timestamp"}, "invalid_timestamp"),
        "Q65": ({"event_ts": before.strftime("%Y-%m-%dT%H:%M:%S")}, "timestamp_without_zone"),
        "Q66": ({"channel": "atm"}, "unknown_channel"),
        "Q67": ({"currency": "eur"}, "invalid_currency"),
        "Q68": ({"merchant_id": "M99999"}, "unknown_merchant"),
        "Q69": ({"file_day": D1.date()}, "timestamp_outside_partition"),
    }
    quarantine_lines = []
    for tid, (changes, _) in bad.items():
        changed = line(tid, c, changes.pop("merchant_id", m), 900, before, file_day=changes.pop("file_day", None),
                       **changes)
        quarantine_lines.append(changed)
    cases.append(EdgeCase(
        "quarantined lines never count", "P6",
        {**_all("cust", {w: (1, 700) for w in WINDOWS_SECONDS}), **_all("cm", {w: (1, 700) for w in WINDOWS_SECONDS}),
         "cust_distinct_merchants_1h": 1},
        [*quarantine_lines, line("X60", c, m, 700, t - 30 * S), line("P6", c, m, 800, t)],
        {tid: reason for tid, (_, reason) in bad.items()},
    ))
    # 7. A customer's first transaction: all 0; a later one of theirs is not seen.
    c, m = "E0000007", "M00008"
    cases.append(EdgeCase("a first transaction", "P7", {},
                          [line("P7", c, m, 900, D2 + timedelta(hours=15)),
                           line("X70", c, m, 900, D2 + timedelta(hours=15, microseconds=1)),
                           line("X71", c, m, 900, D3 + timedelta(hours=1))]))
    # 8. Eight merchants within the hour (some more than once), a ninth 61 min 40 s before.
    t = D2 + timedelta(hours=20)
    c = "E0000008"
    visits = [(3700, "M00018", 100), (3000, "M00010", 200), (2900, "M00011", 300), (2500, "M00012", 400),
              (2000, "M00013", 500), (1500, "M00014", 600), (1000, "M00011", 700), (700, "M00015", 800),
              (500, "M00016", 900), (400, "M00010", 1000), (100, "M00017", 1100), (50, "M00011", 1200)]
    cases.append(EdgeCase(
        "many merchants within an hour: distinct count", "P8",
        {**_all("cust", {"10m": (4, 4200), "1h": (11, 7700), "24h": (12, 7800)}), "cust_distinct_merchants_1h": 8,
         **_all("cm", {"10m": (1, 1000), "1h": (2, 1200), "24h": (2, 1200)})},
        [*(line(f"X8{i:02d}", c, mm, cents, t - off * S) for i, (off, mm, cents) in enumerate(visits)),
         line("P8", c, "M00010", 1300, t)],
    ))
    # 9. Idle for two days: all 0.
    c, m = "E0000009", "M00009"
    cases.append(EdgeCase("idle for 48 h", "P9", {},
                          [line("X90", c, m, 500, D0 + timedelta(hours=6)), line("P9", c, m, 500, D2 + timedelta(hours=6))]))
    # 10. Amounts as the contract allows them: no decimals, one decimal, one cent.
    t = D1 + timedelta(hours=16)
    c, m = "E0000010", "M00019"
    cases.append(EdgeCase(
        "amounts written as 5, 5.5 and 0.01", "P10",
        {**_all("cust", {w: (3, 1051) for w in WINDOWS_SECONDS}), **_all("cm", {w: (3, 1051) for w in WINDOWS_SECONDS}),
         "cust_distinct_merchants_1h": 1},
        [line("X100", c, m, 0, t - 180 * S, amount="5"), line("X101", c, m, 0, t - 120 * S, amount="5.5"),
         line("X102", c, m, 0, t - 60 * S, amount="0.01"), line("P10", c, m, 100, t)],
    ))
    # 11. Windows across midnight (the training set's day chunks, the holdout cut), instants written with a
    # -05:00 offset and with one fractional digit.
    t = D2
    c, m = "E0000011", "M00020"
    late = D2 - timedelta(milliseconds=500)  # 23:59:59.5 on day 1
    cases.append(EdgeCase(
        "windows across midnight, other offsets and precisions", "P11",
        {**_all("cust", {"10m": (1, 300), "1h": (2, 500), "24h": (2, 500)}),
         **_all("cm", {"10m": (1, 300), "1h": (2, 500), "24h": (2, 500)}), "cust_distinct_merchants_1h": 1},
        [line("X110", c, m, 200, t - 1800 * S, event_ts=(t - 1800 * S - timedelta(hours=5)).strftime(
            "%Y-%m-%dT%H:%M:%S-05:00")),
         line("X111", c, m, 300, late, event_ts=(late - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-5]
              + "-05:00"),
         line("P11", c, m, 400, t)],
    ))
    # 12. An amount near the top of what the contract allows (10^14 EUR: DECIMAL(18, 2) * 100 overflowed in the
    # state mart and failed the whole warehouse run) loads, counts and sums to the cent.
    t = D1 + timedelta(hours=20)
    c, m = "E0000012", "M00021"
    cases.append(EdgeCase(
        "an amount of 10^14 EUR", "P12",
        {**_all("cust", {w: (1, 10**16) for w in WINDOWS_SECONDS}), **_all("cm", {w: (1, 10**16) for w in WINDOWS_SECONDS}),
         "cust_distinct_merchants_1h": 1},
        [line("X120", c, m, 10**16, t - 60 * S), line("P12", c, m, 100, t)],
    ))
    return cases


EDGE_CUSTOMERS = sorted({ln.customer_id for case in edge_cases() for ln in case.lines})


def bursts(seed: int = 18) -> list[Line]:
    """Each of 40 simulator customers pays 3 to 8 times within minutes once a day (days 0..3), at 1 to 3 of a few
    merchants: what makes 10-minute windows non-zero."""
    rng = np.random.default_rng(seed)
    lines = []
    for day in range(4):
        base = D0 + timedelta(days=day)
        for k in range(40):
            customer = f"C{k + 1:07d}"
            merchants = [f"M{int(x):05d}" for x in rng.choice(np.arange(1, 26), size=int(rng.integers(1, 4)))]
            instant = base + timedelta(seconds=int(rng.integers(0, 22 * 3600)), microseconds=int(rng.integers(0, 10**6)))
            for n in range(int(rng.integers(3, 9))):
                instant += timedelta(seconds=int(rng.integers(15, 200)), microseconds=int(rng.integers(0, 10**6)))
                lines.append(line(f"B{base:%Y%m%d}{k:03d}{n}", customer, str(rng.choice(merchants)),
                                  int(rng.integers(50, 40_000)), instant))
    return lines


def add_to_landing(landing_dir: Path, lines: list[Line]) -> None:
    """Append the lines to their day's transactions file, and the edge-case customers to the customers snapshot."""
    by_day: dict[date, list[Line]] = {}
    for ln in lines:
        by_day.setdefault(ln.file_day, []).append(ln)
    for day, day_lines in by_day.items():
        path = landing_dir / "transactions" / f"date={day.isoformat()}" / "transactions.csv"
        header = path.read_text().splitlines()[0].replace('"', "").split(",")
        with path.open("a", newline="") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(ln.row(header) for ln in day_lines)
    path = landing_dir / "customers" / "customers.csv"
    with path.open("a", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
            [c, "2025-01-01T00:00:00.000000Z", "DE", "credit", "1980"] for c in EDGE_CUSTOMERS)


@dataclass
class VelocityWorld:
    settings: object
    oracle: VelocityOracle
    quarantine: pd.DataFrame
    store: object
    defs: dg.Definitions
    instance: dg.DagsterInstance
    timings: dict[str, float]


def materialize(world: VelocityWorld, selection: dg.AssetSelection, **kwargs) -> dg.ExecuteInProcessResult:
    result = dg.materialize(list(world.defs.assets), selection=selection, instance=world.instance,
                            resources=world.defs.resources, **kwargs)
    assert result.success
    return result


@pytest.fixture(scope="module")
def velocity_world(tmp_path_factory) -> Iterator[VelocityWorld]:
    from platform_assets.definitions import build_definitions
    from platform_assets.lib import names
    from platform_assets.settings import load_settings
    from platform_assets.simulator import SimulationConfig, write_landing_zone

    timings = {}
    started = time.perf_counter()
    data_dir = tmp_path_factory.mktemp("velocity-world")
    with pytest.MonkeyPatch.context() as mp:
        settings = local_settings(mp, data_dir)
        # Frauds a little more common and reported the next day, so both splits have matured positives: the
        # scoring test trains a v3 model on this training set.
        config = SimulationConfig(start_date=START, days=DAYS, n_customers=120, n_merchants=25,
                                  transactions_per_day=300, malformed_rate=0.003, seed=18, fraud_rate=0.04,
                                  max_label_delay_days=1)
        write_landing_zone(config, settings.landing_dir)
        add_to_landing(settings.landing_dir, [*bursts(), *(ln for case in edge_cases() for ln in case.lines)])
        settings = load_settings()  # the partitions start on the first landed day
        timings["landing"] = time.perf_counter() - started
        (data_dir / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(data_dir / "dagster")) as instance:
            defs = build_definitions(settings)
            window = names.partition_range_tags(START.isoformat(), config.end_date.isoformat())

            def run(selection, **kwargs):
                t0 = time.perf_counter()
                result = dg.materialize(list(defs.assets), selection=selection, instance=instance,
                                        resources=defs.resources, **kwargs)
                assert result.success
                return time.perf_counter() - t0

            timings["ingestion"] = run(dg.AssetSelection.groups(names.INGESTION), tags=window)
            timings["warehouse"] = run(dg.AssetSelection.groups(names.WAREHOUSE).without_checks(), tags=window)
            timings["feast_apply"] = run(dg.AssetSelection.assets(names.FEAST_FEATURE_VIEWS))
            store = defs.resources["feast"].store()
            t0 = time.perf_counter()
            oracle = VelocityOracle(raw_events(settings.warehouse_path))
            timings["oracle"] = time.perf_counter() - t0
            import duckdb

            con = duckdb.connect(str(settings.warehouse_path), read_only=True)
            try:
                quarantine = con.execute(
                    "SELECT json_extract_string(record, '$.transaction_id') AS transaction_id, reason, partition_date "
                    "FROM raw.quarantine WHERE source = 'transactions'").df()
            finally:
                con.close()
            timings["world"] = time.perf_counter() - started
            yield VelocityWorld(settings, oracle, quarantine, store, defs, instance, timings)
            # the stages' seconds, for whoever runs the module with -s (no assertion: a busy machine)
            print("velocity world timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))


@pytest.fixture(scope="module")
def training_set(velocity_world) -> pd.DataFrame:
    """The fraud_detector_v3 training set, built by the real builder (Feast's point-in-time join) and saved as
    the newest snapshot (what the model asset trains on)."""
    from platform_assets.features.training_set_builder import build_training_set, save_snapshot

    t0 = time.perf_counter()
    settings = velocity_world.settings
    out_dir = settings.data_dir / "training_sets"
    built = build_training_set(velocity_world.store, settings.exports_dir, FEATURE_SERVICE, LABEL_MATURITY_DAYS,
                               WARMUP_DAYS, HOLDOUT_DAYS, out_dir)
    frame = pd.read_parquet(save_snapshot(built, out_dir).path)
    velocity_world.timings["training_set"] = time.perf_counter() - t0
    return frame


def test_every_velocity_feature_of_every_training_row_is_the_oracles(velocity_world, training_set):
    frame = training_set
    missing = [f for f in VELOCITY_FEATURES if f not in frame.columns]
    assert not missing, f"the {FEATURE_SERVICE} training set lacks {missing}"
    assert set(frame["split"]) == {"train", "holdout"}, frame["split"].value_counts().to_dict()
    nulls = {f: int(frame[f].isna().sum()) for f in VELOCITY_FEATURES if frame[f].isna().any()}
    assert not nulls, f"velocity features must be 0, never null, when no event is in the window: {nulls}"
    wrong = mismatches(frame, velocity_world.oracle)
    assert not wrong, "training set vs oracle over raw.transactions:\n" + describe(wrong)


def test_the_training_rows_are_the_raw_transactions_at_their_instants(velocity_world, training_set):
    """The join keeps every entity row at its own instant (to the microsecond): the oracle is asked about the
    right t."""
    frame, oracle = training_set, velocity_world.oracle
    got = pd.to_datetime(frame["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    instants = dict(zip(frame["transaction_id"], got.astype("int64"), strict=True))
    wrong = [(tid, us, oracle.events[tid].event_us) for tid, us in instants.items()
             if tid in oracle.events and us != oracle.events[tid].event_us]
    assert not wrong, f"(transaction, training-set instant us, raw instant us): {wrong[:10]}"
    assert frame["transaction_id"].is_unique
    window = [e for e in oracle.events.values() if D1 <= datetime.fromtimestamp(e.event_us / 1e6, UTC) < D3]
    assert len(frame) == len(window), f"{len(frame)} training rows for {len(window)} transactions of days 1-2"


@pytest.fixture(scope="module")
def scored_rows(velocity_world) -> pd.DataFrame:
    """What batch scoring (platform_assets/scoring/assets.py) joins for a v3 champion, every day of the world:
    the day's transactions (`transactions_between`) through the same point-in-time join (`join_features`), one
    join per day as the asset does. The model is left out: its inputs are what is checked."""
    from platform_assets.lib import training_sets as td

    t0 = time.perf_counter()
    settings, days = velocity_world.settings, []
    for n in range(DAYS):
        start = D0 + timedelta(days=n)
        rows = td.transactions_between(settings.exports_dir, start, start + timedelta(days=1))
        days.append(td.join_features(velocity_world.store, rows, FEATURE_SERVICE))
    velocity_world.timings["scoring_joins"] = time.perf_counter() - t0
    return pd.concat(days, ignore_index=True)


def test_batch_scoring_sees_the_oracles_values_for_every_transaction(velocity_world, scored_rows):
    """Every transaction of every day (the warm-up day, the first transactions and the unlabelled days too)."""
    assert len(scored_rows) == len(velocity_world.oracle.events), (
        f"scoring joined {len(scored_rows)} rows for {len(velocity_world.oracle.events)} raw transactions")
    wrong = mismatches(scored_rows, velocity_world.oracle)
    assert not wrong, "batch scoring's join vs oracle over raw.transactions:\n" + describe(wrong)


def test_batch_scoring_and_the_training_set_agree_row_for_row(training_set, scored_rows):
    """The same transaction gets the same velocity values in training and in batch scoring."""
    scored = scored_rows.set_index("transaction_id").loc[training_set["transaction_id"]]
    wrong = [(tid, f, a, b) for f in VELOCITY_FEATURES
             for tid, a, b in zip(training_set["transaction_id"], training_set[f], scored[f], strict=True)
             if not exactly(a, b)]
    assert not wrong, f"{len(wrong)} (transaction, feature, training set, scoring): {wrong[:10]}"


@pytest.fixture(scope="module")
def predictions(velocity_world, training_set) -> pd.DataFrame:
    """The real batch-scoring asset with a v3 champion: `fraud_model` trains on the v3 snapshot (the first model
    is champion), then `daily_predictions` scores every day of the world; its files hold the features it scored."""
    from platform_assets.lib import names
    from platform_assets.lib.predictions import day_path

    world, t0 = velocity_world, time.perf_counter()
    materialize(world, dg.AssetSelection.assets(names.FRAUD_MODEL))
    last = START + timedelta(days=DAYS - 1)
    materialize(world, dg.AssetSelection.assets(names.DAILY_PREDICTIONS),
                tags=names.partition_range_tags(START.isoformat(), last.isoformat()))
    days = [pd.read_parquet(day_path(world.settings.data_dir / "predictions", START + timedelta(days=n)))
            for n in range(DAYS)]
    world.timings["train_and_score"] = time.perf_counter() - t0
    return pd.concat(days, ignore_index=True)


@pytest.mark.slow
def test_the_scoring_asset_scores_a_v3_model_on_the_oracles_values(velocity_world, predictions):
    """`daily_predictions` itself (model and all): every transaction of every day was scored on the true values."""
    assert set(predictions["feature_service"]) == {FEATURE_SERVICE}, set(predictions["feature_service"])
    assert len(predictions) == len(velocity_world.oracle.events), (
        f"{len(predictions)} predictions for {len(velocity_world.oracle.events)} raw transactions")
    wrong = mismatches(predictions, velocity_world.oracle)
    assert not wrong, "daily_predictions vs oracle over raw.transactions:\n" + describe(wrong)


def test_the_world_has_bursts_so_non_zero_windows_are_common(training_set):
    """A test that passes on all-zeros proves nothing: most windows of this world are not empty."""
    frame = training_set
    share = {f: round(float((frame[f] > 0).mean()), 3) for f in VELOCITY_FEATURES}
    floors = {"cust_txn_count_10m": 0.3, "cm_txn_count_10m": 0.15, "cust_txn_count_1h": 0.4,
              "cust_txn_count_24h": 0.7, "cm_txn_count_24h": 0.4, "cust_amount_sum_10m": 0.3}
    low = {f: (share[f], floor) for f, floor in floors.items() if share[f] < floor}
    assert not low, f"share of rows with a non-zero value below its floor (share, floor): {low}; all: {share}"
    assert (frame["cust_distinct_merchants_1h"] >= 2).mean() > 0.1, share
    assert frame["cust_txn_count_10m"].max() >= 5, frame["cust_txn_count_10m"].describe()
    # ...and the oracle's own windows are not all equal (10 min < 1 h < 24 h somewhere).
    assert (frame["cust_txn_count_1h"] > frame["cust_txn_count_10m"]).any()
    assert (frame["cust_txn_count_24h"] > frame["cust_txn_count_1h"]).any()


@pytest.mark.parametrize("case", edge_cases(), ids=lambda c: c.probe)
def test_the_oracle_gives_the_hand_worked_values(velocity_world, case):
    """The oracle over raw.transactions agrees with each edge case worked out by hand (it is right, and the
    world holds what this module wrote)."""
    truth = velocity_world.oracle.of_transaction(case.probe)
    expected = {f: case.expected.get(f, 0) for f in VELOCITY_FEATURES}
    wrong = {f: (truth.eur(f), want) for f, want in expected.items() if truth.eur(f) != want}
    assert not wrong, f"{case.what}: the oracle disagrees with the hand-worked value (oracle, hand): {wrong}"


@pytest.mark.parametrize("case", edge_cases(), ids=lambda c: c.probe)
def test_the_training_set_gives_the_hand_worked_values(training_set, case):
    """Each edge case's probe row of the training set holds the value worked out by hand."""
    frame = training_set.set_index("transaction_id")
    assert case.probe in frame.index, f"{case.probe} ({case.what}) is not a training row"
    row = frame.loc[case.probe]
    expected = {f: case.expected.get(f, 0) for f in VELOCITY_FEATURES}
    got_wrong = {f: (row[f], want) for f, want in expected.items() if not exactly(row[f], want)}
    assert not got_wrong, f"{case.what} ({case.probe}, {row['split']}): (training set, expected): {got_wrong}"


def test_the_edge_cases_bad_lines_were_quarantined_not_loaded(velocity_world):
    """What the quarantine case relies on: each bad line is in raw.quarantine for its reason; a refused id is
    in raw.transactions only where one copy was good."""
    quarantine, events = velocity_world.quarantine, velocity_world.oracle.events
    for case in edge_cases():
        for tid, reason in case.quarantined.items():
            reasons = set(quarantine.loc[quarantine["transaction_id"] == tid, "reason"])
            assert reason in reasons, f"{tid} ({case.what}): quarantine reasons {reasons}, expected {reason}"
            if reason.startswith(("duplicate_",)):
                assert tid in events, f"{tid}: one copy should have loaded"
            else:
                assert tid not in events, f"{tid} was refused ({reason}) but is in raw.transactions"


def test_both_splits_have_edge_cases(training_set):
    frame = training_set.set_index("transaction_id")
    splits = {case.probe: frame.loc[case.probe, "split"] for case in edge_cases() if case.probe in frame.index}
    assert set(splits.values()) == {"train", "holdout"}, splits


def test_feature_types_and_windows_follow_the_spec(velocity_world):
    """The implementation's constants and the Feast schema say what the spec says (Int64 counts, Float64 sums)."""
    import sys

    from feast.types import Float64, Int64

    from platform_assets.settings import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT / "feature_repo"))
    try:
        import fraud_features
    finally:
        sys.path.pop(0)
    assert dict(fraud_features.VELOCITY_WINDOWS) == WINDOWS_SECONDS
    assert fraud_features.RECENT_HORIZON_SECONDS == WINDOWS_SECONDS["24h"]
    odfv = velocity_world.store.get_on_demand_feature_view("velocity_features")
    types = {f.name: f.dtype for f in odfv.features}
    assert set(types) == set(VELOCITY_FEATURES), sorted(types)
    wrong = {n: str(t) for n, t in types.items() if t != (Int64 if n in COUNT_FEATURES else Float64)}
    assert not wrong and all(n in COUNT_FEATURES or n in SUM_FEATURES for n in types), wrong


@pytest.mark.slow
def test_a_corrected_day_reloaded_alone_still_gives_the_oracles_values(velocity_world, training_set):
    """A corrected landing file for day 1 (one customer's burst withdrawn, a late transaction added before
    another's burst) is loaded and built for that day alone, as the daily automation does: the velocity features
    of the training set follow raw.transactions again, the changed rows included. Runs last: it changes the
    module's world."""
    from platform_assets.features.training_set_builder import build_training_set
    from platform_assets.lib import names

    world, settings, day = velocity_world, velocity_world.settings, D1.date()
    withdrawn = {ln.transaction_id for ln in bursts() if ln.file_day == day and ln.customer_id == "C0000004"}
    target = min((ln for ln in bursts() if ln.file_day == day and ln.customer_id == "C0000002"),
                 key=lambda ln: ln.event_ts)
    first = datetime.fromisoformat(target.event_ts)
    late = line("L1", "C0000002", "M00003", 4242, first - 90 * S)
    path = settings.landing_dir / "transactions" / f"date={day.isoformat()}" / "transactions.csv"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    kept = [r for r in rows if r[0] not in withdrawn]
    assert len(rows) - len(kept) == len(withdrawn) >= 3
    with path.open("w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([*kept, late.row(rows[0])])
    one_day = names.partition_range_tags(day.isoformat(), day.isoformat())
    materialize(world, dg.AssetSelection.groups(names.INGESTION), tags=one_day)
    materialize(world, dg.AssetSelection.groups(names.WAREHOUSE).without_checks(), tags=one_day)
    oracle = VelocityOracle(raw_events(settings.warehouse_path))
    assert "L1" in oracle.events and not withdrawn & set(oracle.events), "the corrected file was not loaded"
    built = build_training_set(world.store, settings.exports_dir, FEATURE_SERVICE, LABEL_MATURITY_DAYS,
                               WARMUP_DAYS, HOLDOUT_DAYS, settings.data_dir / "training_sets_reloaded")
    frame = built.read()
    wrong = mismatches(frame, oracle)
    assert not wrong, "training set after a one-day reload vs oracle:\n" + describe(wrong)
    # ...and the reload did change values (the comparison is not of two identical worlds)
    before = training_set.set_index("transaction_id")
    after = frame.set_index("transaction_id").loc[before.index.intersection(frame["transaction_id"])]
    changed = (after[VELOCITY_FEATURES] != before.loc[after.index, VELOCITY_FEATURES]).any(axis=1)
    assert changed.sum() >= 3, f"only {int(changed.sum())} rows changed after the reload"
