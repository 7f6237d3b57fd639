"""dbt reuses its parse of the platform's own data directory instead of re-parsing the project every run."""

from __future__ import annotations

from platform_assets.resources.dbt import PlatformDbtResource, dbt_executable
from platform_assets.settings import PROJECT_ROOT


def _parse(dbt: PlatformDbtResource) -> tuple[object, str]:
    invocation = dbt.cli(["parse"], raise_on_error=True)
    invocation.wait()
    log = (invocation.target_path / "dbt.log").read_text()
    return invocation, log


def test_second_invocation_reuses_the_parse_of_its_data_dir(tmp_path):
    project = str(PROJECT_ROOT / "dbt_project")
    dbt = PlatformDbtResource(project_dir=project, target="local", data_dir=str(tmp_path),
                              dbt_executable=dbt_executable())
    assert not dbt.parse_cache().exists()
    first, first_log = _parse(dbt)
    # target/ holds the parse `make prepare` made for the default data directory: another profile path.
    assert "Unable to do partial parsing" in first_log
    dbt.remember_parse(first)
    assert dbt.parse_cache().is_file()
    _, second_log = _parse(dbt)
    assert "Unable to do partial parsing" not in second_log
    # Another data directory has its own parse: the cache never hands one directory's parse to another.
    other = PlatformDbtResource(project_dir=project, target="local", data_dir=str(tmp_path / "b"),
                                dbt_executable=dbt_executable())
    assert other.parse_cache() != dbt.parse_cache()
