"""The transaction stream, end to end on the real backends: a replayed world drained by the sensor's micro-batches
into raw.transactions with exact counts, a consumer SIGKILLed mid-batch and restarted without loss or duplicate,
and the same counts as the landing files of the same world.

The oracle is the simulator's own records: each day's rows as written (simulate_day + corrupt_transactions), and
for each malformed row the reason its corruption must be quarantined with, found by comparing it with the clean
row. Redis tests use a unique stream per test, deleted after (PLATFORM_TEST_REDIS_PORT, default 6379).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
import numpy as np
import pytest

from platform_assets.definitions import build_definitions
from platform_assets.ingestion.loader import load_source
from platform_assets.ingestion.sources import SOURCES
from platform_assets.lib import names
from platform_assets.lib.transaction_stream import CONSUMER_GROUP, open_stream
from platform_assets.resources import WarehouseResource
from platform_assets.settings import PROJECT_ROOT, load_settings
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.simulator.generator import build_world, simulate_day
from platform_assets.simulator.landing import corrupt_transactions
from platform_assets.simulator.stream import replay_days

FIRST_DAY = date(2026, 3, 1)
CONFIG = SimulationConfig(start_date=FIRST_DAY, days=3, n_customers=200, n_merchants=40, transactions_per_day=300,
                          malformed_rate=0.01, seed=11)
REDIS_URL = f"redis://127.0.0.1:{os.environ.get('PLATFORM_TEST_REDIS_PORT', '6379')}/0"
BACKENDS = ["embedded", pytest.param("redis", marks=pytest.mark.production)]


def oracle(config: SimulationConfig) -> tuple[dict[date, int], Counter]:
    """Rows each day's partition must hold and the quarantine reasons, from the simulator's records alone."""
    world, loaded, reasons = build_world(config), {}, Counter()
    for i in range(config.days):
        batch = simulate_day(config, world, i)
        clean, _ = corrupt_transactions(batch.transactions, 0.0, np.random.default_rng(0))
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, i, 77]))
        text, _ = corrupt_transactions(batch.transactions, config.malformed_rate, rng)
        n = clean.num_rows
        refused = Counter()
        for column, reason in (("amount", "invalid_amount"), ("customer_id", "missing_customer_id")):
            refused[reason] = sum(a != b for a, b in zip(clean.column(column).to_pylist(),
                                                         text.column(column).to_pylist()[:n], strict=True))
        broken_ts = [t for a, t in zip(clean.column("event_ts").to_pylist(), text.column("event_ts").to_pylist()[:n],
                                       strict=True) if a != t]
        refused["invalid_timestamp"] = broken_ts.count("not-a-timestamp")
        refused["timestamp_outside_partition"] = len(broken_ts) - refused["invalid_timestamp"]
        refused["duplicate_transaction_id"] = text.num_rows - n
        loaded[batch.day] = n - sum(v for k, v in refused.items() if k != "duplicate_transaction_id")
        reasons.update(refused)
    return loaded, +reasons


def raw_counts(settings) -> tuple[dict[date, int], Counter]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        per_day = dict(con.execute("SELECT partition_date, count(*) FROM raw.transactions GROUP BY 1").fetchall())
        distinct = con.execute("SELECT count(DISTINCT transaction_id) = count(*) FROM raw.transactions").fetchone()[0]
        reasons = Counter(dict(con.execute(
            "SELECT reason, count(*) FROM raw.quarantine WHERE source = 'transactions' GROUP BY 1").fetchall()))
    assert distinct, "a transaction is loaded twice"
    return per_day, reasons


@pytest.fixture(scope="module")
def stream_platform(tmp_path_factory, request):
    """Stream-mode Definitions on their own data directory and stream, built once per backend; the landing zone
    holds the master data (files mode for it) and, unused in stream mode, the transaction files of the world."""
    backend = request.param
    root = tmp_path_factory.mktemp(f"stream-{backend}")
    env = {"PLATFORM_DATA_DIR": str(root / "data"), "PLATFORM_TRANSACTIONS_SOURCE": "stream",
           "PLATFORM_PARTITION_START": FIRST_DAY.isoformat(), "PLATFORM_STREAM_BACKEND": backend,
           "PLATFORM_STREAM_NAME": f"test:transactions:{uuid.uuid4().hex[:12]}", "PLATFORM_STREAM_REDIS_URL": REDIS_URL,
           "PLATFORM_STREAM_BATCH_EVENTS": "500"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("PLATFORM_LANDING_DIR", raising=False)
        settings = load_settings()
        write_landing_zone(CONFIG, settings.landing_dir)
        yield settings, build_definitions(settings), env


@pytest.fixture
def platform(stream_platform, tmp_path):
    """Per test: an empty stream, a warehouse holding only the master data, a fresh Dagster instance."""
    settings, defs, env = stream_platform
    stream = open_stream(settings.stream_backend, settings.stream_name, log_path=settings.stream_log_path,
                         redis_url=REDIS_URL)
    stream.delete()
    settings.warehouse_path.unlink(missing_ok=True)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for snapshot in ("customers", "merchants"):
            load_source(con, SOURCES[snapshot], settings.landing_dir, None, datetime.now(UTC))
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            yield settings, defs, instance, stream, env
    finally:
        stream.delete()
        stream.close()


def observe(defs, instance) -> dict:
    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.TRANSACTION_STREAM),
                            instance=instance, resources=defs.resources)
    [observation] = result.get_asset_observation_events()
    return {k: v.value for k, v in observation.asset_observation_data.asset_observation.metadata.items()}


def tick(defs, instance):
    sensor = defs.get_sensor_def(names.STREAM_SENSOR)
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs,
                                                        resources=defs.resources))


def run_request(defs, instance, request: dg.RunRequest, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(*request.asset_selection),
                          instance=instance, resources=defs.resources, tags=request.tags,
                          run_config=request.run_config, raise_on_error=raise_on_error)


@pytest.mark.parametrize("stream_platform", BACKENDS, indirect=True)
def test_sensor_drains_the_replayed_world_exactly_once_in_micro_batches(platform):
    settings, defs, instance, stream, _ = platform
    replay = replay_days(CONFIG, stream=stream)
    expected_loaded, expected_reasons = oracle(CONFIG)
    assert replay.events == sum(expected_loaded.values()) + sum(expected_reasons.values())
    before = observe(defs, instance)
    assert before["events_not_loaded"] == replay.events and before["events_written"] == replay.events

    runs, keys = 0, set()
    while (evaluation := tick(defs, instance)).run_requests:
        [request] = evaluation.run_requests
        assert request.run_key not in keys
        keys.add(request.run_key)
        assert run_request(defs, instance, request).success
        runs += 1
    # 500 events a batch: several micro-batches, each a single run over the days of its events
    assert runs == -(-replay.events // 500) > 1
    assert raw_counts(settings) == (expected_loaded, expected_reasons)
    after = observe(defs, instance)
    assert after["events_not_loaded"] == 0
    assert after[names.STREAM_COMMITTED_POSITION] == replay.last_position

    # Loading the days again (the daily schedule, a backfill) finds nothing new and changes nothing.
    again = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.RAW_TRANSACTIONS),
                           instance=instance, resources=defs.resources,
                           tags=names.partition_range_tags(FIRST_DAY.isoformat(), CONFIG.end_date.isoformat()))
    [materialization, *_] = again.asset_materializations_for_node(names.asset_name(names.RAW_TRANSACTIONS))
    assert materialization.metadata["events"].value == 0
    assert raw_counts(settings) == (expected_loaded, expected_reasons)


@pytest.mark.parametrize("stream_platform", ["embedded"], indirect=True)
def test_a_late_event_reopens_its_day_and_a_failed_batch_is_asked_for_again(platform):
    settings, defs, instance, stream, _ = platform
    replay_days(CONFIG, days=[0, 1], stream=stream)
    while (evaluation := tick(defs, instance)).run_requests:
        assert run_request(defs, instance, evaluation.run_requests[0]).success
    loaded, _ = raw_counts(settings)
    # A day-0 transaction sent on day 2 (late), and a day-2 event: the batch covers days 0..2.
    late = {"transaction_id": "TLATE0001", "customer_id": "C0000001", "merchant_id": "M00001", "amount": "12.50",
            "currency": "EUR", "channel": "online", "event_ts": f"{FIRST_DAY}T23:59:00Z",
            "sent_at": f"{FIRST_DAY + timedelta(days=2)}T00:00:05Z"}
    stream.append([late, {**late, "transaction_id": "TLATE0002", "event_ts": f"{FIRST_DAY + timedelta(days=2)}T00:00:06Z"},
                   "not json at all"])
    [request] = tick(defs, instance).run_requests
    assert request.tags[names.PARTITION_RANGE_START_TAG] == FIRST_DAY.isoformat()
    assert request.tags[names.PARTITION_RANGE_END_TAG] == (FIRST_DAY + timedelta(days=2)).isoformat()
    # The warehouse file is locked by another process: the run fails, nothing is committed ...
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    blocker = subprocess.Popen([sys.executable, "-c", hold, str(settings.warehouse_path)], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert blocker.stdout.readline().strip() == "held"
        impatient = WarehouseResource(database=str(settings.warehouse_path), lock_timeout_seconds=0.5)
        failed = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.RAW_TRANSACTIONS),
                                instance=instance, resources={**defs.resources, "warehouse": impatient},
                                tags=request.tags, run_config=request.run_config, raise_on_error=False)
        assert not failed.success
    finally:
        blocker.kill()
        blocker.wait()
    # ... and the next tick asks for the same batch again, under a new run key.
    [retry] = tick(defs, instance).run_requests
    assert retry.run_key != request.run_key and retry.run_config == request.run_config
    assert run_request(defs, instance, retry).success
    now_loaded, reasons = raw_counts(settings)
    assert now_loaded[FIRST_DAY] == loaded[FIRST_DAY] + 1
    assert now_loaded[FIRST_DAY + timedelta(days=2)] == 1
    assert reasons["not_a_record"] == 1


CONSUMER = """
import os, sys, time
from datetime import date
from platform_assets.ingestion.transaction_stream import drain
from platform_assets.lib.transaction_stream import open_stream
from platform_assets.settings import load_settings
import duckdb

