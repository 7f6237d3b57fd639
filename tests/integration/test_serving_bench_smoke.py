"""`make bench-serve`'s load generator (benchmarks/loadgen.py) runs and its figures are sane, against a trivial
ASGI app on uvicorn: no platform data, no model. The figures themselves are not judged here (performance is
judged by the benchmark on a quiet machine, never by timed tests)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest
from process_helpers import free_port, stop_process_group

from platform_assets.settings import PROJECT_ROOT

APP = textwrap.dedent('''
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        message = await receive()
        while message.get("more_body"):
            message = await receive()
        if scope["path"] == "/echo":
            body = b'{"ok":true}'
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif scope["path"] == "/chunked":  # no content-length: uvicorn sends it chunked
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b'{"a":', "more_body": True})
            await send({"type": "http.response.body", "body": b'1}'})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
''')


@pytest.fixture
def echo_server(tmp_path):
    (tmp_path / "echo_app.py").write_text(APP)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "echo_app:app", "--app-dir", str(tmp_path), "--host", "127.0.0.1",
         "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level",
         "warning"], start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "the echo server exited"
                assert time.monotonic() < deadline, "the echo server did not listen within 15 s"
                time.sleep(0.1)
        yield port
    finally:
        stop_process_group(server)


@pytest.mark.slow
def test_open_loop_generator_against_a_trivial_server(echo_server, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from benchmarks import loadgen

    port = echo_server

    def run(path: str, rate: float, seconds: float, method: str = "POST") -> dict:
        requests = tuple(loadgen.build_request(method, path, "127.0.0.1", port, b'{"i":%d}' % i) for i in range(10))
        spec = loadgen.LoadSpec("127.0.0.1", port, requests, rate=rate, seconds=seconds, timeout=2.0)
        return loadgen.summarize(loadgen.run_in_process(spec))

    echo = run("/echo", 50, 1.0)
    assert "error" not in echo, echo
    assert echo["scheduled"] == 50 and echo["sent"] == 50 and echo["ok"] == 50
    assert echo["errors"] == 0 and echo["statuses"] == {"200": 50} and echo["unaccounted"] == 0
    assert 0 < echo["achieved_rps"] <= 50.5
    assert 0 < echo["p50_ms"] <= echo["p95_ms"] <= echo["p99_ms"] <= echo["max_ms"]
    assert echo["service_p50_ms"] <= echo["p50_ms"] + 1e-6  # from the write, never longer than from the schedule
    assert echo["gen_lag_p99_ms"] is not None and echo["gen_lag_p99_ms"] >= 0
    assert 1 <= echo["max_connections_open"] <= 256 and echo["generator_loop"] in ("uvloop", "asyncio")

    chunked = run("/chunked", 20, 0.5, method="GET")
    assert chunked["ok"] == 10 and chunked["errors"] == 0, chunked

    missing = run("/nowhere", 20, 0.5)
    assert missing["ok"] == 0 and missing["errors_by_kind"]["non_2xx"] == 10 and missing["unaccounted"] == 0
    ok, why = loadgen.sustained(missing)
    assert not ok and why


def test_loadgen_pure_helpers(monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from benchmarks import loadgen

    assert loadgen.parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: x") == (200, 12, False, True)
    assert loadgen.parse_head(b"HTTP/1.1 503 No\r\nconnection: close\r\ncontent-length: 0") == (503, 0, False, False)
    assert loadgen.parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")[2]
    body = b"5\r\nhello\r\n0\r\n\r\n"
    assert loadgen.chunked_end(b"HEAD" + body, 4) == 4 + len(body)
    assert loadgen.chunked_end(b"HEAD" + body[:-2], 4) == -1
    assert loadgen.scheduled_count(1000, 30) == 30_000 and loadgen.scheduled_count(100, 30, 50) == 50
    assert loadgen.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and loadgen.percentile([], 99) is None
    request = loadgen.build_request("POST", "/v1/score", "127.0.0.1", 8000, b"{}")
    assert request.startswith(b"POST /v1/score HTTP/1.1\r\n") and request.endswith(b"Content-Length: 2\r\n\r\n{}")
