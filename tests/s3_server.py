"""An S3 API server for the production-profile tests: moto's standalone server, started as its own process on a
free loopback port. Here it stands where MinIO or AWS S3 stands in a deployment (no MinIO is installable on this
machine); every client reaches it over HTTP with the standard AWS variables, as it would reach MinIO."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.process_helpers import free_port


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self) -> dict[str, str]:
        """The variables every process of the production profile gets (docs/production.md)."""
        return {"AWS_ACCESS_KEY_ID": "platform-test", "AWS_SECRET_ACCESS_KEY": "platform-test-secret",
                "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": self.endpoint}

    def client(self):
        import boto3

        env = self.env()
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"


@contextmanager
def s3_server(log_path: Path) -> Iterator[S3Server]:
    import httpx

    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    server = S3Server(f"http://127.0.0.1:{port}")
    _forget_s3_clients()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(server.endpoint, timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: see {log_path}") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        _forget_s3_clients()


def _forget_s3_clients() -> None:
    """fsspec caches one s3fs instance per set of arguments, and the endpoint comes from the environment, not the
    arguments: a later server on another port would be reached through the previous one's client."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
