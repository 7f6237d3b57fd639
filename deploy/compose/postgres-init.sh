#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d): the platform's role and
# one database per store (docs/production.md, "Creating the databases"). The password comes from the env file.
set -euo pipefail
psql -v ON_ERROR_STOP=1 -v password="${PLATFORM_POSTGRES_PASSWORD:?set PLATFORM_POSTGRES_PASSWORD}" \
    --username "${POSTGRES_USER}" --dbname postgres <<'SQL'
CREATE ROLE platform LOGIN PASSWORD :'password';
CREATE DATABASE platform_dagster OWNER platform;
CREATE DATABASE platform_feast OWNER platform;
CREATE DATABASE platform_mlflow OWNER platform;
CREATE DATABASE platform_warehouse OWNER platform;
SQL
