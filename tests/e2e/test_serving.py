"""The real-time scoring service, as a client sees it: a real uvicorn server in a subprocess, real HTTP.

One world, built by `python -m platform_assets.tools.demo` in a temporary directory (what `make demo` leaves, its
last day yesterday), serves every test here. The oracles are the platform's other readers, not the service:
Feast's offline point-in-time join for the vectors (and DuckDB's own hour arithmetic for the request fields),
the champion's `predict_proba` for the scores, the MLflow registry for versions, `mlflow models serve` for the
pyfunc, the log files and the warehouse table for what was acknowledged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest
from platform_env import run_demo
from process_helpers import free_port, stop_process_group

from platform_assets.lib import names
from platform_assets.settings import PROJECT_ROOT, load_settings

pytestmark = pytest.mark.slow
DAYS = 70
SERVICE = "fraud_detector_v2"


@dataclass
class World:
    data_dir: Path
    env: dict[str, str]
    acknowledged: list[str] = field(default_factory=list)  # transaction ids of every 200 answer, in order

    def settings(self):
        return load_settings(self.env)

    def resources(self):
        from platform_assets.resources.profile import build_resources

        return build_resources(self.settings())


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    data_dir = tmp_path_factory.mktemp("serving-world")
    env, _ = run_demo(data_dir, DAYS, PLATFORM_SERVING_REFRESH_SECONDS="0.5")
    return World(data_dir, env)


def start_server(world: World, tmp_path: Path, **env: str) -> Server:
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "platform_assets.serving", "--port", str(port), "--log-level", "warning"],
        cwd=PROJECT_ROOT, env={**world.env, **env}, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()[-3000:]
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return Server(url, process, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_process_group(process)
    raise AssertionError("the scoring service did not get ready in 90 s: " + log_path.read_text()[-3000:])


@pytest.fixture(scope="module")
def server(world, tmp_path_factory):
    running = start_server(world, tmp_path_factory.mktemp("server"))
    yield running
    stop_process_group(running.process)


def score(world: World, server: Server, transaction: dict, client=None, **kwargs) -> httpx.Response:
    response = (client or httpx).post(server.url + "/v1/score", json=transaction, timeout=10, **kwargs)
    if response.status_code == 200:
        world.acknowledged.append(transaction["transaction_id"])
    return response


def recent_pairs(world: World, n: int) -> pd.DataFrame:
    """(customer, merchant, amount, channel) of real transactions of the last days, some customers repeated."""
    path = world.data_dir / "exports" / "fct_transactions.parquet"
    return duckdb.sql(
        f"SELECT customer_id, merchant_id, CAST(amount AS DOUBLE) AS amount, channel "
        f"FROM read_parquet('{path}') ORDER BY event_ts DESC, transaction_id LIMIT {n}"
    ).df()


def transaction(tx_id: str, row, event_ts: datetime) -> dict:
    return {"transaction_id": tx_id, "customer_id": row.customer_id, "merchant_id": row.merchant_id,
            "amount": round(float(row.amount), 2), "currency": "EUR", "channel": row.channel,
            "event_ts": event_ts.isoformat()}


def logged(world: World) -> list[dict]:
    files = sorted((world.data_dir / "serving" / "predictions").glob("served_date=*/*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def test_contract_health_readiness_metrics_and_openapi(world, server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    champion = world.resources()["mlflow_tracking"].champion_version()
    assert ready["ready"] and ready["model_version"] == str(champion.version)
    assert ready["feature_service"] == SERVICE and ready["online_store"] == "WideSqliteOnlineStore"
    assert float(champion.tags[names.TAG_REVIEW_THRESHOLD]) == pytest.approx(ready["review_threshold"])

    row = recent_pairs(world, 1).iloc[0]
    body = transaction("contract-1", row, datetime.now(UTC))
    first, second = score(world, server, body), score(world, server, body)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert set(answer) == {"transaction_id", "score", "decision", "model_name", "model_version", "feature_service",
                           "stale_features", "unknown_customer", "unknown_merchant", "reasons"}
    assert answer["transaction_id"] == "contract-1" and 0 <= answer["score"] <= 1
    assert answer["decision"] == ("review" if answer["score"] >= ready["review_threshold"] else "approve")
    assert answer["model_name"] == "fraud_detector" and answer["model_version"] == ready["model_version"]
    assert answer["stale_features"] == [] and not answer["unknown_customer"] and not answer["unknown_merchant"]
    assert len(answer["reasons"]) == 3 and all({"feature", "value", "contribution"} == set(r) for r in answer["reasons"])
    magnitudes = [abs(r["contribution"]) for r in answer["reasons"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert second.json() == answer  # the same transaction twice: the same answer

    batch = httpx.post(server.url + "/v1/score/batch", json={"transactions": [body, {**body, "transaction_id": "b2"}]})
    assert batch.status_code == 200
    results = batch.json()["results"]
    world.acknowledged += [r["transaction_id"] for r in results]
    assert [r["transaction_id"] for r in results] == ["contract-1", "b2"]
    assert results[0]["score"] == answer["score"]

    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/score", "/v1/score/batch", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert "Transaction" in spec["components"]["schemas"] and "Score" in spec["components"]["schemas"]

    metrics = httpx.get(server.url + "/metrics").text
    for name in ("fraud_serving_requests_total", "fraud_serving_request_seconds_bucket", "fraud_serving_score_bucket",
                 "fraud_serving_stale_features", "fraud_serving_transactions_total"):
        assert name in metrics, name
    assert f'fraud_serving_model_info{{feature_service="{SERVICE}",model_name="fraud_detector",' \
           f'model_version="{ready["model_version"]}",role="champion"}} 1.0' in metrics


def test_bad_input_gets_field_errors_413_and_unknown_entities_a_flagged_score(world, server):
    row = recent_pairs(world, 1).iloc[0]
    good = transaction("bad-0", row, datetime.now(UTC))
    cases = {
        "amount": {**good, "amount": 12.345},
        "currency": {**good, "currency": "eur"},
        "channel": {**good, "channel": "atm"},
        "event_ts": {**good, "event_ts": "2026-12-01T10:00:00"},  # no offset: refused, not guessed
        "customer_id": {**good, "customer_id": "C1'; DROP TABLE x"},
        "extra": {**good, "extra": 1},
    }
    for field_name, body in cases.items():
        response = httpx.post(server.url + "/v1/score", json=body)
        assert response.status_code == 422, (field_name, response.text)
        locations = [error["loc"][-1] for error in response.json()["detail"]]
        assert field_name in locations, (field_name, locations)
    assert httpx.post(server.url + "/v1/score", content=b"{not json",
                      headers={"content-type": "application/json"}).status_code == 422
    too_big = httpx.post(server.url + "/v1/score", content=b"x" * 1_100_000,
                         headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    over = httpx.post(server.url + "/v1/score/batch", json={"transactions": [good] * 1001}, timeout=30)
    assert over.status_code == 422

    stranger = score(world, server, {**good, "transaction_id": "stranger", "customer_id": "C-NEVER-SEEN",
                                     "merchant_id": "M-NEVER-SEEN"})
    assert stranger.status_code == 200
    answer = stranger.json()
    assert answer["unknown_customer"] and answer["unknown_merchant"] and 0 <= answer["score"] <= 1
    vector = next(r for r in logged_after_flush(world) if r["transaction_id"] == "stranger")["features"]
    # never seen = what training saw for a first transaction: no stored figure, first purchase at the merchant
    assert vector["cust_txn_count_7d"] is None and vector["merch_txn_count_7d"] is None
    assert vector["first_purchase_at_merchant"] == 1 and vector["seconds_since_last_txn"] is None
    assert httpx.get(server.url + "/healthz").status_code == 200  # nothing crashed the process


def logged_after_flush(world: World) -> list[dict]:
    time.sleep(0.3)
    return logged(world)


def test_served_vector_equals_offline_point_in_time_vector(world, server):
    """Served at now (the day after the last loaded one) and 40 days later (every stored value past its TTL):
    each served vector equals Feast's offline point-in-time join at the same instant, and each score equals the
    champion's predict_proba on that offline vector."""
    from platform_assets.lib.champion import require_champion
    from platform_assets.lib.training_sets import join_features

    pairs = recent_pairs(world, 60)
    now = datetime.now(UTC).replace(microsecond=0)
    # Spread over the last hour and a half, but never before today's midnight: a transaction of yesterday, the
    # newest loaded day, sees that day's own row offline, while the online store serves the row after it.
    midnight = now.replace(hour=0, minute=0, second=0)
    sent = []
    for i, row in enumerate(pairs.itertuples()):
        for label, instant in (("now", max(now - timedelta(seconds=i * 97), midnight)),
                               ("later", now + timedelta(days=40))):
            body = transaction(f"pit-{label}-{i}", row, instant)
            response = score(world, server, body)
            assert response.status_code == 200, response.text
            sent.append((body, response.json()))
    served = {r["transaction_id"]: r for r in logged_after_flush(world)}

    entity_rows = pd.DataFrame([{
        "transaction_id": b["transaction_id"], "customer_id": b["customer_id"], "merchant_id": b["merchant_id"],
        "event_timestamp": pd.Timestamp(b["event_ts"]), "amount": b["amount"],
        "transaction_epoch": int(pd.Timestamp(b["event_ts"]).timestamp()),
    } for b, _ in sent])
    resources = world.resources()
    store = resources["feast"].process_config_and_initialize().store()
    offline = join_features(store, entity_rows, SERVICE).set_index("transaction_id")
    champion = require_champion(resources["mlflow_tracking"], world.data_dir / "training_sets")
    # is_online / is_night by DuckDB's own arithmetic (the dbt model's expressions), not by our Python
    request = duckdb.sql(
        "SELECT transaction_id, CAST(channel = 'online' AS INTEGER) AS is_online, "
        "CAST(extract(hour FROM timezone('UTC', CAST(event_ts AS TIMESTAMPTZ))) BETWEEN 0 AND 5 AS INTEGER) AS is_night "
        "FROM (SELECT unnest($ids) AS transaction_id, unnest($channels) AS channel, unnest($ts) AS event_ts)",
        params={"ids": [b["transaction_id"] for b, _ in sent], "channels": [b["channel"] for b, _ in sent],
                "ts": [b["event_ts"] for b, _ in sent]},
    ).df().set_index("transaction_id")
    offline[["is_online", "is_night"]] = request.loc[offline.index, ["is_online", "is_night"]]

    stale_seen = 0
    for body, answer in sent:
        tx = body["transaction_id"]
        vector = served[tx]["features"]
        assert list(vector) == champion.features
        for name, value in vector.items():
            expected = offline.loc[tx, name]
            if pd.isna(expected):
                assert value is None, (tx, name, value)
            else:
                assert value == pytest.approx(float(expected), rel=1e-12, abs=1e-12), (tx, name, value, expected)
        expected_score = float(champion.score(offline.loc[[tx]])[0])
        assert answer["score"] == pytest.approx(expected_score, abs=1e-6)
        if tx.startswith("pit-later"):
            assert answer["stale_features"], tx  # 40 days on, the stored windows are past their TTL
            stale_seen += 1
    assert stale_seen == len(pairs)
    known = [a for b, a in sent if b["transaction_id"].startswith("pit-now")]
    assert all(not a["stale_features"] and not a["unknown_customer"] for a in known)


