"""CI as the README promises it: the GitHub workflow runs the README's test command on pushes to main and the fast
lane on pull requests, each exactly as the Makefile names it; the pre-commit hooks run the project's linters from
the venv and fail on what they should (a repository of bad files), while the repository itself passes them (in
`make lint`, which `make test` and so .ci/run start with)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from platform_assets.settings import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
BIN = Path(sys.executable).parent


def _workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as True
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _commands(job: dict) -> list[str]:
    return [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines()
            if line.strip()]


def _readme_test_command() -> str:
    """The command README's "Two commands" block says CI runs."""
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", (PROJECT_ROOT / "README.md").read_text(), re.DOTALL)
    line = next(line for line in block.group(1).splitlines() if "what CI runs" in line)
    return line.split("#")[0].strip()


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (PROJECT_ROOT / "Makefile").read_text(), re.MULTILINE))


def test_pushes_to_main_run_the_readme_test_command_and_pull_requests_the_fast_lane():
    workflow = _workflow()
    assert workflow["on"] == {"push": {"branches": ["main"]}, "pull_request": None}
    jobs = workflow["jobs"]
    by_event = {job["if"]: job for job in jobs.values()}
    assert set(by_event) == {"github.event_name == 'push'", "github.event_name == 'pull_request'"}
    readme = _readme_test_command()
    assert readme == "make test"
    assert (PROJECT_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == readme
    push, pull = by_event["github.event_name == 'push'"], by_event["github.event_name == 'pull_request'"]
    assert [c for c in _commands(push) if c.startswith("make")] == [readme]
    assert [c for c in _commands(pull) if c.startswith("make")] == ["make test-fast"]
    assert {"test", "test-fast", "lint"} <= _make_targets()
    assert "make test-fast" in (PROJECT_ROOT / "README.md").read_text()


def test_the_full_job_installs_chromium_as_ci_run_does_and_both_cache_uv():
    jobs = _workflow()["jobs"]
    ci_run = (PROJECT_ROOT / ".ci" / "run").read_text()
    install = "apt-get install -y -qq --no-install-recommends chromium"
    assert install in ci_run
    full = next(job for job in jobs.values() if "make test" in _commands(job))
    assert any(install in c for c in _commands(full))
    assert full["container"].startswith("python:3.11-bookworm")  # Debian's /usr/bin/chromium, the Dockerfile's base
    assert "FROM python:3.11-slim-bookworm" in (PROJECT_ROOT / "Dockerfile").read_text()
    for job in jobs.values():
        cache = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/cache@"))
        assert cache["with"]["path"] == "~/.cache/uv"
        assert "hashFiles('uv.lock')" in cache["with"]["key"]


def test_the_hooks_are_local_and_run_the_venvs_linters():
    config = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert set(hooks) == {"ruff", "sqlfluff", "hadolint"}
    for hook in hooks.values():
        assert hook["language"] == "system"
        executable = hook["entry"].split()[0]
        assert executable.startswith(".venv/bin/") and (PROJECT_ROOT / executable).exists(), hook["entry"]
    # the same trees as `make lint`'s ruff
    lint = re.search(r"^lint:.*?\n\t(.*?)\n", (PROJECT_ROOT / "Makefile").read_text(), re.MULTILINE | re.DOTALL)
    trees = lint.group(1).split("ruff check ")[1].split()
    assert hooks["ruff"]["files"] == f"^({'|'.join(trees)})/"


def test_the_hooks_fail_a_repository_of_bad_files(tmp_path):
    """pre-commit itself, on a git repository with our hook config and .sqlfluff: one bad file per linter."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in (".pre-commit-config.yaml", ".sqlfluff"):
        shutil.copy(PROJECT_ROOT / name, repo / name)
    (repo / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    dbt = repo / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project" / "macros", dbt / "macros")
    shutil.copytree(PROJECT_ROOT / "dbt_project" / "sqlfluff_libs", dbt / "sqlfluff_libs")
    shutil.copy(PROJECT_ROOT / "dbt_project" / "dbt_project.yml", dbt / "dbt_project.yml")
    (dbt / "models").mkdir()
    (dbt / "models" / "bad.sql").write_text("select a,b from {{ ref('x') }}\n")  # no space after ","
    (dbt / "models" / "good.sql").write_text("select\n    a,\n    b\nfrom {{ ref('x') }}\n")
    (repo / "platform_assets").mkdir()
    (repo / "platform_assets" / "bad.py").write_text("import os\n")  # unused import
    (repo / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\nRUN cd /tmp && touch x\n")  # DL3003
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    out = subprocess.run([str(BIN / "pre-commit"), "run", "--all-files"], cwd=repo, capture_output=True, text=True,
                         timeout=300, check=False, env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 1, out.stdout + out.stderr
    results = dict(re.findall(r"^(ruff|sqlfluff|hadolint) \(.*?\)\.+(Passed|Failed)$", out.stdout, re.MULTILINE))
    assert results == {"ruff": "Failed", "sqlfluff": "Failed", "hadolint": "Failed"}, out.stdout
    assert "F401" in out.stdout and "DL3003" in out.stdout and "LT01" in out.stdout
    assert "good.sql" not in out.stdout
