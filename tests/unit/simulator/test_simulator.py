"""The source-system simulator: determinism, realism and the drift scenarios, on small seeded worlds."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from platform_assets.simulator import SimulationConfig, build_world, simulate, write_landing_zone
from platform_assets.simulator.generator import MAX_LABEL_DELAY_DAYS, NEW_CATEGORIES
from platform_assets.simulator.landing import _as_text, partition_path, snapshot_path

START = date(2026, 3, 2)  # a Monday
DAY = timedelta(days=1)


def small(**overrides) -> SimulationConfig:
    params = {"start_date": START, "days": 10, "n_customers": 300, "n_merchants": 60, "transactions_per_day": 300,
              "malformed_rate": 0.01, "seed": 11}
    params.update(overrides)
    return SimulationConfig(**params)


def landing_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_text_csv(path: Path) -> pa.Table:
    """A landing file exactly as written: every column as text, empty fields as empty strings."""
    names = pacsv.read_csv(path).column_names
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))


def hours(table: pa.Table) -> np.ndarray:
    return np.asarray(pc.hour(table.column("event_ts")).to_numpy(zero_copy_only=False))


def amounts(table: pa.Table) -> np.ndarray:
    return table.column("amount").to_numpy()


# --- determinism ------------------------------------------------------------------------------------------------


def test_same_seed_writes_byte_identical_landing_zones(tmp_path):
    config = small()
    a = write_landing_zone(config, tmp_path / "a")
    b = write_landing_zone(config, tmp_path / "b")
    files_a, files_b = landing_files(tmp_path / "a"), landing_files(tmp_path / "b")

    assert a == b
    assert files_a == files_b
    # Both snapshots, and one transactions and one chargebacks file per day.
    assert len(files_a) == 2 + 2 * config.days
    assert not [name for name in files_a if name.endswith(".tmp")]


def test_another_seed_gives_other_transactions(tmp_path):
    write_landing_zone(small(days=2), tmp_path / "a")
    write_landing_zone(small(days=2, seed=12), tmp_path / "b")
    path = Path("transactions") / f"date={START.isoformat()}" / "transactions.csv"
    assert (tmp_path / "a" / path).read_bytes() != (tmp_path / "b" / path).read_bytes()


def test_first_days_do_not_depend_on_the_total_length(tmp_path):
    short = write_landing_zone(small(days=10), tmp_path / "short")
    write_landing_zone(small(days=20), tmp_path / "long")

    for i in range(short.days):
        day = START + i * DAY
        short_file = partition_path(tmp_path / "short", "transactions", day).read_bytes()
        long_file = partition_path(tmp_path / "long", "transactions", day).read_bytes()
        assert short_file == long_file, f"transactions of {day} differ between a 10- and a 20-day run"
    assert partition_path(tmp_path / "long", "transactions", START + 19 * DAY).exists()
    assert not partition_path(tmp_path / "short", "transactions", START + 10 * DAY).exists()


def test_clean_rewrite_removes_days_of_a_previous_longer_run(tmp_path):
    write_landing_zone(small(days=5), tmp_path)
    write_landing_zone(small(days=3), tmp_path)
    days = sorted(p.parent.name for p in (tmp_path / "transactions").glob("date=*/transactions.csv"))
    assert days == [f"date={(START + i * DAY).isoformat()}" for i in range(3)]


# --- realism ----------------------------------------------------------------------------------------------------


def test_fraud_rate_is_realistic_on_a_realistic_world():
    config = SimulationConfig(start_date=START, days=14, malformed_rate=0.0)  # 2,000 customers, 2,500 tx/day
    batches = list(simulate(config))
    n = sum(b.transactions.num_rows for b in batches)
    fraud = sum(int(b.is_fraud.sum()) for b in batches)

    assert 25_000 < n < 45_000
    assert 0.005 <= fraud / n <= 0.02
    for b in batches:
        assert len(b.is_fraud) == b.transactions.num_rows
        ts = b.transactions.column("event_ts")
        # Every transaction happens on its own UTC day, in time order, with a unique id.
        assert pc.all(pc.equal(pc.cast(ts, pa.date32()), pa.scalar(b.day, pa.date32()))).as_py()
        assert ts.to_pylist() == sorted(ts.to_pylist())
        ids = b.transactions.column("transaction_id")
        assert pc.count_distinct(ids).as_py() == ids.length()
        assert pc.min(b.transactions.column("amount")).as_py() >= 0.5


def test_every_transaction_references_a_known_customer_and_merchant():
    config = small(days=3)
    world = build_world(config)
    customers = set(world.customers.column("customer_id").to_pylist())
    merchants = set(world.merchants.column("merchant_id").to_pylist())
    for b in simulate(config):
        assert set(b.transactions.column("customer_id").to_pylist()) <= customers
        assert set(b.transactions.column("merchant_id").to_pylist()) <= merchants
        assert set(b.transactions.column("channel").to_pylist()) <= {"online", "card_present"}
        assert set(b.transactions.column("currency").to_pylist()) == {"EUR"}


# --- scenarios --------------------------------------------------------------------------------------------------


def test_amount_inflation_multiplies_amounts_from_the_start_day_only():
    start_day = 10
    base = list(simulate(small(days=20, scenario="none", scenario_start_day=start_day)))
    inflated = list(simulate(small(days=20, scenario="amount_inflation", scenario_start_day=start_day)))

    for i, (b, f) in enumerate(zip(base, inflated)):
        if i < start_day:
            assert f.transactions.equals(b.transactions), f"day {i} changed before the scenario started"
        else:
            assert f.transactions.column("transaction_id").equals(b.transactions.column("transaction_id"))
            a0, a1 = amounts(b.transactions), amounts(f.transactions)
            unfloored = a0 > 0.5
            # Rounding to cents on both sides: |1.6 * round(x) - round(1.6 x)| <= 1.6 * 0.005 + 0.005.
            np.testing.assert_allclose(a1[unfloored], 1.6 * a0[unfloored], atol=0.0131)

    def median(batches, days):
        return float(np.median(np.concatenate([amounts(batches[i].transactions) for i in days])))

    before, after = range(start_day), range(start_day, 20)
    assert 0.9 < median(base, after) / median(base, before) < 1.1
    assert 1.45 < median(inflated, after) / median(inflated, before) < 1.75


def test_new_merchant_mix_adds_merchants_used_only_from_the_start_day():
    start_day = 6
    config = small(days=12, scenario="new_merchant_mix", scenario_start_day=start_day)
    world = build_world(config)
    merchant_ids = np.array(world.merchants.column("merchant_id").to_pylist())
    new_ids = set(merchant_ids[world.merchant_is_new])
    new_codes = {str(c.code) for c in NEW_CATEGORIES}

    assert len(new_ids) == max(2, config.n_merchants // 6)
    assert world.merchants.num_rows == config.n_merchants + len(new_ids)
    new_rows = world.merchants.filter(pa.array(world.merchant_is_new))
    assert set(new_rows.column("category_code").to_pylist()) <= new_codes
    # New merchants exist (created) no later than the day they start trading.
    scenario_start = datetime.combine(START + start_day * DAY, datetime.min.time(), UTC)
    assert max(new_rows.column("created_at").to_pylist()) <= scenario_start
    assert sorted(new_ids) == sorted(merchant_ids[config.n_merchants:])  # appended after the established ones

    for i, b in enumerate(simulate(config)):
        used = np.isin(np.array(b.transactions.column("merchant_id").to_pylist()), list(new_ids))
        if i < start_day:
            assert not used.any(), f"a new merchant traded on day {i}, before the scenario started"
        else:
            assert 0.25 < used.mean() < 0.5, f"new merchants took {used.mean():.0%} of day {i}"


def test_scenario_none_builds_no_new_merchants():
    world = build_world(small())
    assert not world.merchant_is_new.any()
    assert world.merchants.num_rows == 60


def test_fraud_pattern_shift_moves_fraud_to_daytime():
    start_day = 10
    config = small(days=20, transactions_per_day=1_000, fraud_rate=0.03, scenario="fraud_pattern_shift",
                   scenario_start_day=start_day)
    batches = list(simulate(config))

    def fraud_rows(days):
        return pa.concat_tables([batches[i].transactions.filter(pa.array(batches[i].is_fraud)) for i in days])

    before, after = fraud_rows(range(start_day)), fraud_rows(range(start_day, 20))
    assert before.num_rows > 100 and after.num_rows > 100
    daytime_before = np.isin(hours(before), range(8, 20)).mean()
    daytime_after = np.isin(hours(after), range(8, 20)).mean()
    assert daytime_before < 0.4
    assert daytime_after > 0.65
    # Small-ticket and mostly card-present after the shift.
    assert np.median(amounts(after)) < np.median(amounts(before)) / 2
    online = lambda t: np.mean(np.array(t.column("channel").to_pylist()) == "online")
    assert online(after) < 0.5 < online(before)


# --- labels -----------------------------------------------------------------------------------------------------


def _delays(config: SimulationConfig) -> np.ndarray:
    delays = []
    for b in simulate(config):
        ts = dict(zip(b.transactions.column("transaction_id").to_pylist(),
                      b.transactions.column("event_ts").to_pylist()))
        fraud = dict(zip(b.transactions.column("transaction_id").to_pylist(), b.is_fraud.tolist()))
        for tx, reported, reason in zip(b.chargebacks.column("transaction_id").to_pylist(),
                                        b.chargebacks.column("reported_at").to_pylist(),
                                        b.chargebacks.column("reason").to_pylist()):
            assert (reason == "fraud") == fraud[tx], f"{tx}: reason {reason} but is_fraud={fraud[tx]}"
            delays.append((reported - ts[tx]) / DAY)
    return np.array(delays)


DELAY_CONFIG = {"days": 30, "n_customers": 2_000, "n_merchants": 300, "transactions_per_day": 2_000,
                "fraud_rate": 0.03, "seed": 7}


def test_chargebacks_arrive_at_least_a_day_later_and_label_fraud():
    delays = _delays(small(**DELAY_CONFIG))
    assert len(delays) > 1_000
    assert delays.min() >= 1.0
    # The jitter of +-6 h around a whole number of days is the only slack beyond the nominal maximum.
    assert delays.max() < MAX_LABEL_DELAY_DAYS + 0.25
    assert 4 < np.median(delays) < 8


def test_chargeback_delay_never_exceeds_the_documented_maximum():
    delays = _delays(small(**DELAY_CONFIG))
    assert delays.max() <= MAX_LABEL_DELAY_DAYS


def test_landing_zone_files_chargebacks_by_report_day_and_holds_back_future_reports(tmp_path):
    config = small(days=20, fraud_rate=0.03)
    summary = write_landing_zone(config, tmp_path)
    total = sum(b.chargebacks.num_rows for b in simulate(config))

    rows = 0
    for i in range(config.days):
        day = START + i * DAY
        table = pacsv.read_csv(partition_path(tmp_path, "chargebacks", day),
                               convert_options=pacsv.ConvertOptions(
                                   column_types={"reported_at": pa.timestamp("us", tz="UTC")}))
        assert table.column_names == ["chargeback_id", "transaction_id", "reported_at", "reason"]
        reported_days = set(pc.cast(table.column("reported_at"), pa.date32()).to_pylist())
        assert reported_days <= {day}, f"file of {day} holds chargebacks reported on {reported_days - {day}}"
        rows += table.num_rows
    assert sorted(p.parent.name for p in (tmp_path / "chargebacks").glob("date=*/chargebacks.csv")) == [
        f"date={(START + i * DAY).isoformat()}" for i in range(config.days)
    ]
    assert rows == summary.chargebacks_written
    assert summary.chargebacks_not_yet_reported > 0
    assert summary.chargebacks_written + summary.chargebacks_not_yet_reported == total


# --- malformed rows ---------------------------------------------------------------------------------------------


def test_malformed_rows_are_injected_at_about_the_configured_rate(tmp_path):
    config = small(days=10, transactions_per_day=500, malformed_rate=0.02)
    summary = write_landing_zone(config, tmp_path)

    broken = 0
    for b in simulate(config):
        clean = _as_text(b.transactions)
        written = read_text_csv(partition_path(tmp_path, "transactions", b.day))
        assert written.column_names == clean.column_names
        head = written.slice(0, clean.num_rows)
        changed = sum(
            any(head.column(c)[i] != clean.column(c)[i] for c in clean.column_names) for i in range(clean.num_rows)
        )
        appended = written.num_rows - clean.num_rows  # repeated ids are appended copies
        assert set(written.slice(clean.num_rows).column("transaction_id").to_pylist()) <= set(
            clean.column("transaction_id").to_pylist())
        broken += changed + appended

    expected = config.malformed_rate * summary.transactions
    assert broken == summary.malformed_rows
    assert abs(summary.malformed_rows - expected) < 4 * np.sqrt(expected), (summary.malformed_rows, expected)


def test_zero_malformed_rate_writes_clean_files(tmp_path):
    summary = write_landing_zone(small(days=2, malformed_rate=0.0), tmp_path)
    assert summary.malformed_rows == 0
    for b in simulate(small(days=2, malformed_rate=0.0)):
        written = read_text_csv(partition_path(tmp_path, "transactions", b.day))
        assert written.equals(_as_text(b.transactions))
    assert snapshot_path(tmp_path, "customers").is_file() and snapshot_path(tmp_path, "merchants").is_file()


def test_timestamps_keep_microseconds_in_the_landing_files(tmp_path):
    write_landing_zone(small(days=1, malformed_rate=0.0), tmp_path)
    first = read_text_csv(partition_path(tmp_path, "transactions", START)).column("event_ts")[0].as_py()
    # e.g. 2026-03-02T00:04:11.123456Z: ISO 8601, UTC suffix, six fractional digits.
    assert first.startswith(START.isoformat() + "T") and first.endswith("Z")
    assert len(first.split(".")[1]) == len("123456Z")


# --- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"days": 0},
        {"n_customers": 0},
        {"n_merchants": -1},
        {"transactions_per_day": 0},
        {"fraud_rate": 0.5},
        {"fraud_rate": -0.01},
        {"malformed_rate": 0.5},
        {"malformed_rate": -0.1},
        {"scenario": "meteor_strike"},
        {"idle_tails": (0,)},
        {"idle_tails": (10,), "days": 10},
    ],
)
def test_invalid_config_raises_value_error(overrides):
    with pytest.raises(ValueError):
        small(**overrides)


def test_scenario_start_defaults_to_two_thirds_in():
    assert small(days=90).effective_start_day == 60
    assert small(days=90, scenario_start_day=5).effective_start_day == 5
    assert small(days=90).end_date == START + 89 * DAY


def test_idle_tails_silence_one_busy_customer_each_for_exactly_the_last_n_days():
    config = small(days=12, idle_tails=(1, 4))
    batches = list(simulate(config))
    world = build_world(config)
    quiet = world.customers.column("customer_id").to_pylist()
    active_days = {q: [b.day for b in batches if quiet[q] in b.transactions.column("customer_id").to_pylist()]
                   for q in world.idle_tail_customers}
    for n, q in zip((1, 4), world.idle_tail_customers, strict=True):
        assert max(active_days[q]) == config.end_date - timedelta(days=n), (n, active_days[q])
    # the day's volume is unchanged: somebody else made those purchases
    plain = list(simulate(small(days=12)))
    assert [b.transactions.num_rows for b in batches] == [b.transactions.num_rows for b in plain]


# --- card-testing bursts (issue 18) -----------------------------------------------------------------------------

# sha256 over the landing zone of `small()` (file names and bytes), computed with the generator as it was before
# the burst knob existed (commit 0e52ac6): a world without bursts must stay byte-identical, since tests and
# benchmarks everywhere compare against figures measured on these worlds.
PRE_BURST_LANDING_DIGEST = "a0fc3daa92d2b2f83c2b2b75672b2c66edbe5623efebb340653fd0a725e143e6"


def landing_digest(root: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, data in landing_files(root).items():
        digest.update(name.encode())
        digest.update(data)
    return digest.hexdigest()


@pytest.mark.parametrize("overrides", [{}, {"card_testing_bursts_per_day": 0.0}])
def test_a_world_without_bursts_is_byte_identical_to_the_one_before_the_knob(tmp_path, overrides):
    write_landing_zone(small(**overrides), tmp_path)
    assert landing_digest(tmp_path) == PRE_BURST_LANDING_DIGEST


def _rows(table: pa.Table) -> set[tuple]:
    t = table.to_pydict()
    return set(zip(t["customer_id"], t["merchant_id"], t["event_ts"], t["amount"], t["channel"], strict=True))


def test_bursts_are_added_on_top_of_the_same_day_and_are_all_fraud():
    base = list(simulate(small(days=6)))
    bursty = list(simulate(small(days=6, card_testing_bursts_per_day=3.0)))
    added_total = 0
    for plain, burst in zip(base, bursty, strict=True):
        plain_rows, burst_rows = _rows(plain.transactions), _rows(burst.transactions)
        assert plain_rows <= burst_rows  # every other transaction of the day is drawn as without bursts
        added = burst_rows - plain_rows
        added_total += len(added)
        t = burst.transactions.to_pydict()
        fraud = {r for r, f in zip(zip(t["customer_id"], t["merchant_id"], t["event_ts"], t["amount"], t["channel"],
                                       strict=True), burst.is_fraud, strict=True) if f}
        assert added <= fraud
        assert all(channel == "online" for *_, channel in added)
        assert int(burst.is_fraud.sum()) == int(plain.is_fraud.sum()) + len(added)
    # 3 bursts a day for 6 days, 5..14 rows each
    assert 5 * 6 <= added_total <= 14 * 3 * 6 * 2


def test_a_burst_is_small_probes_seconds_apart_then_large_purchases_minutes_later():
    config = small(days=8, card_testing_bursts_per_day=2.0)
    plain = {b.day: _rows(b.transactions) for b in simulate(small(days=8))}
    bursts = 0
    for batch in simulate(config):
        added = sorted(_rows(batch.transactions) - plain[batch.day], key=lambda r: (r[0], r[2]))
        by_victim: dict[str, list[tuple]] = {}
        for row in added:
            by_victim.setdefault(row[0], []).append(row)
        for rows in by_victim.values():
            # a victim twice on one day is rare; judge single bursts only
            amounts_ = [r[3] for r in rows]
            probes = [r for r in rows if r[3] < 10]
            if len(probes) < 4 or len(rows) - len(probes) > 3:
                continue
            bursts += 1
            n = len(probes)
            assert rows[:n] == probes, "every probe comes before the large purchases"
            assert all(0.01 <= a < 10 for a in amounts_[:n])
            assert 1 <= len(rows) - n <= 3 and all(a >= 30 for a in amounts_[n:])
            gaps = [(b[2] - a[2]).total_seconds() for a, b in itertools.pairwise(probes)]
            assert all(4 <= g <= 62 for g in gaps), gaps
            assert len({r[1] for r in probes}) <= 3
            cash_in = (rows[n][2] - probes[-1][2]).total_seconds()
            assert 60 <= cash_in <= 15 * 60 + 1
            assert (rows[-1][2] - rows[0][2]).total_seconds() < 3600
    assert bursts >= 8


def test_burst_transactions_are_charged_back_like_other_fraud():
    config = small(days=20, transactions_per_day=100, card_testing_bursts_per_day=4.0, malformed_rate=0.0)
    plain = {b.day: _rows(b.transactions) for b in simulate(small(days=20, transactions_per_day=100))}
    burst_ids, charged = set(), set()
    for batch in simulate(config):
        t = batch.transactions.to_pydict()
        keys = zip(t["customer_id"], t["merchant_id"], t["event_ts"], t["amount"], t["channel"], strict=True)
        added = _rows(batch.transactions) - plain[batch.day]
        burst_ids |= {tid for tid, key in zip(t["transaction_id"], keys, strict=True) if key in added}
        cb = batch.chargebacks.to_pydict()
        charged |= {tid for tid, reason in zip(cb["transaction_id"], cb["reason"], strict=True) if reason == "fraud"}
    share = len(burst_ids & charged) / len(burst_ids)
    assert len(burst_ids) > 300
    assert 0.87 <= share <= 0.97  # 92% of fraud is reported


def test_negative_burst_rate_is_refused():
    with pytest.raises(ValueError):
        small(card_testing_bursts_per_day=-1.0)
