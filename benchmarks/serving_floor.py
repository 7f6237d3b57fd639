"""The floor of real-time scoring (`make bench-serve`'s `floor` target): the least work a score can take here.

    PLATFORM_DATA_DIR=... python -m benchmarks.serving_floor --host 127.0.0.1 --port 8001
    PLATFORM_DATA_DIR=... python -m benchmarks.serving_floor --check 200   # its features and scores vs Feast's

A bare ASGI callable (no framework, no validation beyond what parsing needs, no logging, no explanation) served
by uvicorn as our service is (httptools, uvloop, one worker, access log off). For each `POST /v1/score` it parses
the body with orjson, does the three primary-key lookups of the feature service straight on Feast's SQLite online
file (the wide tables of platform_assets/feast_stores/sqlite_online.py, keys encoded as Feast's
`serialize_entity_key` v3), computes the five on-demand features inline, and scores one row with
`xgboost.Booster.inplace_predict` in the champion's feature order; it answers `{"score": p}`. Everything that
can be is done once at startup: the Feast registry read (for the views and table names), the champion loaded
from the MLflow registry as the platform loads it (`find_champion`), the SQL, the vector's slots.

What it leaves out on purpose (what our service pays for and the floor does not): request validation, staleness
checks, reasons, the prediction log, metrics, auth. XGBoost predicts with one thread (a single row gains
nothing from more). `--check N` compares, for N sampled transactions, its feature vector with Feast's
`get_online_features` of the champion's feature service and its score with `Champion.score` on Feast's
features; it exits non-zero on any difference.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson

SCORE_PATH = "/v1/score"
READY_PATHS = ("/readyz", "/healthz")
REQUEST_FEATURES = ("amount", "is_online", "is_night")
ON_DEMAND = ("amount_to_cust_avg_30d", "amount_to_cust_max_30d", "txn_hour_of_day", "seconds_since_last_txn",
             "first_purchase_at_merchant")
# Stored values the on-demand features read, whether or not the model reads them itself.
ON_DEMAND_INPUTS = ("cust_amount_avg_30d", "cust_amount_max_30d", "cust_last_txn_epoch", "cm_txn_count_to_date")
VIEWS = ("customer_daily_features", "merchant_daily_features", "customer_merchant_features")
NAN = float("nan")


def epoch_seconds(event_ts: str) -> int:
    """Whole Unix seconds of an ISO 8601 time that carries its offset (the training set's transaction_epoch)."""
    ts = datetime.fromisoformat(event_ts)
    if ts.tzinfo is None:
        raise ValueError("event_ts needs an offset")
    return math.floor(ts.timestamp())


def platform_resources(settings) -> dict:
    """The platform's resources, built as the platform builds them: `build_resources` of the active profile
    (platform_assets.resources.profile, which platform_assets.definitions re-exports; the Definitions module
    itself imports every stage, seconds of startup the floor has no use for)."""
    try:
        from platform_assets.resources.profile import build_resources
    except ImportError:  # before build_resources moved out of the Definitions module
        from platform_assets.definitions import build_resources
    return build_resources(settings)


class _View(NamedTuple):
    name: str
    join_keys: list[str]
    key_types: list
    sql: str
    slots: tuple[tuple[int, str | None], ...]  # per selected column: its slot in the vector (-1: none), and
    # its name when an on-demand feature reads it


class FloorScorer:
    """The startup work and the per-request path of the floor."""

    def __init__(self, settings=None):
        from platform_assets.feast_stores.sqlite_online import encode_entity_keys, quote, wide_table_name
        from platform_assets.lib.champion import find_champion
        from platform_assets.settings import load_settings

        self.settings = settings or load_settings()
        resources = platform_resources(self.settings)
        self.feast = resources["feast"]
        self.store = self.feast.store()
        self.champion = find_champion(resources["mlflow_tracking"], self.settings.data_dir / "training_sets")
        if self.champion is None:
            raise SystemExit("no champion model in the MLflow registry: materialize fraud_model first")
        model = self.champion.model
        self.booster = model.get_booster()
        self.booster.set_param({"nthread": 1})
        self.features = list(self.booster.feature_names or [])
        if not self.features:
            raise SystemExit("the champion's booster has no feature names")
        best = getattr(model, "best_iteration", None)
        self.iteration_range = (0, best + 1) if best is not None else (0, 0)
        self._encode = encode_entity_keys

        config = self.store.config
        versioning = bool(getattr(config.registry, "enable_online_feature_view_versioning", False))
        path = Path(config.online_store.path)
        if not path.is_absolute():
            path = Path(config.repo_path or self.settings.feature_repo_dir) / path
        self.db_path = path
        self.conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)

        index = {name: i for i, name in enumerate(self.features)}
        self.index = index
        views = {v.name: v for v in self.store.list_feature_views()}
        self.views: list[_View] = []
        stored: set[str] = set()
        for name in VIEWS:
            view = views[name]
            columns = [f.name for f in view.features if f.name in index or f.name in ON_DEMAND_INPUTS]
            stored.update(columns)
            sql = (f"SELECT {', '.join(quote(c) for c in columns)} FROM "
                   f"{quote(wide_table_name(config.project, view, versioning))} WHERE entity_key = ?")
            slots = tuple((index.get(c, -1), c if c in ON_DEMAND_INPUTS else None) for c in columns)
            join_keys = [c.name for c in view.entity_columns]
            key_types = [c.dtype.to_value_type() for c in view.entity_columns]
            self.views.append(_View(name, join_keys, key_types, sql, slots))
        unknown = [f for f in self.features if f not in index or (
            f not in stored and f not in REQUEST_FEATURES and f not in ON_DEMAND)]
        if unknown:
            raise SystemExit(f"the champion reads features the floor does not know: {unknown}")
        self.template = np.full((1, len(self.features)), np.nan, dtype=np.float64)
        self._slot = {name: index.get(name, -1) for name in (*REQUEST_FEATURES, *ON_DEMAND)}

    def vector(self, request: dict) -> np.ndarray:
        """The model's input row for one scoring request (the champion's feature order, NaN where missing)."""
        amount = float(request["amount"])
        keys = {"customer_id": request["customer_id"], "merchant_id": request["merchant_id"]}
        epoch = epoch_seconds(request["event_ts"])
        x = self.template.copy()
        row = x[0]
        slot = self._slot
        hour = (epoch // 3600) % 24
        for name, value in (("amount", amount), ("is_online", 1.0 if request["channel"] == "online" else 0.0),
                            ("is_night", 1.0 if hour < 6 else 0.0)):
            if slot[name] >= 0:
                row[slot[name]] = value
        inputs = {}
        conn = self.conn
        for view in self.views:
            key = self._encode(view.join_keys, [[keys[k]] for k in view.join_keys], view.key_types)[0]
            found = conn.execute(view.sql, (key,)).fetchone()
            if found is None:
                continue
            for (position, input_name), value in zip(view.slots, found):
                if value is None:
                    continue
                if position >= 0:
                    row[position] = value
                if input_name is not None:
                    inputs[input_name] = value
        average, maximum = inputs.get("cust_amount_avg_30d"), inputs.get("cust_amount_max_30d")
        last, pair = inputs.get("cust_last_txn_epoch"), inputs.get("cm_txn_count_to_date")
        for name, value in (
            ("amount_to_cust_avg_30d", amount / average if average is not None and average > 0 else NAN),
            ("amount_to_cust_max_30d", amount / maximum if maximum is not None and maximum > 0 else NAN),
            ("txn_hour_of_day", float(hour)),
            ("seconds_since_last_txn", float(epoch - last) if last is not None else NAN),
            ("first_purchase_at_merchant", 1.0 if pair is None or pair <= 0 else 0.0),
        ):
            if slot[name] >= 0:
                row[slot[name]] = value
        return x

    def score(self, request: dict) -> float:
        x = self.vector(request)
        return float(self.booster.inplace_predict(x, iteration_range=self.iteration_range)[0])


def make_app(scorer: FloorScorer):
    """The ASGI callable: `POST /v1/score` -> `{"score": p}`, `GET /readyz` -> 200 (ready once it listens)."""

    async def read_body(receive) -> bytes:
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        return body

    async def app(scope, receive, send):
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == SCORE_PATH:
            body = await read_body(receive)
            try:
                status, out = 200, orjson.dumps({"score": scorer.score(orjson.loads(body))})
            except (KeyError, TypeError, ValueError) as error:
                status, out = 422, orjson.dumps({"error": f"{type(error).__name__}: {error}"})
        elif method == "GET" and path in READY_PATHS:
            status, out = 200, b'{"ready":true}'
        else:
            status, out = 404, b'{"error":"not found"}'
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})

    return app


