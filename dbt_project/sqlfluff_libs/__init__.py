"""What sqlfluff's jinja templater (../../.sqlfluff) puts in the models' context on top of its dbt builtins.

Its builtin `var()` returns the placeholder string "item", which breaks macros that compute with a var
(`feature_calendar` adds 1 to `longest_window_days`). Here `var()` answers with the defaults of dbt_project.yml,
as a standalone `dbt build` does.
"""

from pathlib import Path

import yaml

_VARS = yaml.safe_load((Path(__file__).resolve().parent.parent / "dbt_project.yml").read_text()).get("vars") or {}


def var(name, default=None):
    return _VARS.get(name, default)
