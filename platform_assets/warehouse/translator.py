"""How dbt resources appear in Dagster: one `warehouse` group, keys equal to model names (seeds and snapshots
prefixed by their schema: `reference/...`, `snapshots/...`), a `layer` tag per folder.

Sources are not translated here: each source table in `dbt_project/models/staging/_raw__sources.yml` names its
upstream Dagster asset (`meta.dagster.asset_key`), which is what joins the dbt graph to ingestion.
"""

from collections.abc import Mapping
from typing import Any

from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from platform_assets.lib import names


class WarehouseTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return names.WAREHOUSE

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        tags = dict(super().get_tags(dbt_resource_props))
        fqn = dbt_resource_props.get("fqn", [])
        if len(fqn) > 2 and fqn[1] in {"staging", "intermediate", "marts"}:
            tags["layer"] = fqn[1]
        elif dbt_resource_props.get("resource_type") == "snapshot":
            tags["layer"] = "snapshots"
        return tags
