"""Entry points for notebooks and scripts: the same stores the assets use, for the active profile.

    from platform_assets.tools.notebook import (champion_feature_service, feature_store, historical_features,
                                                online_features, score_transactions)
    store = feature_store()
    service = champion_feature_service()                                 # what the champion reads, e.g. fraud_detector_v2
    online_features([{"customer_id": "C0000001", "merchant_id": "M00001", "amount": 42.0,
                      "transaction_epoch": 1767225600}], service).values # TTL-guarded, stale values reported
    frame = historical_features("2026-03-01", "2026-03-08", service)     # point-in-time join of a date range
    score_transactions([{"customer_id": "C0000001", "merchant_id": "M00001", "amount": 42.0,
                         "channel": "online", "event_ts": "2026-03-08T12:00:00+00:00"}])  # score, decision, reasons

Resources are initialized here as Dagster would at run time, so `dg.EnvVar` values (production URLs and
passwords) are read from the environment and never need to appear in the notebook. `notebooks/` has a starter.
"""

from __future__ import annotations

from datetime import UTC, datetime

from platform_assets.lib.names import CHAMPION, DEFAULT_FEATURE_SERVICE, TAG_FEATURE_SERVICE
from platform_assets.settings import Settings, load_settings


def _resource(name: str, settings: Settings | None):
    from platform_assets.resources.profile import build_resources

    return build_resources(settings or load_settings())[name].process_config_and_initialize()


def feature_store(settings: Settings | None = None):
    """The Feast `FeatureStore` of the platform (registry, offline and online store of the active profile)."""
    return _resource("feast", settings).store()


def online_features(
    entity_rows: list[dict],
    feature_service: str = DEFAULT_FEATURE_SERVICE,
    now: datetime | None = None,
    settings: Settings | None = None,
):
    """Online feature vectors with the freshness guard: values older than their view's TTL at `now` (default: the
    wall clock) come back as None and are listed in `.stale`, instead of being served silently."""
    from platform_assets.lib.online_features import fresh_online_features

    return fresh_online_features(feature_store(settings), feature_service, entity_rows, now)


def _utc(value) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def historical_features(
    start, end, feature_service: str = DEFAULT_FEATURE_SERVICE, settings: Settings | None = None
):
    """The transactions in [start, end) with their features as known at each transaction's time (Feast's
    point-in-time join, exactly as training sets are built; labels are not included)."""
    from platform_assets.lib import training_sets as td

    settings = settings or load_settings()
    entity_rows = td.transactions_between(settings.exports_dir, _utc(start), _utc(end))
    if entity_rows.empty:
        raise ValueError(f"no transactions between {start} and {end}")
    return td.join_features(feature_store(settings), entity_rows, feature_service)


def _champion_version(mlflow_tracking):
    version = mlflow_tracking.alias_version(CHAMPION)
    if version is None:
        raise LookupError(f"{mlflow_tracking.model_name} has no {CHAMPION} yet: run `make demo` first")
    return version


def champion_model(settings: Settings | None = None):
    """The registered champion (an `xgboost.XGBClassifier`), loaded from our MLflow registry by alias."""
    mlflow_tracking = _resource("mlflow_tracking", settings)
    return mlflow_tracking.load_version(_champion_version(mlflow_tracking).version)


def champion_feature_service(settings: Settings | None = None) -> str:
    """The Feast feature service the champion was trained on (its registry tag), so a notebook asks Feast for the
    features the serving model reads, whichever version is champion."""
    version = _champion_version(_resource("mlflow_tracking", settings))
    return version.tags.get(TAG_FEATURE_SERVICE, DEFAULT_FEATURE_SERVICE)


def score_transactions(transactions: list[dict], settings: Settings | None = None) -> list[dict]:
    """Score transactions as the scoring service does, without logging them: the champion loaded as the service
    loads it, its online feature vector with the freshness guard (stale values listed and left out), P(fraud),
    the review decision at its threshold, and the three features that moved the score most (XGBoost's
    `pred_contribs`, the service's `reasons`).

    Each transaction: customer_id, merchant_id, amount, channel and event_ts (ISO string or datetime; naive = UTC).
    """
    from platform_assets.serving.model import ModelSlots, top_reasons

    settings = settings or load_settings()
    mlflow_tracking = _resource("mlflow_tracking", settings)
    slots = ModelSlots(mlflow_tracking, _resource("feast", settings), _resource("storage", settings).training_sets_dir(),
                       _resource("policy", settings).review_budget, settings.serving_refresh_seconds,
                       settings.serving_reasons)
    model = slots.load(_champion_version(mlflow_tracking))
    rows = [{**t, "event_ts": _utc(t["event_ts"])} for t in transactions]
    batch = model.reader.read(rows)
    scored = model.score(batch.matrix)
    return [
        {
            "transaction_id": row.get("transaction_id"), "score": float(scored.scores[i]),
            "decision": "review" if scored.scores[i] >= model.threshold else "approve",
            "model_name": model.model_name, "model_version": model.version, "feature_service": model.feature_service,
            "stale_features": batch.stale[i], "unknown_customer": batch.unknown_customer[i],
            "unknown_merchant": batch.unknown_merchant[i],
            "reasons": top_reasons(scored.contributions[i], model.features, batch.matrix[i]),
        }
        for i, row in enumerate(rows)
    ]
