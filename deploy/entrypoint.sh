#!/usr/bin/env bash
# Container entrypoint: the Dagster daemon (schedules, sensors, run queue) and the webserver, in one container;
# `serve` as the argument runs the scoring service instead, `evidently` the Evidently UI over the report workspace.
# If either process exits, the container stops, so the orchestrator restarts both.
set -euo pipefail
home="${PLATFORM_HOME:-/opt/platform}"

# `serve`: the real-time scoring service alone (its own container: it scales apart from Dagster).
if [ "${1:-}" = "serve" ]; then
    touch "${TMPDIR:-/tmp}/platform-serve"  # deploy/healthcheck.py then probes the scoring service
    exec python -m platform_assets.serving --host "${PLATFORM_SERVING_HOST}" --port "${PLATFORM_SERVING_PORT}" \
        --workers "${PLATFORM_SERVING_WORKERS:-1}"
fi

# `evidently`: the drift reports' UI (the `report` links in Dagit point at PLATFORM_EVIDENTLY_URL).
if [ "${1:-}" = "evidently" ]; then
    touch "${TMPDIR:-/tmp}/platform-evidently"  # deploy/healthcheck.py then probes the Evidently UI
    exec python -m platform_assets.monitoring.workspace --host "${PLATFORM_EVIDENTLY_HOST}" \
        --port "${PLATFORM_EVIDENTLY_PORT}"
fi

mkdir -p "${DAGSTER_HOME}"
# The local profile's instance config, unless a mounted DAGSTER_HOME (e.g. deploy/production) brings its own.
[ -f "${DAGSTER_HOME}/dagster.yaml" ] || cp "${home}/deploy/local/dagster.yaml" "${DAGSTER_HOME}/dagster.yaml"

dagster-daemon run -w "${home}/workspace.yaml" &
daemon=$!
dagster-webserver -w "${home}/workspace.yaml" -h "${PLATFORM_WEBSERVER_HOST}" -p "${PLATFORM_WEBSERVER_PORT}" &
webserver=$!

trap 'kill -TERM "$daemon" "$webserver" 2>/dev/null' TERM INT
wait -n "$daemon" "$webserver"
status=$?
kill -TERM "$daemon" "$webserver" 2>/dev/null || true
exit "$status"