def test_promotion_and_rollback_swap_under_load_without_a_failed_request(world, server):
    """A new champion (and back) while four clients keep scoring: every request succeeds, both versions answer,
    and the challenger is scored in shadow (logged) but never returned."""
    tracking = world.resources()["mlflow_tracking"]
    client = tracking.client()
    old = tracking.champion_version()
    new = client.create_model_version(tracking.model_name, old.source, run_id=old.run_id, tags=old.tags)
    row = recent_pairs(world, 1).iloc[0]
    stop = threading.Event()
    answers: list[tuple[float, int, str | None]] = []
    lock = threading.Lock()

    def load(worker: int):
        with httpx.Client(timeout=10) as http:
            i = 0
            while not stop.is_set():
                body = transaction(f"swap-{worker}-{i}", row, datetime.now(UTC))
                response = score(world, server, body, client=http)
                version = response.json().get("model_version") if response.status_code == 200 else None
                with lock:
                    answers.append((time.monotonic(), response.status_code, version))
                i += 1

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        client.set_registered_model_alias(tracking.model_name, names.CHAMPION, new.version)
        client.set_registered_model_alias(tracking.model_name, names.CHALLENGER, old.version)
        wait_for_version(server, str(new.version))
        time.sleep(1.5)
        client.set_registered_model_alias(tracking.model_name, names.CHAMPION, old.version)  # the rollback
        client.delete_registered_model_alias(tracking.model_name, names.CHALLENGER)
        client.set_registered_model_alias(tracking.model_name, names.CHALLENGER, new.version)
        wait_for_version(server, str(old.version))
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    statuses = {status for _, status, _ in answers}
    assert statuses == {200}, f"failed requests during the swaps: {statuses}"
    versions = [v for _, _, v in answers]
    assert str(new.version) in versions and versions[-1] == str(old.version)
    assert len(answers) > 200
    records = [r for r in logged_after_flush(world) if r["transaction_id"].startswith("swap-")]
    shadowed = [r for r in records if r["challenger_score"] is not None]
    assert shadowed, "the challenger never scored in shadow"
    assert all(r["challenger_version"] != r["model_version"] for r in shadowed)
    # the same model files under two versions: the shadow score equals the answer
    assert all(r["challenger_score"] == pytest.approx(r["score"], abs=1e-9) for r in shadowed)
    client.delete_registered_model_alias(tracking.model_name, names.CHALLENGER)


