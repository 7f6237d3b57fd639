"""tools.relocate's path rewriting (the stores themselves are relocated for real in tests/e2e/test_relocate.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from platform_assets.settings import PROJECT_ROOT
from platform_assets.tools.relocate import main, path_rewriter


def test_paths_are_rewritten_at_path_boundaries_only():
    old, new = Path("/srv/data"), Path("/mnt/new place")
    rewrite = path_rewriter(old, new)
    assert rewrite("file:///srv/data/mlflow/artifacts") == "file:///mnt/new%20place/mlflow/artifacts"
    assert rewrite("/srv/data/training_sets/x.parquet") == "/mnt/new place/training_sets/x.parquet"
    assert rewrite('{"path": "/srv/data"}') == '{"path": "/mnt/new place"}'
    assert rewrite("read_parquet('/srv/data/exports/a.parquet')") == "read_parquet('/mnt/new place/exports/a.parquet')"
    assert rewrite("/srv/data2/x and /srv/database") == "/srv/data2/x and /srv/database"
    # NEW inside OLD: one pass, nothing is relocated twice.
    assert path_rewriter(old, old / "moved")("/srv/data/x file:///srv/data/y") == "/srv/data/moved/x file:///srv/data/moved/y"


def test_a_quote_in_the_new_path_is_escaped_for_sql():
    rewrite = path_rewriter(Path("/a"), Path("/b/it's"), escape=lambda text: text.replace("'", "''"))
    assert rewrite("read_parquet('/a/x.parquet')") == "read_parquet('/b/it''s/x.parquet')"


def test_the_command_refuses_a_relative_old_path_and_a_missing_new_one(tmp_path):
    with pytest.raises(SystemExit):
        main(["relative/old"])
    out = subprocess.run([sys.executable, "-m", "platform_assets.tools.relocate", str(tmp_path / "a"),
                          str(tmp_path / "b")], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 1 and "is not a directory" in out.stderr


def test_a_new_place_inside_the_old_one_is_refused(tmp_path):
    """/a -> /a/b could not be re-run safely (/a/b/x would become /a/b/b/x): it is refused before anything is
    written."""
    import pytest

    from platform_assets.tools.relocate import relocate

    new = tmp_path / "inside"
    new.mkdir()
    with pytest.raises(ValueError, match="inside"):
        relocate(tmp_path, new)
