#!/usr/bin/env bash
# Container entrypoint. Without an argument: the Dagster daemon (schedules, sensors, run queue) and the webserver,
# in one container (if either exits, the container stops, so the orchestrator restarts both). With a mode, one
# process of the production profile per container (deploy/compose.yaml, deploy/k8s/):
#   serve              the real-time scoring service (it scales apart from Dagster)
#   evidently          the Evidently UI over the report workspace
#   webserver, daemon  the Dagster webserver or daemon alone (a workspace of gRPC code servers: DAGSTER_WORKSPACE)
#   code-server        the platform's code location as a gRPC server (`dagster code-server start`)
#   celery-worker      a Celery worker executing the steps of runs (deploy/production/dagster_celery_config.py)
#   velocity-consumer  the online velocity consumer (streams -> velocity state in the online store)
#   mlflow-server      the MLflow tracking server, proxying the artifact store (clients need no shared path)
#   dask-scheduler, dask-worker  the dask.distributed cluster fraud_model trains on (PLATFORM_DASK_SCHEDULER)
# Any other command runs as given: the official Dagster Helm chart starts user code and run workers with `args`
# (`dagster code-server start ...`, `dagster api execute_run ...`), keeping this entrypoint.
set -euo pipefail
home="${PLATFORM_HOME:-/opt/platform}"
mode="${1:-}"

# The instance file of the profile, unless a mounted DAGSTER_HOME brings its own.
instance() {
    mkdir -p "${DAGSTER_HOME}"
    [ -f "${DAGSTER_HOME}/dagster.yaml" ] \
        || cp "${home}/deploy/${PLATFORM_PROFILE:-local}/dagster.yaml" "${DAGSTER_HOME}/dagster.yaml"
}
workspace="${DAGSTER_WORKSPACE:-${home}/workspace.yaml}"

# deploy/healthcheck.py (the image's HEALTHCHECK) probes what this mode runs.
printf '%s' "${mode}" > "${TMPDIR:-/tmp}/platform-mode"

case "${mode}" in
    serve)
        touch "${TMPDIR:-/tmp}/platform-serve"  # deploy/healthcheck.py then probes the scoring service
        exec python -m platform_assets.serving --host "${PLATFORM_SERVING_HOST}" --port "${PLATFORM_SERVING_PORT}" \
            --workers "${PLATFORM_SERVING_WORKERS:-1}"
        ;;
    evidently)
        touch "${TMPDIR:-/tmp}/platform-evidently"  # deploy/healthcheck.py then probes the Evidently UI
        exec python -m platform_assets.monitoring.workspace --host "${PLATFORM_EVIDENTLY_HOST}" \
            --port "${PLATFORM_EVIDENTLY_PORT}"
        ;;
    webserver)
        instance
        exec dagster-webserver -w "${workspace}" -h "${PLATFORM_WEBSERVER_HOST}" -p "${PLATFORM_WEBSERVER_PORT}"
        ;;
    daemon)
        instance
        exec dagster-daemon run -w "${workspace}"
        ;;
    code-server)
        instance
        exec dagster code-server start -h "${PLATFORM_CODE_SERVER_HOST:-0.0.0.0}" \
            -p "${PLATFORM_CODE_SERVER_PORT:-4000}" -m platform_assets.definitions -a defs \
            --location-name platform_assets
        ;;
    celery-worker)
        instance
        # deploy/production on PYTHONPATH: dagster_celery.app reads dagster_celery_config.py (URLs from the
        # environment, never from a file).
        export PYTHONPATH="${home}/deploy/production${PYTHONPATH:+:${PYTHONPATH}}"
        exec celery -A dagster_celery.app worker --loglevel=INFO \
            --concurrency="${PLATFORM_CELERY_CONCURRENCY:-2}" --hostname="platform@%h"
        ;;
    velocity-consumer)
        exec python -m platform_assets.features.velocity_online
        ;;
    mlflow-server)
        # Both URIs from the environment: the backend store's holds a password.
        exec mlflow server --backend-store-uri "${MLFLOW_BACKEND_STORE_URI}" \
            --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION}" --serve-artifacts \
            --host "${PLATFORM_MLFLOW_HOST:-0.0.0.0}" --port "${PLATFORM_MLFLOW_PORT:-5000}" \
            --allowed-hosts "${PLATFORM_MLFLOW_ALLOWED_HOSTS:-localhost,127.0.0.1,mlflow,mlflow:5000}"
        ;;
    dask-scheduler)
        exec dask scheduler --host "${PLATFORM_DASK_HOST:-0.0.0.0}" --port "${PLATFORM_DASK_PORT:-8786}" \
            --dashboard-address "${PLATFORM_DASK_HOST:-0.0.0.0}:${PLATFORM_DASK_DASHBOARD_PORT:-8787}"
        ;;
    dask-worker)
        # Named after the host (a container's or pod's own): deploy/healthcheck.py asks the scheduler for it.
        host=()
        [ -z "${PLATFORM_DASK_WORKER_HOST:-}" ] || host=(--host "${PLATFORM_DASK_WORKER_HOST}")
        exec dask worker "${PLATFORM_DASK_SCHEDULER}" --name "$(hostname)" --nworkers 1 --no-dashboard "${host[@]}" \
            --nthreads "${PLATFORM_DASK_THREADS:-2}" --memory-limit "${PLATFORM_DASK_MEMORY_LIMIT:-auto}"
        ;;
    "")
        ;;
    *)
        exec "$@"
        ;;
esac

instance
dagster-daemon run -w "${workspace}" &
daemon=$!
dagster-webserver -w "${workspace}" -h "${PLATFORM_WEBSERVER_HOST}" -p "${PLATFORM_WEBSERVER_PORT}" &
webserver=$!

trap 'kill -TERM "$daemon" "$webserver" 2>/dev/null' TERM INT
wait -n "$daemon" "$webserver"
status=$?
kill -TERM "$daemon" "$webserver" 2>/dev/null || true
exit "$status"
