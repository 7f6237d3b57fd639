"""The Feast feature store, configured from `feature_repo/` without forking it.

`feature_repo/` stays a plain Feast repository (`feast apply` works there from the CLI). Its
`feature_store*.yaml` files carry `${PLATFORM_...}` placeholders; this resource fills them from its own fields,
so a Dagster run, a test on a temporary directory and a notebook all resolve the same repository to their own
data directory. The definitions module is loaded from its file and asked to build its objects for our exports
directory, because Feast's own loader caches modules by name and would pin the first directory it saw.
"""

from __future__ import annotations

import importlib.util
import json
import re
import string
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import yaml
from pydantic import Field

from platform_assets.settings import exports_dir

DEFINITIONS_MODULE = "fraud_features.py"


def _substitute(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return string.Template(node).safe_substitute(variables)
    if isinstance(node, dict):
        return {k: _substitute(v, variables) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, variables) for v in node]
    return node


class FeastResource(dg.ConfigurableResource):
    repo_path: str = Field(description="The Feast repository (feature_repo/)")
    feature_store_yaml: str = Field(description="feature_store.yaml of the active profile")
    data_dir: str = Field(description="The platform data directory: exports are read, local stores written here")
    shared_root: str = Field(default="", description="The shared store's URL, where the exports live in production "
                             "(PLATFORM_SHARED_STORE_URL); empty: under data_dir")
    project: str | None = Field(default=None, description="Feast project; overrides the yaml's (PLATFORM_FEAST_PROJECT)")
    registry_url: str | None = Field(default=None, description="SQL registry URL (production profile)")
    redis_url: str | None = Field(default=None, description="Redis online store host:port (production profile)")

    def render_config(self) -> dict[str, Any]:
        variables = {"PLATFORM_DATA_DIR": self.data_dir}
        if self.registry_url:
            variables["PLATFORM_FEAST_REGISTRY_URL"] = self.registry_url
        if self.redis_url:
            variables["PLATFORM_REDIS_URL"] = self.redis_url
        # Substitute into the parsed values, not the text: a path holding " #" or ": " must stay one value.
        config = _substitute(yaml.safe_load(Path(self.feature_store_yaml).read_text()), variables)
        if self.project:
            config["project"] = self.project
        unresolved = re.findall(r"\$\{(\w+)\}", json.dumps(config))
        if unresolved:
            raise ValueError(
                f"{self.feature_store_yaml} needs {sorted(set(unresolved))}: set them in the environment of the "
                "active profile (see docs/production.md)"
            )
        return config

    def repo_config(self):
        from feast.repo_config import RepoConfig

        raw = self.render_config()
        registry = raw.get("registry") or {}
        registry = {"path": registry} if isinstance(registry, str) else registry
        if registry.get("path") and registry.get("registry_type", "file") == "file":
            Path(registry["path"]).parent.mkdir(parents=True, exist_ok=True)
        online = raw.get("online_store") or {}
        if online.get("type") == "sqlite" or str(online.get("type", "")).endswith("SqliteOnlineStore"):
            Path(online["path"]).parent.mkdir(parents=True, exist_ok=True)
        config = RepoConfig(**raw)
        config.repo_path = Path(self.repo_path)
        return config

    def store(self):
        from feast import FeatureStore

        return FeatureStore(repo_path=self.repo_path, config=self.repo_config())

    def online_store_problem(self):
        """The cheap probe of this profile's online store (lib/online_store_health): a `Problem` when it is
        missing, corrupt, emptied or unreachable, else None. Reads a few bytes of the SQLite file, or pings Redis
        and looks for one key of the project: cheap enough for a sensor tick."""
        from platform_assets.lib import online_store_health as health

        config = self.render_config()
        online = config.get("online_store") or {}
        if health.is_sqlite(online):
            path = Path(online["path"])
            return health.sqlite_problem(path if path.is_absolute() else Path(self.repo_path) / path,
                                         config["project"])
        if health.is_redis(online):
            from feast.infra.online_stores.helpers import get_online_store_from_config

            repo_config = self.repo_config()
            return health.redis_problem(get_online_store_from_config(repo_config.online_store), repo_config)
        return None

    def definitions_module(self) -> ModuleType:
        path = Path(self.repo_path) / DEFINITIONS_MODULE
        spec = importlib.util.spec_from_file_location("_platform_feature_definitions", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def feature_objects(self):
        """The repository's entities, sources, views and services, built for this resource's exports dir."""
        return self.definitions_module().build_feature_objects(exports_dir(self.shared_root or self.data_dir))

