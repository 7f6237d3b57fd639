"""The online velocity consumer, as real processes on the real stack: the transaction stream (embedded log and
Redis) and the scoring service's traffic into Feast's SQLite online store.

The oracle is the simulator's own records (as in test_transaction_stream): each day's rows as written
(simulate_day + corrupt_transactions), each malformed row's reason found by comparing it with the clean row, and
each customer's expected state computed from the clean, deduplicated rows alone (every event, trimmed to 24 h
of the customer's newest), never from the consumer's code.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from platform_env import local_settings

from platform_assets.features.registry import apply_repo
from platform_assets.features.velocity_online import StateStore
from platform_assets.lib.transaction_stream import open_stream
from platform_assets.lib.velocity_consumer import ONLINE_HORIZON_US, read_heartbeat
from platform_assets.resources.profile import build_resources
from platform_assets.serving.log import PredictionLog, served_at
from platform_assets.settings import PROJECT_ROOT
from platform_assets.simulator import SimulationConfig
from platform_assets.simulator.generator import build_world, simulate_day
from platform_assets.simulator.landing import corrupt_transactions
from platform_assets.simulator.stream import replay_days

FIRST_DAY = date(2026, 3, 1)
CONFIG = SimulationConfig(start_date=FIRST_DAY, days=2, n_customers=60, n_merchants=15, transactions_per_day=250,
                          malformed_rate=0.03, seed=18)
REDIS_URL = f"redis://127.0.0.1:{os.environ.get('PLATFORM_TEST_REDIS_PORT', '6379')}/0"
BACKENDS = ["embedded", pytest.param("redis", marks=pytest.mark.production)]
HORIZON_US = ONLINE_HORIZON_US  # online states keep 24 h + MAX_FUTURE of the newest
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def oracle(config: SimulationConfig) -> tuple[dict[str, list[tuple]], Counter, int]:
    """(customer -> expected state rows (event_us, id, cents, merchant), refusals by reason, events sent), from
    the simulator's records alone."""
    world, refused, kept, sent = build_world(config), Counter(), {}, 0
    for i in range(config.days):
        batch = simulate_day(config, world, i)
        clean = batch.transactions.to_pylist()
        clean_text = corrupt_transactions(batch.transactions, 0.0, np.random.default_rng(0))[0].to_pylist()
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, i, 77]))
        rows = corrupt_transactions(batch.transactions, config.malformed_rate, rng)[0].to_pylist()
        sent += len(rows)
        for row, text, truth in zip(rows, clean_text, clean, strict=False):
            if row["amount"] != text["amount"]:
                refused["invalid_amount"] += 1
            elif row["customer_id"] != text["customer_id"]:
                refused["missing_customer_id"] += 1
            elif row["event_ts"] == "not-a-timestamp":
                refused["invalid_timestamp"] += 1
            elif row["event_ts"] != text["event_ts"]:
                refused["timestamp_outside_partition"] += 1
            else:
                kept[truth["transaction_id"]] = (truth["customer_id"], micros(truth["event_ts"]),
                                                 truth["transaction_id"], round(float(truth["amount"]) * 100),
                                                 truth["merchant_id"])
        # rows[len(clean):] re-send some rows: identical copies, counted once (their id is already kept)
    states: dict[str, list[tuple]] = {}
    for customer, *row in kept.values():
        states.setdefault(customer, []).append(tuple(row))
    for customer, rows in states.items():
        newest = max(r[0] for r in rows)
        states[customer] = sorted(r for r in rows if r[0] >= newest - HORIZON_US)
    return states, refused, sent


@pytest.fixture
def velocity_platform(request, tmp_path, monkeypatch):
    backend = getattr(request, "param", "embedded")
    suffix = uuid.uuid4().hex[:8]
    env = {"PLATFORM_TRANSACTIONS_SOURCE": "stream", "PLATFORM_STREAM_BACKEND": backend,
           "PLATFORM_STREAM_NAME": f"test:velocity:tx:{suffix}", "PLATFORM_SCORED_STREAM_NAME": f"test:velocity:scored:{suffix}",
           "PLATFORM_STREAM_REDIS_URL": REDIS_URL}
    settings = local_settings(monkeypatch, tmp_path, **env)
    feast = build_resources(settings)["feast"]
    store = feast.store()
    apply_repo(store, feast.feature_objects().all())
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    environment.update({"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_PROFILE": "local", **env})
    yield settings, store, environment
    if backend == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).delete(settings.stream_name, settings.scored_stream_name)


