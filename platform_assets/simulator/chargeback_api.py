"""The acquirer's chargeback API, simulated: `python -m platform_assets.simulator.chargeback_api` (`make
chargeback-api`).

Card networks and acquirers hand chargebacks out through paged HTTP APIs that rate-limit, fail now and then and
sometimes answer with a body nobody can read. This service plays that part for the platform's tests and demo:
it serves the chargebacks of a `SimulationConfig` (exactly those its landing files hold, written by
`write_chargeback_api_data`) ordered by (reported_at, chargeback_id), a page at a time:

    GET /v1/chargebacks?cursor=<opaque>&limit=<1..500>&reported_before=<ISO timestamp>
    -> {"data": [chargeback, ...], "next_cursor": "<opaque>" | null, "has_more": true | false}

A cursor names one item (the last one a page held), so a client resumes right after whatever it last loaded;
`reported_before` bounds a read to the days a client asks for. The data file is re-read when it changes, so the
simulator can add days while the service runs. Failures are injected by a fault plan (`--faults`,
PLATFORM_CHARGEBACK_API_FAULTS), decided by the number of the request, so a test that reads sequentially can
count them exactly; `/healthz` reports what was injected. Plain Python: no Dagster here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from platform_assets.settings import CHARGEBACK_API_DATA_FILE, chargeback_api_token, load_settings
from platform_assets.simulator.generator import SimulationConfig, build_world, simulate_day
from platform_assets.simulator.landing import _as_text

MAX_PAGE_LIMIT = 500
DEFAULT_PAGE_LIMIT = 100
MAX_CURSOR_CHARS = 256
MAX_TIMESTAMP_CHARS = 40
FAULT_KINDS = ("429", "500", "slow", "garbage")


def chargeback_records(config: SimulationConfig) -> list[dict[str, str]]:
    """The chargebacks the landing files of `config` hold (reported by its last day), as the same text, ordered by
    (reported_at, chargeback_id)."""
    world = build_world(config)
    parts = [simulate_day(config, world, i).chargebacks for i in range(config.days)]
    table = pa.concat_tables(parts)
    reported = pc.cast(table.column("reported_at"), pa.date32())
    table = table.filter(pc.less_equal(reported, pa.scalar(config.end_date, pa.date32())))
    table = table.sort_by([("reported_at", "ascending"), ("chargeback_id", "ascending")])
    return _as_text(table).to_pylist()


def write_chargeback_api_data(config: SimulationConfig, sources_dir: Path) -> Path:
    """Write what the API serves for `config` under `sources_dir` (settings.sources_dir), atomically: a service
    that is running picks the new file up on its next request."""
    path = Path(sources_dir) / CHARGEBACK_API_DATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as out:
        for record in chargeback_records(config):
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    tmp.replace(path)
    return path


def encode_cursor(reported_at: str, chargeback_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([reported_at, chargeback_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (reported_at, chargeback_id) a cursor names; ValueError for anything that is not one of ours."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise ValueError("cursor too long")
    try:
        reported_at, chargeback_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return _timestamp(reported_at), str(chargeback_id)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise ValueError("not a cursor of this API") from None


def _timestamp(text: str) -> datetime:
    if not isinstance(text, str) or len(text) > MAX_TIMESTAMP_CHARS:
        raise ValueError("not a timestamp")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("a timestamp needs its zone")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class FaultPlan:
    """Which requests of /v1/chargebacks fail, and how. `at` names request numbers (1-based) outright;
    `rates` gives each kind a share of the other requests, drawn from a hash of (seed, request number): the same
    plan fails the same requests in every run, however fast the client is."""

    at: dict[int, str] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 7
    retry_after_seconds: int = 1
    slow_seconds: float = 2.0

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """`429@3,500@4,slow@5,garbage@6,500=0.05,seed=7,retry_after=1,slow_seconds=2` (empty: no faults)."""
        at, rates, options = {}, {}, {}
        for entry in filter(None, (e.strip() for e in spec.split(","))):
            if "@" in entry:
                kind, number = entry.split("@", 1)
                if kind not in FAULT_KINDS or not number.isdigit() or int(number) < 1:
                    raise ValueError(f"fault {entry!r}: expected KIND@N with KIND one of {FAULT_KINDS}, N >= 1")
                at[int(number)] = kind
            elif "=" in entry:
                name, value = entry.split("=", 1)
                try:
                    if name in FAULT_KINDS:
                        rates[name] = float(value)
                    elif name in ("seed", "retry_after"):
                        options[name] = int(value)
                    elif name == "slow_seconds":
                        options[name] = float(value)
                    else:
                        raise ValueError
                except ValueError:
                    raise ValueError(f"fault {entry!r}: expected KIND=share, seed=N, retry_after=N or "
                                     "slow_seconds=S") from None
            else:
                raise ValueError(f"fault {entry!r}: expected KIND@N or NAME=VALUE")
        if any(not 0 <= r <= 1 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("fault shares are each in [0, 1] and add up to at most 1")
        if options.get("retry_after", 1) < 0 or options.get("slow_seconds", 0) < 0:
            raise ValueError("retry_after and slow_seconds are 0 or more")
        return cls(at=at, rates=rates, seed=options.get("seed", 7),
                   retry_after_seconds=options.get("retry_after", 1), slow_seconds=options.get("slow_seconds", 2.0))

    def fault(self, request_number: int) -> str | None:
        if request_number in self.at:
            return self.at[request_number]
        if not self.rates:
            return None
        digest = hashlib.sha256(f"{self.seed}:{request_number}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        for kind in FAULT_KINDS:
            share = self.rates.get(kind, 0.0)
            if draw < share:
                return kind
            draw -= share
        return None


class ChargebackData:
    """The served chargebacks, re-read when the file changes (it is replaced atomically, never edited)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._records: list[dict] = []
        self._keys: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    def current(self) -> tuple[list[dict], list[tuple[datetime, str]]]:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                records = ([json.loads(line) for line in self.path.read_text().splitlines() if line]
                           if stamp else [])
                self._records = records
                self._keys = [(_timestamp(r["reported_at"]), r["chargeback_id"]) for r in records]
                self._stamp = stamp
            return self._records, self._keys


