"""`make doctor` (python -m platform_assets.tools.doctor): what is missing or in the way, and the command that fixes it.

The common first-day mistakes each have one fix: no dbt manifest yet (`make prepare`), no sample data yet
(`make simulate` or `make demo`), the warehouse not built yet (`make demo`, or Materialize in the UI), and the
DuckDB file locked by another process (name that process, then close or wait for it). Every check is cheap and
read-only: it never opens the warehouse for writing, and imports neither Dagster nor the ML libraries.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import duckdb

from platform_assets.lib.exports import MARTS
from platform_assets.lib.landing import SOURCES, path_glob
from platform_assets.resources.warehouse import locked_message
from platform_assets.settings import Settings, load_settings


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'FIX'}  {self.check}: {self.detail}"


def check_manifest(settings: Settings) -> Finding:
    manifest = settings.dbt_project_dir / "target" / "manifest.json"
    if manifest.exists():
        return Finding("dbt manifest", True, str(manifest))
    return Finding("dbt manifest", False, f"{manifest} is missing: run `make prepare` (dbt parse)")


def check_landing(settings: Settings) -> Finding:
    missing = [s for s in SOURCES if not any((settings.landing_dir / s).rglob("*.csv"))]
    if not missing:
        days = len(list(settings.landing_dir.glob(path_glob("transactions", partitioned=True))))
        return Finding("sample data", True, f"{settings.landing_dir} ({days} days of transactions)")
    return Finding(
        "sample data", False,
        f"no {', '.join(missing)} files under {settings.landing_dir}: run `make simulate` (sample files only) or "
        "`make demo` (sample files and the whole graph)",
    )


def check_warehouse_lock(settings: Settings) -> Finding:
    path = settings.warehouse_path
    if not path.exists():
        return Finding("warehouse", False, f"{path} does not exist yet: run `make demo` or materialize the "
                       "ingestion assets in the UI")
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return Finding("warehouse", False, locked_message(str(path), str(exc)))
        raise
    return Finding("warehouse", True, f"{path} (not locked)")


def check_exports(settings: Settings) -> Finding:
    missing = sorted(m for m in MARTS if not (settings.exports_dir / f"{m}.parquet").exists())
    if not missing:
        return Finding("warehouse exports", True, f"{len(MARTS)} marts in {settings.exports_dir}")
    return Finding("warehouse exports", False, f"{', '.join(missing)} not exported yet: run `make demo` or "
                   "materialize the warehouse group in the UI")


CHECKS = (check_manifest, check_landing, check_warehouse_lock, check_exports)


def diagnose(settings: Settings) -> list[Finding]:
    return [check(settings) for check in CHECKS]


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    settings = load_settings()
    print(f"profile {settings.profile}, data in {settings.data_dir}")
    findings = diagnose(settings)
    for finding in findings:
        print(finding.line())
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