def wait_for_version(server: Server, version: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(server.url + "/readyz").json().get("model_version") == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"the service did not swap to v{version} in {timeout} s")


def test_bearer_token_is_required_when_set_and_production_refuses_to_serve_without_one(world, tmp_path):
    guarded = start_server(world, tmp_path, PLATFORM_SERVING_TOKEN="s3cret-for-test")
    try:
        row = recent_pairs(world, 1).iloc[0]
        body = transaction("auth-1", row, datetime.now(UTC))
        assert httpx.post(guarded.url + "/v1/score", json=body).status_code == 401
        assert httpx.post(guarded.url + "/v1/score", json=body,
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(guarded.url + "/healthz").status_code == 200  # probes stay open
        ok = score(world, guarded, body, headers={"Authorization": "Bearer s3cret-for-test"})
        assert ok.status_code == 200
    finally:
        stop_process_group(guarded.process)
    refused = subprocess.run(
        [sys.executable, "-m", "platform_assets.serving", "--port", str(free_port())], cwd=PROJECT_ROOT,
        env={**world.env, "PLATFORM_PROFILE": "production"}, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and "PLATFORM_SERVING_TOKEN" in refused.stdout + refused.stderr


def test_acknowledged_predictions_survive_kill_9(world, tmp_path):
    victim = start_server(world, tmp_path)
    row = recent_pairs(world, 1).iloc[0]
    ids = []
    with httpx.Client(timeout=10) as http:
        for i in range(300):
            body = transaction(f"kill-{i}", row, datetime.now(UTC))
            assert score(world, victim, body, client=http).status_code == 200
            ids.append(body["transaction_id"])
    time.sleep(0.3)  # the log's drain interval is 50 ms: what was acknowledged 0.3 s ago is with the OS
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    found = [r["transaction_id"] for r in logged(world) if r["transaction_id"].startswith("kill-")]
    assert sorted(found) == sorted(ids)


def test_the_sensor_redeploys_when_the_champion_alias_moves(world):
    from platform_assets.serving.assets import deploy_on_champion_change

    tracking = world.resources()["mlflow_tracking"]
    client = tracking.client()
    champion = tracking.champion_version()
    other = next(v for v in client.search_model_versions(f"name='{tracking.model_name}'")
                 if v.version != champion.version)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"mlflow_tracking": tracking})
        first = deploy_on_champion_change(context)
        assert isinstance(first, dg.RunRequest) and first.tags["champion_version"] == str(champion.version)
        assert isinstance(deploy_on_champion_change(context), dg.SkipReason)  # unchanged: nothing to do
        client.set_registered_model_alias(tracking.model_name, names.CHAMPION, other.version)
        try:
            moved = deploy_on_champion_change(context)
        finally:
            client.set_registered_model_alias(tracking.model_name, names.CHAMPION, champion.version)
        back = deploy_on_champion_change(context)
    assert isinstance(moved, dg.RunRequest) and moved.tags["champion_version"] == str(other.version)
    assert isinstance(back, dg.RunRequest) and len({first.run_key, moved.run_key, back.run_key}) == 3


