"""A seeded simulator of a card issuer's source systems: customers, merchants, transactions, chargebacks.

Realism is the point: every later measurement (drift detection delay, PR AUC, benchmark throughput) runs on this
data. So amounts are log-normal and skewed by category and by customer, volume follows the week and the hour of
the day, fraud comes in bursts on risky merchants at night with high amounts, and its label (a chargeback) arrives
1-21 days later or never. Each day is drawn from its own seed (`SeedSequence([seed, day])`), so the first N days
are identical whatever the total length: a test on 30 days sees the start of the 90-day demo.

Card-testing / account-takeover bursts (`card_testing_bursts_per_day`, default 0: off) are what velocity
features over the last minutes catch and daily features cannot: a fraudster with a victim's card first checks it
works with several small online probes (a few cents to a few EUR, 5-60 seconds apart, at one to three online
merchants, mostly direct marketing and digital-goods-like shops that accept any card), then, 1-15 minutes after
the last probe, cashes in with one to three large online purchases at risky merchants (electronics, money
transfer, gambling), minutes apart. Every row of a burst is fraud and is charged back like any other fraud (92%,
days later). The number of bursts of a day is Poisson with that mean; they start at fraud's hours. Bursts are
drawn from their own stream (`SeedSequence([seed, day, BURST_STREAM])`) and added on top of the day: with the
default 0 nothing is drawn from it, so every world without bursts is byte-identical to what it was before the knob
existed, and with bursts every other transaction of the day is the same as without (only ids, which follow the
time order, and the chargeback draws shift).

Everything is vectorised with numpy: the same code writes 10M+ transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from platform_assets.simulator.scenarios import get_scenario

MICROS_PER_DAY = 86_400_000_000
MICROS_PER_MINUTE = 60_000_000


@dataclass(frozen=True)
class Category:
    code: int
    name: str
    median_amount: float
    weight: float
    online_share: float
    risky: bool


CATEGORIES = (
    Category(5411, "grocery", 35.0, 0.30, 0.05, False),
    Category(5812, "restaurants", 28.0, 0.18, 0.10, False),
    Category(5541, "fuel", 55.0, 0.10, 0.02, False),
    Category(5999, "misc_retail", 45.0, 0.12, 0.35, False),
    Category(5691, "clothing", 70.0, 0.10, 0.45, False),
    Category(4111, "transport", 12.0, 0.07, 0.30, False),
    Category(5732, "electronics", 220.0, 0.05, 0.55, True),
    Category(4829, "money_transfer", 300.0, 0.02, 0.80, True),
    Category(7995, "gambling", 80.0, 0.02, 0.90, True),
    Category(5967, "direct_marketing", 20.0, 0.04, 0.95, True),
)
# Only reachable in the `new_merchant_mix` scenario, from its start day on.
NEW_CATEGORIES = (
    Category(5816, "digital_goods", 15.0, 0.6, 0.98, False),
    Category(6051, "crypto_exchange", 400.0, 0.4, 0.99, True),
)
COUNTRIES = np.array(["DE", "FR", "NL", "ES", "IT", "BE"])
COUNTRY_WEIGHTS = np.array([0.30, 0.22, 0.14, 0.14, 0.12, 0.08])
CARD_TYPES = np.array(["credit", "debit", "prepaid"])
CARD_TYPE_WEIGHTS = np.array([0.50, 0.45, 0.05])
# Mon..Sun volume factors and the hour-of-day profile of legitimate spending (UTC).
WEEKDAY_FACTOR = np.array([0.95, 0.95, 1.0, 1.0, 1.1, 1.15, 0.85])
LEGIT_HOURS = np.array(
    [0.4, 0.25, 0.15, 0.1, 0.1, 0.2, 0.8, 2.0, 3.5, 4.5, 5.0, 6.0, 7.0, 6.5, 6.0, 6.0, 6.5, 7.0, 7.0, 6.0, 4.5,
     3.0, 1.8, 0.9]
)
FRAUD_HOURS = np.array(
    [7.0, 8.0, 8.0, 7.5, 6.0, 4.0, 2.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 2.0, 2.5, 3.0, 3.5,
     4.5, 5.5, 6.5]
)
NON_FRAUD_DISPUTES = np.array(["product_not_received", "duplicate_processing"])
MAX_LABEL_DELAY_DAYS = 21
# Seed-stream constants: a day's idle-tail reassignment and its card-testing bursts draw from their own streams.
IDLE_TAIL_STREAM = 77
BURST_STREAM = 18_001
MICROS_PER_SECOND = 1_000_000


@dataclass(frozen=True)
class SimulationConfig:
    start_date: date
    days: int
    n_customers: int = 2_000
    n_merchants: int = 300
    transactions_per_day: int = 2_500
    fraud_rate: float = 0.01
    scenario: str = "none"
    scenario_start_day: int | None = None
    malformed_rate: float = 0.0005
    seed: int = 7
    # How long a chargeback may take. Real issuers allow weeks; a shorter process lets a test see the labels of a
    # drifted world mature within its simulated span (the delay distribution keeps its shape, scaled down).
    max_label_delay_days: int = MAX_LABEL_DELAY_DAYS
    # Customers who go quiet before the end: for each n, one customer active about daily makes no purchase on the
    # last n days (what a window feature must drain to 0 for; the test worlds use it). Their purchases of those
    # days go to other customers drawn like any purchase, so the day's volume and mix stay the same.
    idle_tails: tuple[int, ...] = ()
    # Card-testing / account-takeover bursts a day (Poisson mean; 0 = none, the worlds before issue 18): see the
    # module docstring. Each adds ~6-14 fraud transactions on top of the day's volume and `fraud_rate`.
    card_testing_bursts_per_day: float = 0.0

    def __post_init__(self) -> None:
        get_scenario(self.scenario)
        if self.days < 1 or self.n_customers < 1 or self.n_merchants < 1 or self.transactions_per_day < 1:
            raise ValueError("days, customers, merchants and transactions_per_day must be positive")
        if not 0 <= self.fraud_rate < 0.5 or not 0 <= self.malformed_rate < 0.5:
            raise ValueError("fraud_rate and malformed_rate must be in [0, 0.5)")
        if self.max_label_delay_days < 1:
            raise ValueError("max_label_delay_days must be at least 1")
        if any(not 1 <= n < self.days for n in self.idle_tails) or len(self.idle_tails) >= self.n_customers:
            raise ValueError("each idle tail must be 1 to days - 1 days long, with fewer tails than customers")
        if not 0 <= self.card_testing_bursts_per_day <= 10_000:
            raise ValueError("card_testing_bursts_per_day must be in [0, 10000]")

    @property
    def effective_start_day(self) -> int:
        return self.days * 2 // 3 if self.scenario_start_day is None else self.scenario_start_day

    @property
    def end_date(self) -> date:
        return self.start_date + timedelta(days=self.days - 1)


@dataclass
class World:
    """The entities, with the latent traits that drive behaviour (never written to the landing zone)."""

    customers: pa.Table
    merchants: pa.Table
    customer_activity: np.ndarray
    customer_spend_scale: np.ndarray
    customer_online_affinity: np.ndarray
    merchant_category_idx: np.ndarray
    merchant_popularity: np.ndarray
    merchant_compromised: np.ndarray
    merchant_is_new: np.ndarray
    categories: tuple[Category, ...] = field(default=CATEGORIES + NEW_CATEGORIES)
    idle_tail_customers: tuple[int, ...] = ()  # one per config.idle_tails


@dataclass
class DayBatch:
    day: date
    transactions: pa.Table
    is_fraud: np.ndarray
    chargebacks: pa.Table  # chargebacks of this day's transactions, each with its own report date


def _ts_micros(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1_000_000


def build_world(config: SimulationConfig) -> World:
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1_000_003]))
    n_c = config.n_customers
    start_us = _ts_micros(config.start_date)
    created_c = start_us - rng.integers(30, 1500, n_c) * MICROS_PER_DAY - rng.integers(0, MICROS_PER_DAY, n_c)
    customers = pa.table(
        {
            "customer_id": [f"C{i:07d}" for i in range(1, n_c + 1)],
            "created_at": pa.array(created_c, pa.timestamp("us", tz="UTC")),
            "country": rng.choice(COUNTRIES, n_c, p=COUNTRY_WEIGHTS),
            "card_type": rng.choice(CARD_TYPES, n_c, p=CARD_TYPE_WEIGHTS),
            "birth_year": rng.integers(1950, 2006, n_c),
        }
    )
    # Heavy-tailed activity: a few customers make many of the transactions.
    activity = rng.gamma(0.8, 1.0, n_c)
    spend_scale = rng.lognormal(0.0, 0.45, n_c)
    online_affinity = rng.beta(2.0, 4.0, n_c)

    base_w = np.array([c.weight for c in CATEGORIES])
    n_new = 0
    if config.scenario == "new_merchant_mix":
        n_new = max(2, config.n_merchants // 6)
    n_m = config.n_merchants + n_new
    cat_idx = np.concatenate(
        [
            rng.choice(len(CATEGORIES), config.n_merchants, p=base_w / base_w.sum()),
            len(CATEGORIES) + rng.choice(len(NEW_CATEGORIES), n_new, p=[c.weight for c in NEW_CATEGORIES]),
        ]
    )
    is_new = np.arange(n_m) >= config.n_merchants
    all_categories = CATEGORIES + NEW_CATEGORIES
    created_m = start_us - rng.integers(60, 3000, n_m) * MICROS_PER_DAY
    new_start = start_us + config.effective_start_day * MICROS_PER_DAY
    created_m = np.where(is_new, new_start - rng.integers(0, 3, n_m) * MICROS_PER_DAY, created_m)
    merchants = pa.table(
        {
            "merchant_id": [f"M{i:05d}" for i in range(1, n_m + 1)],
            "merchant_name": [f"{all_categories[c].name.replace('_', ' ').title()} #{i}" for i, c in
                              enumerate(cat_idx, start=1)],
            "category_code": [str(all_categories[c].code) for c in cat_idx],
            "category": [all_categories[c].name for c in cat_idx],
            "country": rng.choice(COUNTRIES, n_m, p=COUNTRY_WEIGHTS),
            "created_at": pa.array(created_m, pa.timestamp("us", tz="UTC")),
        }
    )
    popularity = rng.lognormal(0.0, 1.0, n_m)
    risky = np.array([all_categories[c].risky for c in cat_idx])
    compromised = rng.random(n_m) < np.where(risky, 0.25, 0.03)
    # Busy enough to have paid on the day before their tail, not so busy that silencing them changes the day's mix.
    first_quiet = n_c // 20
    quiet = np.argsort(-activity, kind="stable")[first_quiet : first_quiet + len(config.idle_tails)]
    return World(
        idle_tail_customers=tuple(int(i) for i in quiet),
        customers=customers,
        merchants=merchants,
        customer_activity=activity,
        customer_spend_scale=spend_scale,
        customer_online_affinity=online_affinity,
        merchant_category_idx=cat_idx,
        merchant_popularity=popularity,
        merchant_compromised=compromised,
        merchant_is_new=is_new,
    )


def _pick(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    p = weights / weights.sum()
    return rng.choice(len(p), size=size, p=p)


def _times(rng: np.random.Generator, day_us: int, hour_profile: np.ndarray, size: int) -> np.ndarray:
    hours = _pick(rng, hour_profile, size)
    return day_us + hours * 3_600_000_000 + rng.integers(0, 3_600_000_000, size)


def card_testing_bursts(
    config: SimulationConfig, world: World, day_index: int, day_us: int, regime
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The day's card-testing bursts as (customer, merchant, event µs, amount) arrays, all online and fraud, in one
    vectorised draw from the day's own burst stream (module docstring). Amounts are final (rounded, scenario's
    multiplier applied); probes may be a few cents, below the ordinary purchases' 0.50 floor."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, day_index, BURST_STREAM]))
    empty = np.array([], np.int64)
    n_bursts = int(rng.poisson(config.card_testing_bursts_per_day))
    if n_bursts == 0:
        return empty, empty, empty, np.array([], np.float64)
    cats = world.categories
    m_cat = world.merchant_category_idx
    cat_online = np.array([c.online_share for c in cats])[m_cat]
    cat_risky = np.array([c.risky for c in cats])[m_cat]
    cat_median = np.array([c.median_amount for c in cats])[m_cat]
    usable = ~world.merchant_is_new
    # Probes go where any card is accepted online without friction; the cash-in where goods resell well.
    probe_w = world.merchant_popularity * cat_online**4 * np.where(world.merchant_compromised, 3.0, 1.0) * usable
    resells = cat_risky & (cat_median >= 80.0)  # electronics, money transfer, gambling (not direct marketing)
    cashin_w = world.merchant_popularity * np.where(resells, 1.0, 0.001) * np.where(
        world.merchant_compromised, 4.0, 1.0) * usable
    # Victims: any card holder (a stolen card number), never one that a test world keeps silent.
    victims_w = np.ones(config.n_customers)
    victims_w[list(world.idle_tail_customers)] = 0.0
    victim = _pick(rng, victims_w, n_bursts)
    start = _times(rng, day_us, FRAUD_HOURS, n_bursts)
    n_probe = rng.integers(4, 12, n_bursts)  # 4..11 probes
    n_cashin = rng.integers(1, 4, n_bursts)  # 1..3 large purchases
    probe_merchants = _pick(rng, probe_w, 3 * n_bursts).reshape(n_bursts, 3)
    n_probe_merchants = rng.integers(1, 4, n_bursts)

    probe_burst = np.repeat(np.arange(n_bursts), n_probe)
    gaps = rng.integers(5, 61, len(probe_burst)) * MICROS_PER_SECOND  # 5..60 s apart
    first_of_burst = np.concatenate([[0], np.cumsum(n_probe)[:-1]])
    gaps[first_of_burst] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first_of_burst], n_probe)
    probe_ts = start[probe_burst] + elapsed + rng.integers(0, MICROS_PER_SECOND, len(probe_burst))
    which = (rng.random(len(probe_burst)) * n_probe_merchants[probe_burst]).astype(np.int64)
    probe_merch = probe_merchants[probe_burst, which]
    # Cents to a few EUR: a third are under 1 EUR (median 1.20).
    probe_amount = np.clip(np.round(rng.lognormal(np.log(1.2), 0.9, len(probe_burst)), 2), 0.01, 9.99)

    last_probe = probe_ts[first_of_burst + n_probe - 1]
    cashin_burst = np.repeat(np.arange(n_bursts), n_cashin)
    first_cashin = np.concatenate([[0], np.cumsum(n_cashin)[:-1]])
    c_gaps = rng.integers(60, 15 * 60 + 1, len(cashin_burst)) * MICROS_PER_SECOND  # 1..15 min
    c_elapsed = np.cumsum(c_gaps)
    c_elapsed -= np.repeat(c_elapsed[first_cashin] - c_gaps[first_cashin], n_cashin)
    cashin_ts = last_probe[cashin_burst] + c_elapsed
    cashin_merch = _pick(rng, cashin_w, len(cashin_burst))
    cashin_amount = np.round(cat_median[cashin_merch] * 2.5 * rng.lognormal(0.0, 0.4, len(cashin_burst)), 2)

    ts = np.minimum(np.concatenate([probe_ts, cashin_ts]), day_us + MICROS_PER_DAY - 1)
    amount = np.concatenate([probe_amount, np.maximum(cashin_amount, 0.5)]) * regime.amount_multiplier
    return (np.concatenate([victim[probe_burst], victim[cashin_burst]]).astype(np.int64),
            np.concatenate([probe_merch, cashin_merch]).astype(np.int64), ts.astype(np.int64),
            np.maximum(np.round(amount, 2), 0.01))


def simulate_day(config: SimulationConfig, world: World, day_index: int) -> DayBatch:
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, day_index]))
    day = config.start_date + timedelta(days=day_index)
    day_us = _ts_micros(day)
    regime = get_scenario(config.scenario).regime(day_index, config.effective_start_day)
    cats = world.categories
    cat_median = np.array([c.median_amount for c in cats])
    cat_online = np.array([c.online_share for c in cats])
    cat_risky = np.array([c.risky for c in cats])
    m_cat = world.merchant_category_idx

    n_total = rng.poisson(config.transactions_per_day * WEEKDAY_FACTOR[day.weekday()])
    n_fraud = rng.binomial(n_total, config.fraud_rate)
    n_legit = n_total - n_fraud

    # Legitimate spending.
    cust = _pick(rng, world.customer_activity, n_legit)
    established = world.merchant_popularity * ~world.merchant_is_new
    merch = _pick(rng, established, n_legit)
    if regime.new_merchant_share > 0 and world.merchant_is_new.any():
        switch = rng.random(n_legit) < regime.new_merchant_share
        merch[switch] = _pick(rng, world.merchant_popularity * world.merchant_is_new, int(switch.sum()))
    ts = _times(rng, day_us, LEGIT_HOURS, n_legit)
    online_p = np.clip(0.5 * cat_online[m_cat[merch]] + 0.5 * world.customer_online_affinity[cust], 0, 1)
    online = rng.random(n_legit) < online_p
    amount = cat_median[m_cat[merch]] * world.customer_spend_scale[cust] * rng.lognormal(0.0, 0.6, n_legit)

    # Fraud comes in bursts: a stolen card is used a few times within an hour or two.
    f_cust, f_merch, f_ts, f_online, f_amount = [], [], [], [], []
    remaining = n_fraud
    if regime.fraud_shifted:
        target_merch = world.merchant_popularity * ~cat_risky[m_cat] * ~world.merchant_is_new
        hours, online_rate, median, spread = LEGIT_HOURS, 0.35, 0.9, 0.4
    else:
        target_merch = world.merchant_popularity * np.where(world.merchant_compromised, 12.0, 1.0) * np.where(
            cat_risky[m_cat], 4.0, 0.15) * ~world.merchant_is_new
        hours, online_rate, median, spread = FRAUD_HOURS, 0.85, 2.8, 0.5
    while remaining > 0:
        size = int(min(remaining, rng.geometric(0.4)))
        victim = rng.integers(0, config.n_customers)
        start = _times(rng, day_us, hours, 1)[0]
        offsets = np.cumsum(rng.integers(2, 40, size)) * MICROS_PER_MINUTE
        f_ts.append(np.minimum(start + offsets - offsets[0], day_us + MICROS_PER_DAY - 1))
        m = _pick(rng, target_merch, size)
        f_merch.append(m)
        f_cust.append(np.full(size, victim))
        f_online.append(rng.random(size) < online_rate)
        f_amount.append(cat_median[m_cat[m]] * median * rng.lognormal(0.0, spread, size))
        remaining -= size

    def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.array([], dtype=dtype)

    cust = np.concatenate([cust, cat(f_cust, np.int64)])
    merch = np.concatenate([merch, cat(f_merch, np.int64)])
    ts = np.concatenate([ts, cat(f_ts, np.int64)])
    online = np.concatenate([online, cat(f_online, bool)])
    amount = np.concatenate([amount, cat(f_amount, np.float64)]) * regime.amount_multiplier
    amount = np.maximum(np.round(amount, 2), 0.5)
    is_fraud = np.concatenate([np.zeros(n_legit, bool), np.ones(len(ts) - n_legit, bool)])
    # A customer in an idle tail pays nothing on its last days; others make those purchases (own stream, so the
    # rest of the day is drawn as without tails).
    silent = [q for n, q in zip(config.idle_tails, world.idle_tail_customers, strict=True) if day_index >= config.days - n]
    if silent:
        moved = np.isin(cust, silent)
        others = world.customer_activity.copy()
        others[silent] = 0.0
        tail_rng = np.random.default_rng(np.random.SeedSequence([config.seed, day_index, IDLE_TAIL_STREAM]))
        cust[moved] = _pick(tail_rng, others, int(moved.sum()))

    if config.card_testing_bursts_per_day > 0:
        b_cust, b_merch, b_ts, b_amount = card_testing_bursts(config, world, day_index, day_us, regime)
        cust, merch, ts = np.concatenate([cust, b_cust]), np.concatenate([merch, b_merch]), np.concatenate([ts, b_ts])
        online = np.concatenate([online, np.ones(len(b_ts), bool)])
        amount = np.concatenate([amount, b_amount])
        is_fraud = np.concatenate([is_fraud, np.ones(len(b_ts), bool)])

    order = np.argsort(ts, kind="stable")
    cust, merch, ts, online, amount, is_fraud = (a[order] for a in (cust, merch, ts, online, amount, is_fraud))
    n = len(ts)
    tx_ids = np.array([f"T{day:%Y%m%d}{i:07d}" for i in range(n)], dtype=object)
    customer_ids = np.asarray(world.customers.column("customer_id").to_numpy(zero_copy_only=False))
    merchant_ids = np.asarray(world.merchants.column("merchant_id").to_numpy(zero_copy_only=False))
    transactions = pa.table(
        {
            "transaction_id": tx_ids,
            "customer_id": customer_ids[cust],
            "merchant_id": merchant_ids[merch],
            "amount": amount,
            "currency": np.full(n, "EUR"),
            "channel": np.where(online, "online", "card_present"),
            "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        }
    )

    # Labels: most fraud is reported as a `fraud` chargeback days later; a few honest purchases are disputed
    # for other reasons. Both only become visible on their report day.
    reported = is_fraud & (rng.random(n) < 0.92)
    disputed = ~is_fraud & (rng.random(n) < 0.001)
    cb_idx = np.flatnonzero(reported | disputed)
    max_delay = config.max_label_delay_days
    median_delay = 6.0 * max_delay / MAX_LABEL_DELAY_DAYS
    delay_days = np.clip(np.round(rng.lognormal(np.log(median_delay), 0.6, len(cb_idx))), 1, max_delay)
    reported_at = ts[cb_idx] + delay_days.astype(np.int64) * MICROS_PER_DAY + rng.integers(
        -6 * 3_600_000_000, 6 * 3_600_000_000, len(cb_idx))
    reported_at = np.clip(reported_at, ts[cb_idx] + MICROS_PER_DAY, ts[cb_idx] + max_delay * MICROS_PER_DAY)
    reasons = np.where(is_fraud[cb_idx], "fraud", rng.choice(NON_FRAUD_DISPUTES, len(cb_idx)))
    chargebacks = pa.table(
        {
            "chargeback_id": np.array([f"CB{t[1:]}" for t in tx_ids[cb_idx]], dtype=object),
            "transaction_id": tx_ids[cb_idx],
            "reported_at": pa.array(reported_at, pa.timestamp("us", tz="UTC")),
            "reason": reasons,
        }
    )
    return DayBatch(day=day, transactions=transactions, is_fraud=is_fraud, chargebacks=chargebacks)


def simulate(config: SimulationConfig) -> Iterator[DayBatch]:
    world = build_world(config)
    for day_index in range(config.days):
        yield simulate_day(config, world, day_index)