def consume(environment, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "platform_assets.features.velocity_online", "--exit-when-idle",
                           "--log-level", "warning", *args], cwd=PROJECT_ROOT, env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)


def online_states(store, customers) -> dict[str, list[tuple]]:
    got = StateStore(store).read(sorted(customers))
    return {c: list(zip(s.event_us, s.transaction_ids, s.amount_cents, s.merchant_ids, strict=True))
            for c, s in got.items() if s is not None}


@pytest.mark.parametrize("velocity_platform", BACKENDS, indirect=True)
def test_a_consumer_killed_before_and_after_its_write_restarts_with_exact_state(velocity_platform):
    settings, store, environment = velocity_platform
    expected, refused, sent = oracle(CONFIG)
    replay = replay_days(CONFIG, backend=settings.stream_backend, name=settings.stream_name,
                         log_path=settings.stream_log_path, redis_url=settings.stream_redis_url)
    assert replay.events == sent
    batch = "97"
    # Killed after the write of its 2nd batch, before the offset commit: the restart re-reads that batch.
    killed = consume(environment, "--batch-events", batch, "--crash-at", "after_write", "--crash-batch", "2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert read_heartbeat(settings)["state"] == "crashing at after_write"
    # Killed before the write of its 3rd batch: nothing of it is in the store, nothing committed.
    killed = consume(environment, "--batch-events", batch, "--crash-at", "before_write", "--crash-batch", "3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    beat = read_heartbeat(settings)
    assert beat["duplicates"] >= 1  # the batch the first kill had written was read again and counted once
    done = consume(environment, "--batch-events", batch)
    assert done.returncode == 0, done.stderr[-3000:]
    assert online_states(store, expected) == expected
    # and a full replay of the whole stream changes nothing
    with sqlite3.connect(settings.velocity_dir / "offsets.sqlite") as offsets:  # forget every position
        offsets.execute("DELETE FROM offsets")
    if settings.stream_backend == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).xgroup_setid(settings.stream_name, "platform-velocity", "0")
    replayed = consume(environment, "--batch-events", "500")
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    beat = read_heartbeat(settings)
    assert beat["events_read"] == sent and beat["events_applied"] == 0
    assert beat["duplicates"] + beat["expired"] == sent - sum(refused.values())
    assert online_states(store, expected) == expected


def test_refused_records_are_counted_by_reason(velocity_platform):
    settings, store, environment = velocity_platform
    _expected, refused, sent = oracle(CONFIG)
    stream = open_stream(settings.stream_backend, settings.stream_name, log_path=settings.stream_log_path,
                         redis_url=settings.stream_redis_url)
    replay_days(CONFIG, stream=stream)
    good = {"transaction_id": "X1", "customer_id": "CX", "merchant_id": "MX", "amount": "10.00", "currency": "EUR",
            "channel": "online", "event_ts": "2026-03-02T12:00:00Z", "sent_at": "2026-03-02T12:00:00Z"}
    extra = [("not a record", "not_a_record"), ({**good, "channel": "atm"}, "unknown_channel"),
             ({**good, "event_ts": "2026-03-02T12:00:00"}, "timestamp_without_zone"),
             ({**good, "amount": "10.001"}, "amount_precision"), ({**good, "merchant_id": "M.X"}, "invalid_merchant_id")]
    stream.append([e for e, _ in extra])
    stream.close()
    refused.update(reason for _, reason in extra)
    done = consume(environment)
    assert done.returncode == 0, done.stderr[-3000:]
    beat = read_heartbeat(settings)
    assert beat["refused"] == dict(refused)
    assert beat["events_read"] == sent + len(extra)
    assert "CX" not in online_states(store, ["CX"])


def test_scoring_traffic_reaches_the_state(velocity_platform):
    """The serving's prediction-log thread appends what it scored to the scored stream; the consumer (files mode:
    only that stream) folds it into the state, each transaction once however often it was scored."""
    settings, store, environment = velocity_platform
    environment = {**environment, "PLATFORM_TRANSACTIONS_SOURCE": "files"}
    log = PredictionLog(settings.serving_log_dir, scored_stream=lambda: open_stream(
        settings.stream_backend, settings.scored_stream_name, log_path=settings.scored_stream_log_path,
        redis_url=settings.stream_redis_url)).start()
    # event times just before now: scored traffic obeys the landing day rule against its served time
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    scored = [{"transaction_id": f"S{i}", "customer_id": f"C{i % 3}", "merchant_id": f"M{i % 2}",
               "amount": 12.5 + i, "currency": "EUR", "channel": "online",
               "event_ts": (base + timedelta(seconds=i, microseconds=250_000 + i)).isoformat(), "served_at": served_at(),
               "score": 0.1} for i in range(9)]
    log.append(scored[:5])
    log.append(scored[3:])  # scored twice (a retry): counted once
    log.close()
    assert log.streamed == 11 and log.stream_dropped == 0
    done = consume(environment)
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_heartbeat(settings)["streams"] == {"scored": settings.scored_stream_name}
    states = online_states(store, ["C0", "C1", "C2"])
    assert states["C1"] == [(micros(datetime.fromisoformat(r["event_ts"])), r["transaction_id"],
                             round(r["amount"] * 100), r["merchant_id"]) for r in scored if r["customer_id"] == "C1"]
    assert sum(len(s) for s in states.values()) == 9


def test_sigterm_stops_the_consumer_after_its_batch(velocity_platform):
    settings, _store, environment = velocity_platform
    proc = subprocess.Popen([sys.executable, "-m", "platform_assets.features.velocity_online"], cwd=PROJECT_ROOT,
                            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while (read_heartbeat(settings) or {}).get("state") not in ("running",) and time.monotonic() < deadline:
            time.sleep(0.2)
        replay_days(CONFIG, days=[0], backend=settings.stream_backend, name=settings.stream_name,
                    log_path=settings.stream_log_path, redis_url=settings.stream_redis_url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.stderr.read()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    beat = read_heartbeat(settings)
    assert beat["state"] == "stopped"
    assert json.loads((settings.velocity_dir / "heartbeat.json").read_text())["pid"] == proc.pid


# ---------------------------------------------------------------------------------------- online equals offline

PIT_CONFIG = SimulationConfig(start_date=FIRST_DAY, days=3, n_customers=40, n_merchants=8, transactions_per_day=400,
                              malformed_rate=0.01, seed=5)
# Instants after the last consumed event at which every customer is scored: within each window, at its edges
# (a day after the newest event plus or minus 1 µs) and past the state's TTL.
OFFSETS_US = (1, 60_000_000, 599_999_999, 600_000_000, 600_000_001, 3_600_000_000, 43_200_000_000,
              86_399_999_999, 86_400_000_000, 86_400_000_001, 90_000_000_000)


@pytest.fixture
def warehouse_world(tmp_path, monkeypatch):
    """PIT_CONFIG as landing files loaded through ingestion and the dbt warehouse (files mode): the offline state
    log `fct_customer_recent_transactions` is exported; the same days are replayed on the transaction stream."""
    import dagster as dg

    from platform_assets.definitions import build_definitions
    from platform_assets.lib import names
    from platform_assets.simulator import write_landing_zone

    settings = local_settings(monkeypatch, tmp_path, PLATFORM_STREAM_NAME=f"test:velocity:pit:{uuid.uuid4().hex[:8]}")
    write_landing_zone(PIT_CONFIG, settings.landing_dir)
    defs = build_definitions(settings)
    window = names.partition_range_tags(PIT_CONFIG.start_date.isoformat(), PIT_CONFIG.end_date.isoformat())
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        for group in (names.INGESTION, names.WAREHOUSE):
            dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups(group), instance=instance,
                           resources=defs.resources, tags=window)
    feast = build_resources(settings)["feast"]
    store = feast.store()
    apply_repo(store, feast.feature_objects().all())
    replay_days(PIT_CONFIG, backend="embedded", name=settings.stream_name, log_path=settings.stream_log_path)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    environment.update({"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_PROFILE": "local",
                        "PLATFORM_TRANSACTIONS_SOURCE": "stream", "PLATFORM_STREAM_NAME": settings.stream_name})
    return settings, store, environment


def brute_force(events, customer: str, merchant: str, t: int) -> dict:
    """Every velocity feature at instant t, counted over the clean transactions themselves."""
    out = {}
    for name, seconds in (("10m", 600), ("1h", 3_600), ("24h", 86_400)):
        inside = [e for e in events if e[0] == customer and t - seconds * 1_000_000 <= e[2] < t]
        here = [e for e in inside if e[1] == merchant]
        out[f"cust_txn_count_{name}"] = len(inside)
        out[f"cust_amount_sum_{name}"] = sum(e[3] for e in inside) / 100
        out[f"cm_txn_count_{name}"] = len(here)
        out[f"cm_amount_sum_{name}"] = sum(e[3] for e in here) / 100
        if name == "1h":
            out["cust_distinct_merchants_1h"] = len({e[1] for e in inside})
    return out


def test_online_equals_offline_at_the_same_instant_after_replaying_the_stream(warehouse_world):
    import duckdb
    import pandas as pd

    from platform_assets.lib import names
    from platform_assets.serving.features import OnlineFeatureReader

    settings, store, environment = warehouse_world
    done = consume(environment, "--batch-events", "150")
    assert done.returncode == 0, done.stderr[-3000:]
    exports = settings.exports_dir
    events = duckdb.sql(f"SELECT customer_id, merchant_id, epoch_us(event_ts), CAST(round(amount * 100) AS BIGINT) "
                        f"FROM '{exports / 'fct_transactions.parquet'}'").fetchall()
    assert read_heartbeat(settings)["events_applied"] <= len(events)
    merchants = sorted({e[1] for e in events})
    newest = max(e[2] for e in events)
    rows = []
    for customer in sorted({e[0] for e in events}):
        last_merchant = max((e for e in events if e[0] == customer), key=lambda e: e[2])[1]
        for offset in OFFSETS_US:
            for merchant in {last_merchant, merchants[len(rows) % len(merchants)]}:
                t = newest + offset
                ts = EPOCH + timedelta(microseconds=t)
                rows.append({"customer_id": customer, "merchant_id": merchant, "transaction_us": t,
                             "event_ts": ts, "amount": 10.0, "channel": "online"})
    velocity = [n for n in brute_force([], "", "", 0)]
    oracle_rows = [brute_force(events, r["customer_id"], r["merchant_id"], r["transaction_us"]) for r in rows]
    assert sum(o["cust_txn_count_24h"] > 0 for o in oracle_rows) > len(rows) / 3  # the instants see real events
    # offline: Feast's point-in-time join over the dbt state log, the same UDF at each instant
    entity_df = pd.DataFrame([{"customer_id": r["customer_id"], "merchant_id": r["merchant_id"],
                               "transaction_us": r["transaction_us"], "event_timestamp": r["event_ts"]} for r in rows])
    entity_df["event_timestamp"] = entity_df["event_timestamp"].astype("datetime64[us, UTC]")
    offline = store.get_historical_features(entity_df=entity_df, features=[f"velocity_features:{n}" for n in velocity]
                                            ).to_df()
    offline = offline.set_index(["customer_id", "merchant_id", "transaction_us"])
    # online: the serving reader (plain columns, the UDF from the registry) and Feast's own get_online_features
    reader = OnlineFeatureReader(store, names.VELOCITY_FEATURE_SERVICE, velocity)
    served = reader.read(rows).matrix
    feast_online = store.get_online_features(
        features=store.get_feature_service(names.VELOCITY_FEATURE_SERVICE),
        entity_rows=[{"customer_id": r["customer_id"], "merchant_id": r["merchant_id"],
                      "transaction_us": r["transaction_us"], "amount": r["amount"],
                      "transaction_epoch": r["transaction_us"] // 1_000_000} for r in rows]).to_dict()
    mismatches = []
    for i, (row, expected) in enumerate(zip(rows, oracle_rows, strict=True)):
        key = (row["customer_id"], row["merchant_id"], row["transaction_us"])
        for j, name in enumerate(velocity):
            got = {"offline": offline.loc[key, name], "served": served[i, j], "feast_online": feast_online[name][i]}
            if any(float(v) != float(expected[name]) for v in got.values()):
                mismatches.append((key, name, expected[name], got))
    assert not mismatches, mismatches[:10]


@pytest.mark.production
@pytest.mark.parametrize("write", ["push", "direct"])
def test_a_late_event_reaches_a_redis_online_store(tmp_path, write):
    """Feast's Redis store keeps a row only if its event time is strictly newer than the stored one: a merge that
    does not move the customer's newest event (a late event) must still be written."""
    import redis
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from platform_assets.features.velocity_state import merge
    from platform_assets.lib.transaction_rules import ValidTransaction
    from platform_assets.resources.feature_store import FeastResource

    project = f"velocity{uuid.uuid4().hex[:8]}"
    host = REDIS_URL.removeprefix("redis://").rsplit("/", 1)[0]
    config = RepoConfig(project=project, provider="local", registry=str(tmp_path / "registry.db"),
                        online_store={"type": "redis", "connection_string": host},
                        offline_store={"type": "platform_assets.feast_stores.duckdb_offline.AsofDuckDBOfflineStore"},
                        entity_key_serialization_version=3)
    config.repo_path = tmp_path
    store = FeatureStore(config=config)
    objects = FeastResource(repo_path=str(PROJECT_ROOT / "feature_repo"), data_dir=str(tmp_path),
                            feature_store_yaml=str(PROJECT_ROOT / "feature_repo" / "feature_store.yaml")
                            ).feature_objects()
    store.apply([objects.customer, objects.customer_recent_source, objects.customer_transactions_push,
                 objects.customer_recent_transactions])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        first = merge(None, [ValidTransaction("t2", "C1", "M1", 100, "EUR", "online", 2_000_000)], "C1")
        StateStore(store, write).write([first])
        consumer = StateStore(store, write)  # a restarted consumer: it knows the row only from its read
        late = merge(consumer.read(["C1"])["C1"], [ValidTransaction("t1", "C1", "M1", 50, "EUR", "online", 1_000_000)],
                     "C1")
        consumer.write([late])
        again = merge(consumer.read(["C1"])["C1"], [ValidTransaction("t1", "C1", "M1", 50, "EUR", "online", 1_000_000)],
                      "C1")
        consumer.write([again])  # a replay: same state, written again
        assert StateStore(store, write).read(["C1"])["C1"] == late
        assert late.transaction_ids == ("t1", "t2")
    finally:
        for key in client.scan_iter(match=f"*{project}*".encode()):
            client.delete(key)


@pytest.mark.production
def test_the_scored_stream_on_redis_is_capped():
    """XADD MAXLEN ~ bound: the scored stream keeps about `maxlen` entries (never fewer), not every one ever
    scored; the newest are the ones kept."""
    import redis

    name = f"test:velocity:capped:{uuid.uuid4().hex[:8]}"
    stream = open_stream("redis", name, redis_url=REDIS_URL, maxlen=100)
    try:
        for batch in range(20):
            stream.append([{"transaction_id": f"T{batch}-{i}"} for i in range(50)])
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        length = client.xlen(name)
        assert 100 <= length < 1_000, length
        assert client.xrevrange(name, count=1)[0][1]["transaction_id"] == "T19-49"
    finally:
        stream.close()
        redis.Redis.from_url(REDIS_URL).delete(name)