def test_served_predictions_and_deployed_model_in_the_graph(world, server):
    """After every test above: the day's log in the warehouse holds one row per acknowledged answer, the
    online/offline skew check passes, and deployed_model records the version the running service reports."""
    from platform_assets.definitions import build_definitions
    from platform_assets.resources import ScoringService

    settings = world.settings()
    defs = build_definitions(settings)
    resources = {**defs.resources, "scoring_service": ScoringService(url=server.url)}
    today = datetime.now(UTC).date().isoformat()
    with dg.instance_for_test() as instance:
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.SERVED_PREDICTIONS),
                                partition_key=today, resources=resources, instance=instance)
        again = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.SERVED_PREDICTIONS),
                               partition_key=today, resources=resources, instance=instance)
        deployed = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.DEPLOYED_MODEL),
                                  resources=resources, instance=instance)
        report = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(names.SERVED_TRAFFIC_REPORT),
                                partition_key=today, resources=resources, instance=instance)
    assert result.success and again.success and deployed.success and report.success
    live = report.asset_materializations_for_node(names.asset_name(names.SERVED_TRAFFIC_REPORT))[0].metadata
    assert live["served_rows_total"].value == len(world.acknowledged)
    assert 0 < live["current_rows"].value <= len(world.acknowledged)
    assert live[names.VERDICT].value in {"drift", "no_drift", "insufficient_data"}
    # The day's snapshot in the Evidently UI (monitoring/workspace.py), and the same report as an HTML file.
    assert live["report"].value.startswith(f"{settings.evidently_url}/projects/")
    assert Path(live["report_path"].value).is_file()
    # The verdict is the day's asset check, with the same word and the figures it was drawn from.
    [served_check] = report.get_asset_check_evaluations()
    assert served_check.check_name == names.SERVED_SCORE_DRIFT_CHECK and served_check.partition == today
    assert served_check.metadata[names.VERDICT].value == live[names.VERDICT].value
    assert served_check.passed == (live[names.VERDICT].value != "drift")
    assert served_check.metadata["current_rows"].value == live["current_rows"].value
    metadata = again.asset_materializations_for_node(names.asset_name(names.SERVED_PREDICTIONS))[0].metadata
    assert metadata["dagster/row_count"].value == len(world.acknowledged)
    assert metadata["torn_lines_skipped"].value == 0
    check = again.get_asset_check_evaluations()[0]
    assert check.check_name == names.SKEW_CHECK and check.passed, check.metadata
    assert check.metadata["compared"].value > 100
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT transaction_id FROM serving.served_predictions "
                                         "WHERE served_date = $d", {"d": today}).fetchall()]
    assert sorted(ids) == sorted(world.acknowledged)  # re-run: replaced, not appended
    deployed_meta = deployed.asset_materializations_for_node(names.asset_name(names.DEPLOYED_MODEL))[0].metadata
    champion = world.resources()["mlflow_tracking"].champion_version()
    assert deployed_meta["in_sync"].value is True
    assert deployed_meta["live_version"].value == deployed_meta["champion_version"].value == str(champion.version)


