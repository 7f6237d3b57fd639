"""The landing-zone layout: where a source system drops each file. Written here once; the simulator writes it,
ingestion reads it, `make doctor` inspects it, and docs/data-contracts.md documents it.

    <landing>/<source>/<source>.csv                    full snapshots (customers, merchants)
    <landing>/<source>/date=YYYY-MM-DD/<source>.csv    daily files (transactions, chargebacks)
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

SNAPSHOT_SOURCES = ("customers", "merchants")
DAILY_SOURCES = ("transactions", "chargebacks")
SOURCES = SNAPSHOT_SOURCES + DAILY_SOURCES


def snapshot_path(landing_dir: Path, source: str) -> Path:
    return Path(landing_dir) / source / f"{source}.csv"


def partition_path(landing_dir: Path, source: str, day: date) -> Path:
    return Path(landing_dir) / source / f"date={day.isoformat()}" / f"{source}.csv"


def path_glob(source: str, partitioned: bool) -> str:
    """The files of one source, relative to the landing zone."""
    return f"{source}/date=*/{source}.csv" if partitioned else f"{source}/{source}.csv"
