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


def arrow_filesystem(location: str | Path):
    """The `filesystem=` argument pyarrow's readers take for `location`: s3fs (configured by the AWS variables,
    as every other client) for a URL, None (pyarrow's local one) for a path. pyarrow's own S3 client is not used:
    it would need its own endpoint configuration."""
    return filesystem(location) if is_remote(location) else None


def write_bytes(location: str | Path, data: bytes) -> None:
    """Write a whole file: on the shared store one PUT (a reader sees the old object or the new one, there is no
    rename), locally through a temporary file and an atomic rename (a reader never sees half of it)."""
    if is_remote(location):
        with filesystem(location).open(str(location), "wb") as out:
            out.write(data)
        return
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def publish_file(local: Path, location: str | Path) -> None:
    """Move a finished local file to `location`: an atomic rename on the same disk, an upload of the whole object
    (then the local file is removed) to the shared store."""
    if is_remote(location):
        filesystem(location).put_file(str(local), str(location))
        Path(local).unlink()
        return
    Path(location).parent.mkdir(parents=True, exist_ok=True)
    os.replace(local, location)


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
        # Resolved when a request needs it (the chain may only answer inside the pod), not at CREATE SECRET.
        options += ["PROVIDER credential_chain", "VALIDATION 'none'"]
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options += ["ENDPOINT ?", "URL_STYLE 'path'", f"USE_SSL {'true' if parsed.scheme == 'https' else 'false'}"]
        params.append(parsed.netloc)
    return f"CREATE OR REPLACE SECRET platform_s3 ({', '.join(options)})", params


def configure_duckdb(con: duckdb.DuckDBPyConnection, environ: dict[str, str] | None = None) -> None:
    """Let `con` read and write s3:// URLs of the shared store (httpfs from site-packages, a session secret)."""
    from platform_assets.lib import duckdb_extensions

    env = os.environ if environ is None else environ
    # Without static keys the secret's credential_chain provider is the aws extension's (instance profile, IRSA).
    duckdb_extensions.load(con, "httpfs", *(() if env.get("AWS_ACCESS_KEY_ID") else ("aws",)))
    sql, params = s3_secret_sql(environ)
    con.execute(sql, params)


__all__ = ["arrow_filesystem", "configure_duckdb", "exists", "filesystem", "is_remote", "join", "publish_file",
           "s3_secret_sql", "write_bytes"]