def test_registered_pyfunc_answers_probabilities_through_mlflow_models_serve(world, tmp_path):
    from platform_assets.lib.champion import require_champion
    from platform_assets.lib.training_sets import model_inputs, read_split

    resources = world.resources()
    tracking = resources["mlflow_tracking"]
    tracking.setup()
    champion = require_champion(tracking, world.data_dir / "training_sets")
    holdout = read_split(champion.manifest.path, "holdout").head(20)
    frame = model_inputs(holdout, champion.features)
    expected = champion.score(holdout)
    # A pyfunc client in a process of its own (MLflow keeps model-from-code state per process)
    script = ("import json, sys, mlflow, pandas as pd; frame = pd.read_json(sys.stdin, orient='split').astype('float64'); "
              f"print(json.dumps(mlflow.pyfunc.load_model({tracking.model_uri(names.CHAMPION)!r}).predict(frame)"
              ".tolist()))")
    client = subprocess.run([sys.executable, "-c", script], input=frame.to_json(orient="split", index=False),
                            env={**world.env, "MLFLOW_TRACKING_URI": tracking.tracking_uri}, capture_output=True,
                            text=True, timeout=120, check=False)
    assert client.returncode == 0, client.stderr[-3000:]
    assert np.allclose(json.loads(client.stdout.strip().splitlines()[-1]), expected, atol=1e-7)

    port = free_port()
    env = {**world.env, "MLFLOW_TRACKING_URI": tracking.tracking_uri,
           "PATH": f"{Path(sys.executable).parent}:{world.env.get('PATH', '')}"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", tracking.model_uri(names.CHAMPION),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"],
        env=env, stdout=(tmp_path / "mlflow.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "mlflow.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            time.sleep(0.5)
        payload = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=30)
        assert answer.status_code == 200, answer.text
        predictions = np.asarray(answer.json()["predictions"], dtype=float)
        assert predictions.shape == (len(frame),)
        assert np.all((predictions >= 0) & (predictions <= 1)) and not np.all(np.isin(predictions, [0.0, 1.0]))
        assert np.allclose(predictions, expected, atol=1e-6)
    finally:
        stop_process_group(process)
