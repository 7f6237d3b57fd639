"""The simulated chargeback API's pure parts: what it serves, its pages and cursors, its fault plan."""

import csv
from datetime import date, timedelta

import pytest

from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.chargeback_api import (
    ChargebackData,
    FaultPlan,
    decode_cursor,
    encode_cursor,
    page,
    write_chargeback_api_data,
)
from platform_assets.simulator.landing import partition_path

CONFIG = SimulationConfig(start_date=date(2026, 5, 1), days=4, n_customers=100, n_merchants=20,
                          transactions_per_day=200, fraud_rate=0.1, max_label_delay_days=3, seed=3)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("chargeback_api")
    write_landing_zone(CONFIG, root / "landing")
    data = ChargebackData(write_chargeback_api_data(CONFIG, root / "sources"))
    landed = []
    for i in range(CONFIG.days):
        with partition_path(root / "landing", "chargebacks", CONFIG.start_date + timedelta(days=i)).open() as f:
            landed.extend(csv.DictReader(f))
    return data, landed


def _walk(data, limit, reported_before=None):
    items, cursor, pages = [], None, 0
    while True:
        answer = page(data, cursor, limit, reported_before)
        pages += 1
        items.extend(answer["data"])
        cursor = answer["next_cursor"]
        if not answer["has_more"]:
            return items, pages


def test_the_api_serves_exactly_the_landing_files_chargebacks_in_order(served):
    data, landed = served
    items, pages = _walk(data, 7)
    assert sorted(map(sorted, (r.items() for r in items))) == sorted(map(sorted, (r.items() for r in landed)))
    assert len(items) == len({r["chargeback_id"] for r in items}) and pages == -(-len(items) // 7)
    keys = [(r["reported_at"], r["chargeback_id"]) for r in items]
    assert keys == sorted(keys)


def test_a_cursor_resumes_after_any_item_and_the_bound_ends_a_day(served):
    data, _ = served
    items, _ = _walk(data, 500)
    for k in (0, 5, len(items) - 1):
        after = page(data, encode_cursor(items[k]["reported_at"], items[k]["chargeback_id"]), 3, None)
        assert after["data"] == items[k + 1:k + 4]
    bound = (CONFIG.start_date + timedelta(days=3)).isoformat() + "T00:00:00Z"
    before, _ = _walk(data, 4, bound)
    assert before == [r for r in items if r["reported_at"] < bound]
    # Nothing after the cursor: an empty page that keeps the cursor.
    last = encode_cursor(items[-1]["reported_at"], items[-1]["chargeback_id"])
    assert page(data, last, 10, None) == {"data": [], "next_cursor": last, "has_more": False}


@pytest.mark.parametrize("cursor", ["abc", "x" * 300, encode_cursor("not-a-time", "CB1"), "W10"])
def test_a_cursor_not_of_this_api_is_refused(cursor):
    with pytest.raises(ValueError):
        decode_cursor(cursor)


def test_the_fault_plan_fails_the_same_requests_every_time():
    plan = FaultPlan.parse("429@2,garbage@5,500=0.1,slow=0.05,seed=3,retry_after=2,slow_seconds=0.5")
    assert (plan.fault(2), plan.fault(5), plan.retry_after_seconds, plan.slow_seconds) == ("429", "garbage", 2, 0.5)
    draws = [plan.fault(n) for n in range(6, 10_006)]
    assert draws == [FaultPlan.parse("500=0.1,slow=0.05,seed=3").fault(n) for n in range(6, 10_006)]
    assert 900 < draws.count("500") < 1100 and 400 < draws.count("slow") < 600
    assert FaultPlan.parse("").fault(1) is None


@pytest.mark.parametrize("spec", ["404@1", "500@0", "500=1.5", "429=0.6,500=0.6", "retry_after=-1", "nonsense",
                                  "speed=3"])
def test_a_bad_fault_plan_is_refused(spec):
    with pytest.raises(ValueError):
        FaultPlan.parse(spec)
