"""A real `mlflow server` for the production-profile tests: runs and the model registry in PostgreSQL, artifacts
proxied by the server (`--serve-artifacts`) to `s3://<bucket>/mlflow` on the S3 API server of tests/s3_server.py.
Clients get only `MLFLOW_TRACKING_URI=http://127.0.0.1:<port>`: no shared folder, no S3 credentials, as in a
deployment (docs/production.md, "MLflow").

    with s3_server(tmp / "s3.log") as s3, mlflow_server(s3, tmp / "mlflow.log") as mlflow:
        env = {**s3.env(), **mlflow.env()}          # MLFLOW_TRACKING_URI for the clients
        ...                                          # mlflow.bucket, mlflow.artifacts_destination

`mlflow_server` creates a bucket and a PostgreSQL database of its own (unique names, PLATFORM_TEST_PG_* or
127.0.0.1:5432 user postgres), waits until `/health` answers, and on exit stops the server's process group and
drops the database. Pass `backend_store_uri` / `bucket` to use ones the caller made instead (then it drops
nothing of theirs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tests.process_helpers import free_port, stop_process_group

PG_HOST = os.environ.get("PLATFORM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PLATFORM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PLATFORM_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("PLATFORM_TEST_PG_PASSWORD", "")
START_SECONDS = 240  # a fresh database is migrated first: ~80 s on this loaded machine


@dataclass(frozen=True)
class MlflowServer:
    url: str
    backend_store_uri: str
    bucket: str
    artifacts_destination: str

    def env(self) -> dict[str, str]:
        """What a client process of the production profile gets: the server, and nothing about artifacts (the
        server chooses `mlflow-artifacts:/` locations and proxies them to S3)."""
        return {"MLFLOW_TRACKING_URI": self.url}


def _pg_url(db: str) -> str:
    auth = quote(PG_USER) + (f":{quote(PG_PASSWORD, safe='')}" if PG_PASSWORD else "")
    return f"postgresql+psycopg://{auth}@{PG_HOST}:{PG_PORT}/{db}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD or None, dbname="postgres",
                         connect_timeout=5, autocommit=True) as con:
        con.execute(sql)


@contextmanager
def mlflow_server(s3, log_path: Path, *, backend_store_uri: str | None = None, bucket: str | None = None,
                  workers: int = 1) -> Iterator[MlflowServer]:
    """Start `mlflow server` on a free 127.0.0.1 port against `s3` (a tests.s3_server.S3Server); see the module."""
    import httpx

    own_db = None
    if backend_store_uri is None:
        own_db = f"platform_test_mlflow_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{own_db}"')
        backend_store_uri = _pg_url(own_db)
    if bucket is None:
        bucket = f"mlflow-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(bucket)
    destination = f"s3://{bucket}/mlflow"
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--backend-store-uri", backend_store_uri, "--serve-artifacts", "--artifacts-destination", destination]
    # Only the server holds the S3 credentials; MLFLOW_S3_ENDPOINT_URL for MLflow versions whose boto3 client
    # ignores AWS_ENDPOINT_URL_S3.
    env = {**os.environ, **s3.env(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint, "MLFLOW_ENABLE_TELEMETRY": "false",
           "DO_NOT_TRACK": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    try:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        server = MlflowServer(f"http://127.0.0.1:{port}", backend_store_uri, bucket, destination)
        try:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not answer /health: see {log_path}")
                time.sleep(0.3)
            yield server
        finally:
            stop_process_group(process)
    finally:
        if own_db:
            _pg_admin(f'DROP DATABASE IF EXISTS "{own_db}" WITH (FORCE)')
