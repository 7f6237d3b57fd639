"""dbt-duckdb plugin of the production (DuckLake) target: DuckDB's extensions from site-packages, the shared
store's S3 secret, and the lake attached as `warehouse`, on every connection dbt opens (dbt_project/profiles.yml).

dbt-duckdb's own `extensions:` runs `INSTALL`, which downloads; its `secrets:` and `attach:` would put the AWS keys
and the catalog's password into the rendered profile, which `dbt debug` prints and dbt.log records. Here they come
from the environment, where the rest of the platform takes them (lib/duckdb_extensions.py, lib/object_store.py,
lib/warehouse_lake.py, which also keeps the password out of its errors)."""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

from platform_assets.lib import duckdb_extensions, object_store, warehouse_lake

CATALOG_ENV = "PLATFORM_WAREHOUSE_CATALOG"


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        self.data_path = plugin_config.get("data_path") or ""
        if not object_store.is_remote(self.data_path):
            raise ValueError(f"the DuckLake target needs its data path on the shared store, got {self.data_path!r}: "
                             "set PLATFORM_SHARED_STORE_URL")

    def configure_connection(self, conn) -> None:
        duckdb_extensions.load(conn, "ducklake", "postgres", "httpfs")
        object_store.configure_duckdb(conn)
        catalog = os.environ.get(CATALOG_ENV)
        if not catalog:
            raise ValueError(f"{CATALOG_ENV} is not set: the production dbt target is the DuckLake warehouse")
        warehouse_lake.attach(conn, catalog, self.data_path)
