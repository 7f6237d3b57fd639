"""The system of record's change log: seeded, its final versions are the snapshot files, no key transacts after
it was deleted. Oracles are the generator's own world and simulated days."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from platform_assets.simulator.generator import CATEGORIES, SimulationConfig, build_world, simulate
from platform_assets.simulator.system_of_record import COLUMNS, KEYS, TABLES, change_log

CONFIG = SimulationConfig(start_date=date(2026, 3, 1), days=4, n_customers=300, n_merchants=60,
                          transactions_per_day=300)


@pytest.fixture(scope="module")
def log():
    return change_log(CONFIG)


def test_the_change_log_is_drawn_from_the_seed_alone(log):
    again = change_log.__wrapped__(CONFIG)
    assert again.versions == log.versions
    other = change_log.__wrapped__(SimulationConfig(**{**CONFIG.__dict__, "seed": 8}))
    assert other.versions != log.versions


@pytest.mark.parametrize("table", TABLES)
def test_every_keys_final_version_is_its_snapshot_row(log, table):
    world = build_world(CONFIG)
    snapshot = {r[KEYS[table]]: r for r in getattr(world, table).to_pylist()}
    final = log.state(table, log.window_end)
    assert set(final) == set(snapshot)
    assert all(final[k].row == snapshot[k] for k in snapshot)
    assert list(final[next(iter(final))].row) == list(COLUMNS[table])


def test_customers_move_and_merchants_change_category_within_the_window(log):
    changed = {t: {k: h for k, h in log.versions[t].items() if len([v for v in h if v.kind == "update"])}
               for t in TABLES}
    assert (len(changed["customers"]), len(changed["merchants"])) == (15, 3)  # 5% of each
    assert any(len(h) >= 3 for h in changed["customers"].values())  # some change twice
    names = {str(c.code): c.name for c in CATEGORIES}
    for table, histories in changed.items():
        for history in histories.values():
            updates = [v for v in history if v.kind == "update"]
            assert all(log.window_start <= v.updated_at < log.window_end for v in updates)
            for before, after in itertools.pairwise(history):
                assert before.updated_at < after.updated_at
                differs = {c for c in COLUMNS[table] if before.row[c] != after.row[c]}
                if after.kind == "update":
                    assert differs == ({"country"} if table == "customers" else {"category_code", "category"})
            if table == "merchants":
                assert all(names[v.row["category_code"]] == v.row["category"] for v in history)


def test_a_deleted_key_makes_no_transaction_after_its_delete(log):
    deleted = {t: log.deleted(t) for t in TABLES}
    assert len(deleted["customers"]) == 3 and len(deleted["merchants"]) >= 1
    for batch in simulate(CONFIG):
        for row in batch.transactions.select(["customer_id", "merchant_id", "event_ts"]).to_pylist():
            for table, column in (("customers", "customer_id"), ("merchants", "merchant_id")):
                at = deleted[table].get(row[column])
                assert at is None or row["event_ts"] < at, (table, row)
    for table in TABLES:
        for key, at in deleted[table].items():
            assert log.version(table, key, at - timedelta(microseconds=1)).deleted_at is None
            tombstone = log.version(table, key, at)
            assert tombstone.kind == "delete" and tombstone.updated_at == at


def test_state_as_of_a_time_holds_each_keys_version_then(log):
    start = log.state("customers", log.window_start)
    assert len(start) == CONFIG.n_customers  # all created before the window
    assert all(v.kind == "create" and v.deleted_at is None for v in start.values())
    middle = log.window_start + timedelta(days=2)
    changes = log.changes("customers", log.window_start, middle)
    assert changes and all(log.window_start < v.updated_at <= middle for v in changes)
    state = log.state("customers", middle)
    for v in changes:
        assert state[v.key].updated_at >= v.updated_at
    assert log.version("customers", "C0000001", log.window_start - timedelta(days=5000)) is None
