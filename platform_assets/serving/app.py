"""The scoring service: the champion behind an HTTP API (FastAPI on uvicorn).

    POST /v1/score          one transaction -> score, decision, model version, stale features, reasons
    POST /v1/score/batch    up to 1,000 transactions
    GET  /healthz           the process is up
    GET  /readyz            a model is loaded and the online store is whole (503 until then, with why)
    GET  /metrics           Prometheus

Requests arriving together are scored together: `/v1/score` hands its transaction to a micro-batcher that runs
once per turn of the event loop on whatever has arrived, so under load one online-store lookup per view, one
`inplace_predict` and one `pred_contribs` call serve many requests, and a lone request waits for nobody. The
work is CPU-bound and short (~0.5 ms for one row), so it runs on the event loop itself: no thread hand-off.

Models come from our own MLflow registry by alias (serving/model.py), features from the online store of the
active profile with the freshness guard (serving/features.py); every answer is appended to the prediction log
off the request path (serving/log.py). The pure-ASGI `Guard` in front bounds request bodies (413), checks the
optional bearer token (required in the production profile) and times every request.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager
from datetime import datetime

import dagster as dg
import numpy as np
import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from platform_assets.serving import schemas
from platform_assets.serving.features import FeatureReadError
from platform_assets.serving.log import PredictionLog, served_at
from platform_assets.serving.metrics import ServingMetrics
from platform_assets.serving.model import ModelSlots, top_reasons
from platform_assets.settings import Settings, load_settings

log = logging.getLogger("platform_assets.serving")
PROTECTED = ("/v1/", "/metrics")
ROUTES = ("/v1/score", "/v1/score/batch", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")
# The most an append to the scored stream waits for another writer's lock (embedded log) before the batch is
# dropped and counted (log.PredictionLog.stream_dropped): the prediction log's loss bound is one drain interval.
SCORED_STREAM_BUSY_SECONDS = 0.05


class JSON(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class NotReady(RuntimeError):
    pass


class Scorer:
    """Scores transactions with whatever champion runs at the start of the call, and logs every answer."""

    def __init__(self, slots: ModelSlots, prediction_log: PredictionLog, metrics: ServingMetrics):
        self.slots, self.log, self.metrics = slots, prediction_log, metrics

    def score(self, transactions: list[schemas.Transaction]) -> list[dict]:
        model = self.slots.champion  # one reference for the whole call: a swap never splits a request
        if model is None:
            raise NotReady(self.slots.last_error or "no champion model loaded yet")
        rows = [{"transaction_id": t.transaction_id, "customer_id": t.customer_id, "merchant_id": t.merchant_id,
                 "amount": t.amount, "channel": t.channel, "event_ts": t.event_ts} for t in transactions]
        batch = model.reader.read(rows, transactions=True)
        scored = model.score(batch.matrix)
        self.metrics.batch.observe(len(rows))
        now = served_at()
        results, records = [], []
        features = model.features
        for i, t in enumerate(transactions):
            score = float(scored.scores[i])
            decision = "review" if score >= model.threshold else "approve"
            result = {
                "transaction_id": t.transaction_id, "score": score, "decision": decision,
                "model_name": model.model_name, "model_version": model.version,
                "feature_service": model.feature_service, "stale_features": batch.stale[i],
                "unknown_customer": batch.unknown_customer[i], "unknown_merchant": batch.unknown_merchant[i],
                "reasons": top_reasons(scored.contributions[i], features, batch.matrix[i]),
            }
            results.append(result)
            records.append({
                **result, "served_at": now, "customer_id": t.customer_id, "merchant_id": t.merchant_id,
                "amount": t.amount, "currency": t.currency, "channel": t.channel,
                "event_ts": t.event_ts.isoformat(), "review_threshold": model.threshold,
                "training_set_id": model.training_set_id,
                "features": dict(zip(features, batch.matrix[i].tolist(), strict=True)),
                "challenger_version": None, "challenger_score": None,
            })
            self.metrics.transactions.labels(decision).inc()
            self.metrics.scores.observe(score)
            for name in batch.stale[i]:
                self.metrics.stale.labels(name).inc()
            if batch.unknown_customer[i]:
                self.metrics.unknown.labels("customer").inc()
            if batch.unknown_merchant[i]:
                self.metrics.unknown.labels("merchant").inc()
        self.log.append(records)
        return results

    def shadow(self, records: list[dict]) -> None:
        """The challenger's score for logged records (in the log's thread, never in an answer)."""
        challenger = self.slots.challenger
        # Answered just before a swap, a record's own model may be the challenger by now: nothing to compare.
        records = [r for r in records if challenger is not None and r["model_version"] != challenger.version]
        if not records:
            return
        if all(f in records[0]["features"] for f in challenger.features):
            matrix = np.array([[r["features"][f] for f in challenger.features] for r in records], dtype="float64")
        else:  # it reads another feature service: its own lookup
            rows = [{**r, "event_ts": datetime.fromisoformat(r["event_ts"])} for r in records]
            matrix = challenger.reader.read(rows, transactions=True).matrix
        scores = challenger.score(matrix, explain=False).scores
        for record, score in zip(records, scores, strict=True):
            record["challenger_version"], record["challenger_score"] = challenger.version, float(score)


class MicroBatcher:
    """Collects the transactions that arrive in one turn of the event loop and scores them in one call: a lone
    request is scored at once, requests that arrive together share one lookup per view and one model call."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer
        self.pending: list[tuple[schemas.Transaction, asyncio.Future]] = []
        self.scheduled = False

    async def submit(self, transaction: schemas.Transaction) -> dict:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((transaction, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self.pending, self.scheduled = self.pending, [], False
        try:
            results = self.scorer.score([t for t, _ in batch])
        except Exception as exc:  # noqa: BLE001 (handed to every waiting request, which answers 5xx)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # the client may have gone
                future.set_result(result)


class Guard:
    """Pure ASGI in front of the app: bounded bodies (413), the bearer token (401), metrics for every request."""

    def __init__(self, app, metrics: ServingMetrics, max_body_bytes: int, token: str | None):
        self.app, self.metrics, self.max_body, self.token = app, metrics, max_body_bytes, token
        self.expected = f"Bearer {token}".encode() if token else None

    async def _reply(self, send, status: int, detail: str, headers: list | None = None) -> None:
        body = orjson.dumps({"detail": detail})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *(headers or [])]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope["path"]
        status = [500]

        async def send_and_watch(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if self.expected and path.startswith(PROTECTED):
                given = dict(scope["headers"]).get(b"authorization", b"")
                if not hmac.compare_digest(given, self.expected):
                    status[0] = 401
                    return await self._reply(send, 401, "a bearer token is required",
                                             [(b"www-authenticate", b"Bearer")])
            if scope["method"] in ("POST", "PUT", "PATCH"):
                declared = dict(scope["headers"]).get(b"content-length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                    status[0] = 413
                    return await self._reply(send, 413, f"request body over {self.max_body} bytes")
                body = bytearray()
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_body:
                        status[0] = 413
                        return await self._reply(send, 413, f"request body over {self.max_body} bytes")
                    if not message.get("more_body", False):
                        break
                delivered = False

                async def replay():
                    nonlocal delivered
                    if not delivered:
                        delivered = True
                        return {"type": "http.request", "body": bytes(body), "more_body": False}
                    return await receive()

                return await self.app(scope, replay, send_and_watch)
            return await self.app(scope, receive, send_and_watch)
        finally:
            label = path if path in ROUTES else "other"
            self.metrics.requests.labels(label, str(status[0])).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)


def scored_stream_opener(settings: Settings):
    """How the prediction log's thread opens the scored-transactions stream (None: PLATFORM_SCORED_STREAM=off).
    A Redis URL from the environment is read where it is used, as the stream resource does."""
    if not settings.scored_stream_enabled:
        return None
    from platform_assets.lib.transaction_stream import open_stream

    def opener():
        # Its own SQLite file (embedded) and a short busy timeout: the prediction log's thread never waits long
        # on the stream (a failed append is dropped and counted, the file record is already written); on Redis
        # each XADD keeps the stream near scored_stream_maxlen entries.
        return open_stream(settings.stream_backend, settings.scored_stream_name,
                           log_path=settings.scored_stream_log_path, redis_url=settings.stream_redis_url,
                           maxlen=settings.scored_stream_maxlen, busy_timeout_seconds=SCORED_STREAM_BUSY_SECONDS)

    return opener


def create_app(settings: Settings | None = None) -> Guard:
    """The ASGI app (uvicorn: `platform_assets.serving.app:create_app`, factory). Loading the model and the
    feature store happens in the background after start-up: /healthz answers at once, /readyz once loaded."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from platform_assets.resources.profile import build_resources

    settings = settings or load_settings()
    token = dg.EnvVar("PLATFORM_SERVING_TOKEN").get_value() or None
    if settings.profile == "production" and not token:
        raise RuntimeError("the production profile serves only with a bearer token: set PLATFORM_SERVING_TOKEN")
    metrics = ServingMetrics()
    resources = build_resources(settings)
    slots = ModelSlots(
        resources["mlflow_tracking"].process_config_and_initialize(),
        resources["feast"].process_config_and_initialize(),
        resources["storage"].training_sets_dir(),
        resources["policy"].review_budget,
        settings.serving_refresh_seconds,
        settings.serving_reasons,
        on_change=lambda s: (metrics.set_models(s.champion, s.challenger), metrics.swaps.inc()),
    )
    scorer = Scorer(slots, None, metrics)
    batcher = MicroBatcher(scorer)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scorer.log = PredictionLog(settings.serving_log_dir, shadow=scorer.shadow,
                                   scored_stream=scored_stream_opener(settings)).start()
        slots.start(first_refresh=True)
        try:
            yield
        finally:
            slots.stop()
            scorer.log.close()

    app = FastAPI(
        title="Fraud scoring service",
        version="1",
        summary="The champion fraud model of the platform, with the same features as training",
        lifespan=lifespan,
    )
    app.state.slots, app.state.scorer = slots, scorer

    def failure(exc: Exception) -> JSON:
        if isinstance(exc, NotReady | FeatureReadError):
            return JSON({"detail": str(exc)}, status_code=503)
        log.exception("scoring failed")
        return JSON({"detail": f"scoring failed: {type(exc).__name__}"}, status_code=500)

    @app.post("/v1/score", response_model=schemas.Score, responses={503: {"description": "No model loaded yet, "
              "or the online store cannot be read"}, 413: {"description": "Body too large"}})
    async def score(transaction: schemas.Transaction):
        try:
            return JSON(await batcher.submit(transaction))
        except Exception as exc:  # noqa: BLE001 (a 503/500 answer; the process keeps serving)
            return failure(exc)

    @app.post("/v1/score/batch", response_model=schemas.BatchScores,
              responses={503: {"description": "Not ready"}, 413: {"description": "Body too large"}})
    async def score_batch(batch: schemas.Batch):
        try:
            return JSON({"results": scorer.score(batch.transactions)})
        except Exception as exc:  # noqa: BLE001 (a 503/500 answer; the process keeps serving)
            return failure(exc)

    @app.get("/healthz")
    async def healthz():
        return JSON({"status": "ok"})

    @app.get("/readyz", response_model=schemas.Ready, responses={503: {"model": schemas.Ready}})
    async def readyz():
        champion = slots.champion
        if champion is None:
            return JSON({"ready": False, "reason": slots.last_error or "loading"}, status_code=503)
        challenger = slots.challenger
        lost = champion.reader.problem()  # a missing, corrupt or emptied store: not ready, and why
        return JSON({"ready": lost is None, **champion.describe(),
                     "challenger_version": challenger.version if challenger else None,
                     "online_store": type(champion.reader.online_store).__name__,
                     "reason": lost or slots.last_error}, status_code=200 if lost is None else 503)

    @app.get("/metrics")
    async def prometheus():
        metrics.logged.set(scorer.log.written if scorer.log else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Guard(app, metrics, settings.serving_max_body_bytes, token)
