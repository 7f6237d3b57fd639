"""dbt on DuckDB, as the `dagster-dbt` resource and project.

`dbt_project/profiles.yml` takes the data directory (and DuckDB's memory limit) from dbt vars, falling back to
the environment, so `dbt build` works standalone from `dbt_project/` and a Dagster run always writes the
warehouse the rest of the platform reads: `PlatformDbtResource` passes the values it was configured with as
`--vars` on every invocation, whatever the caller's environment says. Nothing here touches `os.environ`.

dbt re-parses the whole project (seconds of CPU per invocation) when its vars or profile differ from the last
parse it finds, and dagster-dbt only ever offers it the parse `make prepare` left in `target/`, made for the
default data directory. So the resource keeps the parse of its own data directory beside the warehouse and hands
it to every invocation with the platform's vars only (`remember_parse` stores a fresh one). A daily run's window
vars change each day: those invocations parse fully, as they would anyway.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from pydantic import Field

from platform_assets.lib.files import replacing
from platform_assets.lib.run_workers import exit_with_run_worker
from platform_assets.settings import Settings, exports_dir

DATA_DIR_VAR = "platform_data_dir"
PARTIAL_PARSE = "partial_parse.msgpack"
MEMORY_LIMIT_VAR = "platform_duckdb_memory_limit"
SHARED_ROOT_VAR = "platform_shared_root"


def dbt_project(settings: Settings) -> DbtProject:
    return DbtProject(project_dir=settings.dbt_project_dir, profiles_dir=settings.dbt_project_dir,
                      target=settings.dbt_target)


def dbt_executable() -> str:
    """`platform-dbt` (dbt that dies with its parent, lib/dbt_child.py) beside this interpreter or on PATH, else
    plain dbt from PATH or beside this interpreter (a venv that was not activated)."""
    for name in ("platform-dbt", "dbt"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
        if shutil.which(name):
            return shutil.which(name)
    return str(Path(sys.executable).parent / "dbt")


class ManifestMissingError(FileNotFoundError):
    pass


def require_manifest(project: DbtProject) -> Path:
    """The manifest is built by `make prepare` (dbt parse; `make dev` runs it first), never at import time: say so
    if it is missing. `prepare_if_dev()` is not used: it needs dbt on PATH and races parallel runs
    (dagster#33993)."""
    if not project.manifest_path.exists():
        raise ManifestMissingError(
            f"dbt manifest {project.manifest_path} not found. Build it with `make prepare` "
            "(or `cd dbt_project && dbt parse --profiles-dir .`) before loading the definitions."
        )
    return project.manifest_path


def with_vars(args: list[str], extra: dict[str, str]) -> list[str]:
    """`args` with `extra` merged into its `--vars` (added when absent); a var the caller set wins."""
    args = list(args)
    if "--vars" in args:
        i = args.index("--vars") + 1
        args[i] = json.dumps({**extra, **json.loads(args[i])}, sort_keys=True)
        return args
    return [*args, "--vars", json.dumps(extra, sort_keys=True)]


class PlatformDbtResource(DbtCliResource):
    data_dir: str = Field(description="Platform data directory: the warehouse and exports dbt writes")
    duckdb_memory_limit: str = Field(default="4GB", description="DuckDB spills to disk past this")
    shared_root: str = Field(default="", description="The shared store's URL (production): the DuckLake data files "
                             "and the exports dbt writes live there; empty: under data_dir")

    def platform_vars(self) -> dict[str, str]:
        shared = {SHARED_ROOT_VAR: self.shared_root} if self.shared_root else {}
        return {DATA_DIR_VAR: self.data_dir, MEMORY_LIMIT_VAR: self.duckdb_memory_limit, **shared}

    def exports_dir(self):
        return exports_dir(self.shared_root or self.data_dir)

    def parse_cache(self) -> Path:
        """Where the partial parse of this data directory's vars and target is kept."""
        key = hashlib.sha256(json.dumps([self.platform_vars(), self.target], sort_keys=True).encode()).hexdigest()
        return Path(self.data_dir) / "warehouse" / "dbt-parse" / f"{key[:16]}.msgpack"

    def cli(self, args, *, context=None, target_path: Path | None = None, **kwargs):
        # DuckDB creates neither the warehouse's folder nor the one dbt-duckdb exports parquet into.
        folders = [Path(self.data_dir) / "warehouse"] + ([] if self.shared_root else [exports_dir(self.data_dir)])
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        exit_with_run_worker()  # dbt holds the warehouse: it must not outlive a killed run (lib/run_workers)
        args = list(args)
        target_path = Path(target_path or self._get_unique_target_path(context=context))
        cached = self.parse_cache()
        if "--vars" not in args and cached.exists():
            folder = target_path if target_path.is_absolute() else Path(self.project_dir) / target_path
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, folder / PARTIAL_PARSE)
        return super().cli(with_vars(args, self.platform_vars()), context=context, target_path=target_path,
                           **kwargs)

    def remember_parse(self, invocation) -> None:
        """Keep a finished invocation's parse for the next ones. Call it only for an invocation made without
        `--vars` of its own (its parse then matches the platform's vars). Written aside and moved in, so a
        reader never sees half a file."""
        made = Path(invocation.target_path) / PARTIAL_PARSE
        if not made.exists():
            return
        with replacing(self.parse_cache()) as partial:
            shutil.copyfile(made, partial)
