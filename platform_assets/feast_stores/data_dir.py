"""`${PLATFORM_DATA_DIR}` in `feature_repo/feature_store.yaml` when the `feast` CLI runs with nothing exported.

Feast fills `${VAR}` placeholders with `os.path.expandvars`, which has no default: with `PLATFORM_DATA_DIR` unset
the registry would be looked up under `feature_repo/${PLATFORM_DATA_DIR}/`. dbt's profile falls back to the
project's data directory (`env_var('PLATFORM_DATA_DIR', '../data')`); the registry store below and the online
store's config (sqlite_online.py) give Feast the same fallback, `../data`, which Feast resolves against the
repository (`feature_repo/`), so `feast feature-views list` or `feast ui` work there right after `make demo`.
An exported `PLATFORM_DATA_DIR` (Feast has then substituted it already) and the paths `FeastResource` renders for
a Dagster run are absolute and pass through unchanged.
"""

from __future__ import annotations

from feast.infra.registry.file import FileRegistryStore

PLACEHOLDER = "${PLATFORM_DATA_DIR}"
# The project's data directory seen from feature_repo/ (as from dbt_project/); relative, so Feast joins it to the
# repository path it was started with.
DEFAULT = "../data"
REGISTRY_STORE_TYPE = "platform_assets.feast_stores.data_dir.DataDirFileRegistryStore"


def resolve(path: str) -> str:
    """`path` with an unfilled `${PLATFORM_DATA_DIR}` replaced by the project's data directory."""
    return path.replace(PLACEHOLDER, DEFAULT)


class DataDirFileRegistryStore(FileRegistryStore):
    """Feast's file registry (`registry: {path: ..., registry_store_type: <this class>}`), its path defaulting to
    the project's data directory."""

    def __init__(self, registry_config, repo_path):
        super().__init__(registry_config.model_copy(update={"path": resolve(registry_config.path)}), repo_path)
