"""The landing-zone layout: where a source system drops each file. Written here once; the simulator writes it,
ingestion reads it, `make doctor` inspects it, and docs/data-contracts.md documents it.

    <landing>/<source>/<source>.csv                    full snapshots (customers, merchants)
    <landing>/<source>/date=YYYY-MM-DD/<source>.csv    daily files (transactions, chargebacks)
"""

from __future__ import annotations

import re
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


def partition_day(folder_name: str) -> date | None:
    """The day of a `date=YYYY-MM-DD` folder, or None for any other name (no path tricks, no impossible days)."""
    match = re.fullmatch(r"date=(\d{4}-\d{2}-\d{2})", folder_name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def landed_files(landing_dir: Path) -> dict[str, tuple[str, date | None]]:
    """Every landing file in the layout, by path relative to `landing_dir`: (source, day or None). Folders that
    are not a day and files of other names are not landing files and are left out."""
    root = Path(landing_dir)
    found: dict[str, tuple[str, date | None]] = {}
    for source in SNAPSHOT_SOURCES:
        if snapshot_path(root, source).is_file():
            found[f"{source}/{source}.csv"] = (source, None)
    for source in DAILY_SOURCES:
        folder = root / source
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            day = partition_day(child.name)
            if day is not None and partition_path(root, source, day).is_file():
                found[f"{source}/{child.name}/{source}.csv"] = (source, day)
    return found


def first_landed_day(landing_dir: Path) -> date | None:
    """The earliest day any daily source has a folder for, or None when nothing has landed: where the daily
    partitions start unless `PLATFORM_PARTITION_START` pins it. Reads two folder listings, no file."""
    days = [day for source in DAILY_SOURCES if (Path(landing_dir) / source).is_dir()
            for day in map(partition_day, (child.name for child in (Path(landing_dir) / source).iterdir()))
            if day is not None]
    return min(days, default=None)
