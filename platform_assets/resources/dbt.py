"""dbt on DuckDB, as the `dagster-dbt` resource and project.

`dbt_project/profiles.yml` reads PLATFORM_DATA_DIR, so that `dbt build` works standalone from `dbt_project/`.
`dagster-dbt` passes the current process environment to dbt; `PlatformDbtResource` adds the data directory it
was configured with, so a run always writes the warehouse the rest of the platform reads, whatever the caller's
environment says.
"""

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from pydantic import Field

from platform_assets.settings import dbt_environment, exports_dir, load_settings

_settings = load_settings()

dbt_project = DbtProject(
    project_dir=_settings.dbt_project_dir,
    profiles_dir=_settings.dbt_project_dir,
    target=_settings.profile,
)


def dbt_executable() -> str:
    """dbt from PATH, else the one installed beside this interpreter (a venv that was not activated)."""
    beside = Path(sys.executable).parent / "dbt"
    return shutil.which("dbt") or str(beside)


class ManifestMissingError(FileNotFoundError):
    pass


def require_manifest(project: DbtProject = dbt_project) -> Path:
    """The manifest is built by `make prepare` (dbt parse; `make dev` runs it first), never at import time: say so
    if it is missing. `prepare_if_dev()` is not used: it needs dbt on PATH and races parallel runs
    (dagster#33993)."""
    if not project.manifest_path.exists():
        raise ManifestMissingError(
            f"dbt manifest {project.manifest_path} not found. Build it with `make prepare` "
            "(or `cd dbt_project && dbt parse --profiles-dir .`) before loading the definitions."
        )
    return project.manifest_path


@contextmanager
def _environment(extra: dict[str, str]):
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class PlatformDbtResource(DbtCliResource):
    data_dir: str = Field(description="Platform data directory: the warehouse and exports dbt writes")

    def cli(self, args, **kwargs):
        # DuckDB creates neither the warehouse's folder nor the one dbt-duckdb exports parquet into.
        for folder in (Path(self.data_dir) / "warehouse", exports_dir(self.data_dir)):
            folder.mkdir(parents=True, exist_ok=True)
        # dbt starts inside cli(); the variables only need to be there while the process is spawned.
        with _environment(dbt_environment(self.data_dir, self.target or "local")):
            return super().cli(args, **kwargs)
