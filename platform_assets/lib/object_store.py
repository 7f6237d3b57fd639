"""The shared store: where files that every machine must see live in the production profile.

Locally it is the data directory. In production it is a URL, `PLATFORM_SHARED_STORE_URL` (an S3 bucket on AWS,
MinIO or any S3 API): parquet exports, training-set snapshots, DuckLake data files, reports and the prediction log
go there, so a Celery worker needs no folder mounted at the same path as its peers.

Every client is configured by the standard AWS variables, read when it connects, never stored: AWS_ACCESS_KEY_ID
and AWS_SECRET_ACCESS_KEY (secrets), AWS_REGION (default us-east-1), AWS_ENDPOINT_URL_S3 (an S3 API other than
AWS's, e.g. http://minio:9000). boto3 (MLflow's artifact store), s3fs (pandas, Dask, universal-pathlib) read them
themselves; DuckDB gets a secret made from them here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    import duckdb

REMOTE_SCHEMES = ("s3",)


def is_remote(location: str | Path) -> bool:
    return urlparse(str(location)).scheme in REMOTE_SCHEMES


def join(base: str | Path, *parts: str) -> str | Path:
    """`base / part / ...`: a Path stays a Path, a URL stays a URL."""
    if not is_remote(base):
        return Path(base).joinpath(*parts)
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(location: str | Path):
    """The fsspec filesystem of `location` (s3fs for s3://, the local one otherwise)."""
    import fsspec

    return fsspec.url_to_fs(str(location))[0]


def exists(location: str | Path) -> bool:
    if not is_remote(location):
        return Path(location).exists()
    return filesystem(location).exists(str(location))


def s3_secret_sql(environ: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """CREATE SECRET for DuckDB's httpfs from the AWS variables; values go in as parameters."""
    env = os.environ if environ is None else environ
    options = ["TYPE s3", "REGION ?"]
    params = [env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"]
    if env.get("AWS_ACCESS_KEY_ID"):
        options += ["KEY_ID ?", "SECRET ?"]
        params += [env["AWS_ACCESS_KEY_ID"], env.get("AWS_SECRET_ACCESS_KEY", "")]
        if env.get("AWS_SESSION_TOKEN"):
            options.append("SESSION_TOKEN ?")
            params.append(env["AWS_SESSION_TOKEN"])
    else:
        options.append("PROVIDER credential_chain")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options += ["ENDPOINT ?", "URL_STYLE 'path'", f"USE_SSL {'true' if parsed.scheme == 'https' else 'false'}"]
        params.append(parsed.netloc)
    return f"CREATE OR REPLACE SECRET platform_s3 ({', '.join(options)})", params


def configure_duckdb(con: duckdb.DuckDBPyConnection, environ: dict[str, str] | None = None) -> None:
    """Let `con` read and write s3:// URLs of the shared store (httpfs from site-packages, a session secret)."""
    from platform_assets.lib import duckdb_extensions

    duckdb_extensions.load(con, "httpfs")
    sql, params = s3_secret_sql(environ)
    con.execute(sql, params)


__all__ = ["configure_duckdb", "exists", "filesystem", "is_remote", "join", "s3_secret_sql"]
