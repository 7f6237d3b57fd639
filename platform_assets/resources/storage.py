"""Where the platform's files live: under its data directory (PLATFORM_DATA_DIR), or, when the production profile
names a shared store (PLATFORM_SHARED_STORE_URL, lib/object_store.py), there, so that every machine sees them.

The folders are `upath.UPath`s: a plain `pathlib.Path` locally, an s3fs-backed path on the shared store, with the
same `/`, `exists`, `open`, `glob`. Give DuckDB, pandas and Dask `str(path)`: a URL they read through httpfs
(`object_store.configure_duckdb`) or s3fs."""


import dagster as dg
from pydantic import Field
from upath import UPath

from platform_assets.settings import (
    DEFAULT_EVIDENTLY_KEEP_DAYS,
    DEFAULT_EVIDENTLY_PORT,
    evidently_workspace_dir,
    exports_dir,
    serving_log_dir,
)


class PlatformStorage(dg.ConfigurableResource):
    data_dir: str = Field(description="The platform data directory")
    shared_root: str = Field(
        default="", description="The shared store's URL (PLATFORM_SHARED_STORE_URL); empty: the data directory"
    )
    evidently_url: str = Field(
        default=f"http://127.0.0.1:{DEFAULT_EVIDENTLY_PORT}",
        description="Where a browser reaches the Evidently UI over the report workspace (report links)",
    )
    evidently_keep_days: int = Field(
        default=DEFAULT_EVIDENTLY_KEEP_DAYS, description="Days of snapshots per report the workspace keeps (0: all)"
    )

    def root(self) -> UPath:
        return UPath(self.shared_root or self.data_dir)

    def exports_dir(self) -> UPath:
        return UPath(exports_dir(self.shared_root or self.data_dir))

    def training_sets_dir(self) -> UPath:
        return self.root() / "training_sets"

    def reports_dir(self) -> UPath:
        return self.root() / "reports"

    def evidently_workspace_dir(self) -> UPath:
        """Where the reports publish their Evidently snapshots: the local workspace `make evidently` serves, or on
        the shared store `<shared store>/evidently`, which `make evidently` mirrors into its local workspace
        (monitoring/workspace.py, `sync`)."""
        if self.shared_root:
            return self.root() / "evidently"
        return UPath(evidently_workspace_dir(self.data_dir))

    def predictions_dir(self) -> UPath:
        return self.root() / "predictions"

    def serving_log_dir(self) -> UPath:
        """The scoring service's prediction log (serving/log.py): on the shared store, one object per upload."""
        return UPath(serving_log_dir(self.shared_root or self.data_dir))

    def served_dir(self) -> UPath:
        """The served predictions as parquet, one file per day (lib/predictions.served_day_path)."""
        return self.root() / "serving" / "served"
