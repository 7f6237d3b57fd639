# The platform's code location with the Dagster webserver and daemon.
#   docker build -t fraud-platform .
#   docker run --rm -p 127.0.0.1:3000:3000 -v "$PWD/data:/data" fraud-platform
#   docker run --rm -p 127.0.0.1:8000:8000 -v "$PWD/data:/data" fraud-platform serve   # the scoring service
#   docker run --rm -p 127.0.0.1:8001:8001 -v "$PWD/data:/data" fraud-platform evidently   # the report UI
# Inside the container the webserver must listen on all interfaces for the port mapping to reach it; the
# mapping above publishes it on the host's loopback only.
# The platform runs as uid 10001: a mounted data folder must be writable by it (e.g. `chown -R 10001 data`).
FROM python:3.11-slim-bookworm

ARG UV_VERSION=0.13.9
ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PATH="/opt/platform/.venv/bin:${PATH}" \
    PLATFORM_DATA_DIR=/data \
    DAGSTER_HOME=/data/dagster \
    PLATFORM_WEBSERVER_HOST=0.0.0.0 \
    PLATFORM_WEBSERVER_PORT=3000 \
    PLATFORM_SERVING_HOST=0.0.0.0 \
    PLATFORM_SERVING_PORT=8000 \
    PLATFORM_EVIDENTLY_HOST=0.0.0.0 \
    PLATFORM_EVIDENTLY_PORT=8001 \
    DO_NOT_TRACK=1 \
    MLFLOW_ENABLE_TELEMETRY=false \
    DAGSTER_DISABLE_TELEMETRY=1

RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && groupadd --gid 10001 platform \
    && useradd --create-home --uid 10001 --gid 10001 platform

WORKDIR /opt/platform

# Dependencies first, from the lock file only, so code changes do not reinstall them.
COPY pyproject.toml uv.lock .python-version README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY platform_assets ./platform_assets
COPY dbt_project ./dbt_project
COPY feature_repo ./feature_repo
COPY workspace.yaml ./
COPY deploy ./deploy
RUN uv sync --frozen --no-dev

# dbt's manifest is built into the image: the definitions never parse dbt at load time. Parsed with the vars
# PlatformDbtResource passes for the image's data dir, so runs reuse this parse instead of re-parsing.
WORKDIR /opt/platform/dbt_project
RUN dbt parse --profiles-dir . --quiet --vars '{"platform_data_dir": "/data", "platform_duckdb_memory_limit": "4GB"}' \
    && rm -rf logs \
    && mkdir -p /data && chown -R 10001:10001 /data /opt/platform/dbt_project
WORKDIR /opt/platform

# Numeric, so an orchestrator that only runs non-root images (Kubernetes runAsNonRoot) can verify it (DL3066).
USER 10001:10001
VOLUME ["/data"]
EXPOSE 3000 8000 8001
# The webserver's /server_info, the scoring service's /healthz when the container runs `serve`, the Evidently UI
# when it runs `evidently`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "/opt/platform/deploy/healthcheck.py"]
ENTRYPOINT ["/opt/platform/deploy/entrypoint.sh"]
