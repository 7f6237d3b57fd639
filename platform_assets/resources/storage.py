"""Where the platform's files live under its data directory (PLATFORM_DATA_DIR)."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from platform_assets.settings import (
    DEFAULT_EVIDENTLY_KEEP_DAYS,
    DEFAULT_EVIDENTLY_PORT,
    evidently_workspace_dir,
    exports_dir,
    serving_log_dir,
)


class PlatformStorage(dg.ConfigurableResource):
    data_dir: str = Field(description="The platform data directory")
    evidently_url: str = Field(
        default=f"http://127.0.0.1:{DEFAULT_EVIDENTLY_PORT}",
        description="Where a browser reaches the Evidently UI over the report workspace (report links)",
    )
    evidently_keep_days: int = Field(
        default=DEFAULT_EVIDENTLY_KEEP_DAYS, description="Days of snapshots per report the workspace keeps (0: all)"
    )

    def exports_dir(self) -> Path:
        return exports_dir(self.data_dir)

    def training_sets_dir(self) -> Path:
        return Path(self.data_dir) / "training_sets"

    def reports_dir(self) -> Path:
        return Path(self.data_dir) / "reports"

    def evidently_workspace_dir(self) -> Path:
        return evidently_workspace_dir(self.data_dir)

    def predictions_dir(self) -> Path:
        return Path(self.data_dir) / "predictions"

    def serving_log_dir(self) -> Path:
        return serving_log_dir(self.data_dir)

    def served_dir(self) -> Path:
        """The served predictions as parquet, one file per day (lib/predictions.served_day_path)."""
        return Path(self.data_dir) / "serving" / "served"
