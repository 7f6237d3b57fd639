"""The production profile keeps no IO-manager files (resources/io_manager.py): that is only sound while no step
reads a value another step returned. These tests hold the Definitions to it."""

import dagster as dg
import pytest

from platform_assets.definitions import build_definitions
from platform_assets.resources.io_manager import NoValuesIOManager
from platform_assets.resources.profile import build_resources
from platform_assets.settings import load_settings


def _production(tmp_path):
    return load_settings(environ={"PLATFORM_PROFILE": "production", "PLATFORM_DATA_DIR": str(tmp_path),
                                  "PLATFORM_PARTITION_START": "2026-01-01"})


def test_no_asset_or_op_takes_a_value_input(tmp_path):
    repo = build_definitions(_production(tmp_path)).get_repository_def()
    value_inputs = []
    for assets_def in repo.assets_defs_by_key.values():
        for name in assets_def.keys_by_input_name:
            if not assets_def.node_def.input_def_named(name).dagster_type.is_nothing:
                value_inputs.append((assets_def.node_def.name, name))
    for job in repo.get_all_jobs():
        for node in job.graph.node_defs:
            if not isinstance(node, dg.OpDefinition) or node.name.startswith("__"):
                continue
            value_inputs += [(node.name, i.name) for i in node.input_defs if not i.dagster_type.is_nothing
                             and not any(node is a.node_def for a in repo.assets_defs_by_key.values())]
    assert value_inputs == []


def test_production_binds_the_no_values_io_manager_and_local_keeps_the_default(tmp_path):
    assert isinstance(build_resources(_production(tmp_path))["io_manager"], NoValuesIOManager)
    assert "io_manager" not in build_resources(load_settings(environ={"PLATFORM_DATA_DIR": str(tmp_path)}))


def test_loading_a_value_fails_and_a_none_output_is_fine():
    @dg.asset
    def upstream():
        return None

    @dg.asset
    def downstream(upstream):
        return upstream

    result = dg.materialize([upstream], resources={"io_manager": NoValuesIOManager()})
    assert result.success
    with pytest.raises(dg.Failure, match="passes no values between steps"):
        dg.materialize([upstream, downstream], resources={"io_manager": NoValuesIOManager()})
