"""Prometheus metrics of the scoring service, in a registry of its own (one per app, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


class ServingMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("fraud_serving_requests", "HTTP requests by path and status", ["path", "status"],
                                registry=r)
        self.latency = Histogram("fraud_serving_request_seconds", "Request latency in the server, by path", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.transactions = Counter("fraud_serving_transactions", "Transactions scored, by decision", ["decision"],
                                    registry=r)
        self.scores = Histogram("fraud_serving_score", "Fraud scores returned", buckets=SCORE_BUCKETS, registry=r)
        self.stale = Counter("fraud_serving_stale_features", "Stored features served as missing (older than TTL)",
                             ["feature"], registry=r)
        self.unknown = Counter("fraud_serving_unknown_entities", "Transactions whose customer or merchant had no "
                               "stored figures", ["entity"], registry=r)
        self.model = Gauge("fraud_serving_model_info", "The live model versions (value 1), by role",
                           ["role", "model_name", "model_version", "feature_service"], registry=r)
        self.batch = Histogram("fraud_serving_batch_rows", "Transactions scored per model call (requests that "
                               "arrived together are micro-batched)", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 1000),
                               registry=r)
        self.swaps = Counter("fraud_serving_model_swaps", "Model versions swapped in while serving", registry=r)
        self.logged = Gauge("fraud_serving_log_written", "Predictions written to the prediction log", registry=r)

    def set_models(self, champion, challenger) -> None:
        for labels in getattr(self, "_live", []):
            self.model.remove(*labels)
        self._live = [(role, m.model_name, m.version, m.feature_service)
                      for role, m in (("champion", champion), ("challenger", challenger)) if m is not None]
        for labels in self._live:
            self.model.labels(*labels).set(1)
