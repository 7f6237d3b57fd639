"""Every `bash` block of docs/*.md runs, in document order, against a platform built by the demo's code.

A block passes when it exits 0 and its output contains the text of the `<!-- expect: ... -->` line right before
it, if any. Blocks of one page share the platform (the rollback undoes the promotion made before it), so they
run in order; each runs in a fresh `bash -euo pipefail` from the repository root with the platform's
PLATFORM_DATA_DIR and DAGSTER_HOME. docs/benchmarks.md is left out: its commands are the benchmarks themselves
(`make bench`), far too slow for `make test`. Commands in docs/production.md are `sh` blocks that start servers
or create databases; tests/integration/test_production_profile.py runs that profile for real.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from platform_assets.settings import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
SKIPPED_PAGES = {"benchmarks.md"}
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "docs"
FENCE = re.compile(r"(?:^<!--[ \t]*expect:[ \t]*(?P<expect>[^\n]*?)[ \t]*-->[ \t]*\n)?^```bash[^\n]*\n(?P<body>.*?)\n```",
                   re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    body: str
    expect: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def doc_commands(docs: Path = DOCS) -> list[DocCommand]:
    commands = []
    for page in sorted(docs.glob("*.md")):
        if page.name in SKIPPED_PAGES:
            continue
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("body"))
            commands.append(DocCommand(page.name, line, match.group("body"), match.group("expect")))
    return commands


COMMANDS = doc_commands()


@pytest.fixture(scope="module", autouse=True)
def _fresh_artifacts():
    """Only this run's command logs: line numbers move when the docs change."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)


def test_the_fence_parser_finds_blocks_and_their_expectations(tmp_path):
    (tmp_path / "a.md").write_text("text\n<!-- expect: hello -->\n```bash\necho hello\n```\n\n```python\nx\n```\n"
                                   "```bash\ntrue\n```\n")
    found = doc_commands(tmp_path)
    assert [(c.line, c.body, c.expect) for c in found] == [(3, "echo hello", "hello"), (10, "true", None)]


def test_the_how_tos_have_commands():
    pages = {c.page for c in COMMANDS}
    assert "how-to.md" in pages
    assert len([c for c in COMMANDS if c.page == "how-to.md"]) >= 8


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_doc_command_runs(command, demo_platform):
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", command.body], cwd=PROJECT_ROOT, env=demo_platform.env,
                         capture_output=True, text=True, timeout=600, check=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"{command.id.replace(':', '-L')}.log"
    log.write_text(f"$ {command.body}\n\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}\n--- exit {out.returncode}\n")
    assert out.returncode == 0, f"{command.id} failed (log: {log}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    if command.expect:
        assert command.expect in out.stdout + out.stderr, f"{command.id}: {command.expect!r} not in output ({log})"