def sample_requests(exports: Path, n: int, seed: int = 7) -> list[dict]:
    """Scoring requests from real transactions (customer, merchant, amount, channel), timed now."""
    import pyarrow.parquet as pq

    table = pq.read_table(exports / "fct_transactions.parquet",
                          columns=["transaction_id", "customer_id", "merchant_id", "amount", "channel"])
    rows = np.random.default_rng(seed).choice(table.num_rows, size=min(n, table.num_rows), replace=False)
    picked = table.take(rows).to_pylist()
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    return [{**r, "currency": "EUR", "event_ts": now} for r in picked]


def check(scorer: FloorScorer, n: int) -> int:
    """The floor's features and scores against Feast's online read and the platform's own scoring."""
    import pandas as pd

    requests = sample_requests(scorer.settings.exports_dir, n)
    service = scorer.store.get_feature_service(scorer.champion.manifest.feature_service)
    entity_rows = [{"customer_id": r["customer_id"], "merchant_id": r["merchant_id"], "amount": r["amount"],
                    "transaction_epoch": epoch_seconds(r["event_ts"])} for r in requests]
    online = scorer.store.get_online_features(features=service, entity_rows=entity_rows).to_dict()
    frame = pd.DataFrame(online)
    frame["amount"] = [float(r["amount"]) for r in requests]  # request data: Feast does not echo it
    frame["is_online"] = [1.0 if r["channel"] == "online" else 0.0 for r in requests]
    frame["is_night"] = [1.0 if (e["transaction_epoch"] // 3600) % 24 < 6 else 0.0 for e in entity_rows]
    reference = scorer.champion.score(frame)
    mismatches, worst = 0, 0.0
    for i, request in enumerate(requests):
        ours = scorer.vector(request)[0]
        for j, name in enumerate(scorer.features):
            theirs = frame.at[i, name]
            theirs = np.nan if theirs is None else float(theirs)
            if not (np.isnan(theirs) and np.isnan(ours[j])) and not math.isclose(theirs, ours[j], rel_tol=1e-12):
                mismatches += 1
                if mismatches <= 10:
                    print(f"  row {i} {name}: floor {ours[j]!r}, feast {theirs!r}")
        worst = max(worst, abs(scorer.score(request) - float(reference[i])))
    print(f"floor check: {len(requests)} requests x {len(scorer.features)} features, {mismatches} feature values "
          f"differ from Feast's online read; largest score difference from Champion.score {worst:.3g}")
    return 1 if mismatches or worst > 1e-6 else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--check", type=int, default=0, metavar="N",
                        help="compare N sampled requests with Feast and Champion.score, then exit")
    args = parser.parse_args(argv)
    scorer = FloorScorer()
    if args.check:
        return check(scorer, args.check)
    import uvicorn

    uvicorn.run(make_app(scorer), host=args.host, port=args.port, http="httptools", loop="uvloop", workers=1,
                access_log=False, log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
