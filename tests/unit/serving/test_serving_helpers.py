"""The serving stage's pure parts: request fields as dbt derives them, reasons, the log's layout and torn lines,
the review threshold, and the request schema's rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from platform_assets.serving import schemas
from platform_assets.serving.features import request_inputs
from platform_assets.serving.log import PredictionLog, day_dir
from platform_assets.serving.model import top_reasons

GOOD = {"transaction_id": "t-1", "customer_id": "C1", "merchant_id": "M1", "amount": 12.5, "currency": "EUR",
        "channel": "online", "event_ts": "2026-12-01T03:59:59+00:00"}


def test_request_inputs_follow_the_dbt_definitions():
    night = request_inputs(10.0, "online", datetime(2026, 12, 1, 5, 59, 59, tzinfo=UTC))
    day = request_inputs(10.0, "card_present", datetime(2026, 12, 1, 6, 0, 0, tzinfo=UTC))
    assert night["is_night"] == 1.0 and night["is_online"] == 1.0
    assert day["is_night"] == 0.0 and day["is_online"] == 0.0
    # 01:30 at UTC+2 is 23:30 UTC the day before: not night (the hour is taken in UTC, as dbt does)
    shifted = request_inputs(1.0, "online", datetime(2026, 12, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))))
    assert shifted["is_night"] == 0.0
    # DuckDB's CAST(epoch(ts) AS BIGINT) rounds to the nearest second
    half = request_inputs(1.0, "online", datetime(2026, 12, 1, 0, 0, 0, 600_000, tzinfo=UTC))
    assert half["transaction_epoch"] == datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC).timestamp()


def test_reasons_are_the_three_largest_contributions_without_the_bias():
    contributions = np.array([0.1, -2.0, 0.5, 1.5, 9.0])  # the last one is the bias
    values = np.array([1.0, np.nan, 3.0, 4.0])
    reasons = top_reasons(contributions, ["a", "b", "c", "d"], values)
    assert [r["feature"] for r in reasons] == ["b", "d", "c"]
    assert reasons[0] == {"feature": "b", "value": None, "contribution": -2.0}


def test_request_schema_refuses_what_the_landing_contract_refuses():
    assert schemas.Transaction.model_validate(GOOD).event_ts.tzinfo is not None
    for field, value in {"amount": 1.234, "currency": "eu", "channel": "atm", "event_ts": "2026-12-01T03:00:00",
                         "customer_id": "a b", "transaction_id": "x" * 65}.items():
        with pytest.raises(ValidationError) as error:
            schemas.Transaction.model_validate({**GOOD, field: value})
        assert [e["loc"][-1] for e in error.value.errors()] == [field]
    with pytest.raises(ValidationError):
        schemas.Transaction.model_validate({**GOOD, "unexpected": 1})
    with pytest.raises(ValidationError):
        schemas.Batch.model_validate({"transactions": [GOOD] * (schemas.MAX_BATCH + 1)})
    assert schemas.Transaction.model_validate({**GOOD, "amount": 0.29}).amount == 0.29  # 0.29 * 100 != 29.0 exactly


def test_prediction_log_writes_whole_lines_per_day_and_close_loses_nothing(tmp_path):
    log = PredictionLog(tmp_path, drain_seconds=0.01).start()
    records = [{"served_at": f"2026-12-0{1 + i % 2}T10:00:00+00:00", "transaction_id": f"t{i}", "score": 0.5}
               for i in range(10)]
    log.append(records[:4])
    log.append(records[4:])
    log.close()
    first = day_dir(tmp_path, datetime(2026, 12, 1).date())
    second = day_dir(tmp_path, datetime(2026, 12, 2).date())
    lines = [json.loads(line) for d in (first, second) for f in d.glob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(r["transaction_id"] for r in lines) == sorted(r["transaction_id"] for r in records)
    assert log.written == 10 and log.dropped == 0


def test_a_broken_shadow_never_costs_a_record(tmp_path):
    def shadow(records):
        raise RuntimeError("challenger down")

    log = PredictionLog(tmp_path, shadow=shadow, drain_seconds=0.01).start()
    log.append([{"served_at": "2026-12-01T10:00:00+00:00", "transaction_id": "t", "score": 0.1}])
    log.close()
    assert log.written == 1


def test_torn_lines_are_not_counted_as_complete(tmp_path):
    from platform_assets.serving.assets import _complete_lines

    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a"')
    assert _complete_lines([str(path)]) == 2


def test_review_threshold_sends_the_budget_to_review():
    from platform_assets.lib.predictions import review_threshold

    scores = np.linspace(0, 1, 10_001)
    threshold = review_threshold(scores, 0.02)
    assert np.mean(scores >= threshold) == pytest.approx(0.02, abs=1e-3)


def test_pyfunc_artifact_name_is_the_one_training_logs():
    """lib/fraud_pyfunc.py must stay self-contained (MLflow copies it into each version), so the name is written
    twice; this keeps the two equal."""
    import ast

    from platform_assets.training.assets import PYFUNC_CODE, XGBOOST_ARTIFACT

    tree = ast.parse(PYFUNC_CODE.read_text())
    assigned = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
    assert assigned["XGBOOST_ARTIFACT"] == XGBOOST_ARTIFACT
    imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
               for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])}
    assert "platform_assets" not in imports


def test_the_documented_openapi_schema_is_the_app_s(tmp_path, monkeypatch):
    """docs/openapi.json is what the app serves at /openapi.json (regenerate: python -m platform_assets.serving
    --openapi > docs/openapi.json). Building the app loads no model: that happens when it starts."""
    from platform_env import local_settings

    from platform_assets.serving.app import create_app
    from platform_assets.settings import PROJECT_ROOT

    settings = local_settings(monkeypatch, tmp_path)
    monkeypatch.delenv("PLATFORM_SERVING_TOKEN", raising=False)
    documented = json.loads((PROJECT_ROOT / "docs" / "openapi.json").read_text())
    assert create_app(settings).app.openapi() == documented
    assert {"/v1/score", "/v1/score/batch", "/healthz", "/readyz", "/metrics"} <= set(documented["paths"])


def test_production_refuses_to_serve_without_a_token(tmp_path, monkeypatch):
    from platform_env import local_settings

    from platform_assets.serving.app import create_app

    settings = local_settings(monkeypatch, tmp_path, PLATFORM_PROFILE="production")
    monkeypatch.delenv("PLATFORM_SERVING_TOKEN", raising=False)
    with pytest.raises(RuntimeError, match="PLATFORM_SERVING_TOKEN"):
        create_app(settings)
