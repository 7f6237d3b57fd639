"""dbt-duckdb plugin of the production (DuckLake) target: DuckDB's extensions from site-packages and the shared
store's S3 secret, on every connection dbt opens, before dbt attaches the lake (dbt_project/profiles.yml).

dbt-duckdb's own `extensions:` runs `INSTALL`, which downloads; its `secrets:` would put the AWS keys into the
profile's rendered config. Here both come from where the rest of the platform takes them
(lib/duckdb_extensions.py, lib/object_store.py)."""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from platform_assets.lib import duckdb_extensions, object_store


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        duckdb_extensions.load(conn, "ducklake", "postgres", "httpfs")
        object_store.configure_duckdb(conn)