s = load_settings()
stream = open_stream(s.stream_backend, s.stream_name, log_path=s.stream_log_path, redis_url=s.stream_redis_url)
where = sys.argv[1]

def stop(*_):
    print("stopping", flush=True)
    time.sleep(600)

if where == "after_commit":  # killed after the commit, before the acknowledgement
    stream.ack = lambda positions: stop() if list(positions) else None
con = duckdb.connect(str(s.warehouse_path))
drain(con, stream, s.stream_name, until=None, limit=100_000, lookback_days=35,
      on_received=stop if where == "before_commit" else None)
"""


@pytest.mark.parametrize("where", ["before_commit", "after_commit"])
@pytest.mark.parametrize("stream_platform", BACKENDS, indirect=True)
def test_a_consumer_killed_mid_batch_neither_loses_nor_duplicates(platform, where):
    settings, defs, instance, stream, env = platform
    replay = replay_days(CONFIG, stream=stream)
    consumer = subprocess.Popen([sys.executable, "-c", CONSUMER, where], cwd=PROJECT_ROOT, text=True,
                                env={**os.environ, **env}, stdout=subprocess.PIPE)
    try:
        assert consumer.stdout.readline().strip() == "stopping"
    finally:
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'")
                  .fetchall()}
        committed = (con.execute("SELECT max(position) FROM raw.stream_offsets").fetchone()[0]
                     if "stream_offsets" in tables else None)
        held = con.execute("SELECT count(*) FROM raw.transactions").fetchone()[0] if "transactions" in tables else 0
    if where == "before_commit":  # the whole batch rolled back, even the tables it created
        assert committed is None and held == 0
    else:
        assert committed == replay.last_position and held > 0
    if settings.stream_backend == "redis":  # the killed consumer's batch is delivered and unacknowledged
        import redis

        pending = redis.Redis.from_url(REDIS_URL).xpending(settings.stream_name, CONSUMER_GROUP)["pending"]
        assert pending == replay.events

    restarted = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.RAW_TRANSACTIONS),
                               instance=instance, resources=defs.resources,
                               tags=names.partition_range_tags(FIRST_DAY.isoformat(), CONFIG.end_date.isoformat()))
    [materialization, *_] = restarted.asset_materializations_for_node(names.asset_name(names.RAW_TRANSACTIONS))
    # a run over the days drains all of them, 500 events (PLATFORM_STREAM_BATCH_EVENTS) a committed batch
    assert materialization.metadata["events"].value == (replay.events if where == "before_commit" else 0)
    assert materialization.metadata["batches"].value == (-(-replay.events // 500) if where == "before_commit" else 0)
    assert raw_counts(settings) == oracle(CONFIG)
    assert observe(defs, instance)["events_not_loaded"] == 0
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT events FROM raw.stream_offsets").fetchone()[0] == replay.events


@pytest.mark.parametrize("stream_platform", ["embedded"], indirect=True)
def test_files_and_stream_give_the_same_raw_counts(platform, tmp_path, monkeypatch):
    settings, defs, instance, stream, _ = platform
    replay_days(CONFIG, stream=stream)
    started = time.perf_counter()
    assert dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.RAW_TRANSACTIONS),
                          instance=instance, resources=defs.resources,
                          tags=names.partition_range_tags(FIRST_DAY.isoformat(),
                                                          CONFIG.end_date.isoformat())).success
    assert time.perf_counter() - started < 30
    from_stream = raw_counts(settings)

    monkeypatch.setenv("PLATFORM_TRANSACTIONS_SOURCE", "files")
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("PLATFORM_LANDING_DIR", str(settings.landing_dir))
    files = load_settings()
    files_defs = build_definitions(files)
    assert dg.materialize(list(files_defs.assets), selection=dg.AssetSelection.assets(*names.RAW[:3]),
                          instance=instance, resources=files_defs.resources,
                          tags=names.partition_range_tags(FIRST_DAY.isoformat(),
                                                          CONFIG.end_date.isoformat())).success
    assert raw_counts(files) == from_stream == oracle(CONFIG)