def page(data: ChargebackData, cursor: str | None, limit: int, reported_before: str | None) -> dict:
    """One page of the API's answer (pure, for the service and its unit tests). ValueError for a bad cursor or
    bound."""
    records, keys = data.current()
    start = bisect_right(keys, decode_cursor(cursor)) if cursor else 0
    end = len(keys)
    if reported_before:
        end = bisect_left(keys, (_timestamp(reported_before), ""))
    items = records[start:min(end, start + limit)]
    next_cursor = encode_cursor(items[-1]["reported_at"], items[-1]["chargeback_id"]) if items else cursor
    return {"data": items, "next_cursor": next_cursor, "has_more": start + len(items) < end}


def create_app(data_path: Path, faults: FaultPlan, token: str | None = None) -> FastAPI:
    """The ASGI app: /v1/chargebacks (bearer token if `token`), /healthz (open: counts only, no data)."""
    app = FastAPI(title="Simulated chargeback API", docs_url=None, redoc_url=None)
    data = ChargebackData(Path(data_path))
    stats = {"requests": 0, "injected": Counter()}
    expected = f"Bearer {token}".encode() if token else None

    @app.get("/healthz")
    def healthz() -> dict:
        records, _ = data.current()
        return {"status": "ok", "chargebacks": len(records), "requests": stats["requests"],
                "injected": dict(stats["injected"])}

    @app.get("/v1/chargebacks")
    async def chargebacks(
        request: Request,
        cursor: str | None = Query(default=None, max_length=MAX_CURSOR_CHARS),
        limit: int = Query(default=DEFAULT_PAGE_LIMIT, ge=1, le=MAX_PAGE_LIMIT),
        reported_before: str | None = Query(default=None, max_length=MAX_TIMESTAMP_CHARS),
    ) -> Response:
        if expected and not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return JSONResponse({"error": "a valid bearer token is required"}, status_code=401)
        stats["requests"] += 1
        fault = faults.fault(stats["requests"])
        if fault:
            stats["injected"][fault] += 1
        if fault == "429":
            return JSONResponse({"error": "rate limited"}, status_code=429,
                                headers={"Retry-After": str(faults.retry_after_seconds)})
        if fault == "500":
            return JSONResponse({"error": "internal error"}, status_code=500)
        if fault == "slow":
            await asyncio.sleep(faults.slow_seconds)
        try:
            body = page(data, cursor, limit, reported_before)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if fault == "garbage":
            # Half the garbage is cut-off JSON, half is JSON of another shape: both answer 200.
            text = json.dumps(body)
            garbage = text[: len(text) // 2] if stats["requests"] % 2 else json.dumps({"data": "maintenance"})
            return Response(garbage, media_type="application/json")
        return JSONResponse(body)

    return app


def start_service(port: int, data_path: Path, faults: str = "", host: str = "127.0.0.1",
                  env: dict[str, str] | None = None, timeout_seconds: float = 30.0) -> subprocess.Popen:
    """Start the service by the platform's own command in a process group of its own, and wait until it answers
    /healthz. Stop it with `stop_service`."""
    import urllib.request

    command = [sys.executable, "-m", "platform_assets.simulator.chargeback_api", "--host", host, "--port",
               str(port), "--data", str(data_path), "--faults", faults]
    process = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the chargeback API exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    stop_service(process)
    raise TimeoutError(f"the chargeback API did not answer on {host}:{port} within {timeout_seconds:.0f} s")


def stop_service(process: subprocess.Popen, timeout_seconds: float = 10.0) -> None:
    """SIGTERM the service's process group (SIGKILL if it lingers): only what `start_service` started."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_seconds)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    settings = load_settings()
    parser = argparse.ArgumentParser(description="The simulated chargeback API")
    parser.add_argument("--host", default=settings.chargeback_api_host)
    parser.add_argument("--port", type=int, default=settings.chargeback_api_port)
    parser.add_argument("--data", type=Path, default=settings.chargeback_api_data_path,
                        help="the chargebacks to serve (write_chargeback_api_data)")
    parser.add_argument("--faults", default=settings.chargeback_api_faults,
                        help="fault plan, e.g. '429@2,500@3,slow@4,garbage@5' or '500=0.05,seed=7'")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    try:
        faults = FaultPlan.parse(args.faults)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.data.is_file():
        print(f"{args.data} does not exist yet: serving no chargebacks until the simulator writes it "
              "(write_chargeback_api_data)", file=sys.stderr)
    app = create_app(args.data, faults, chargeback_api_token())
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
