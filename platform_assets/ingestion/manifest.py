"""`landed_files`: the manifest of the landing zone, the file-level truth of what raw holds.

The loader writes one row per load of a file into `raw.landed_files`, in the same transaction as the rows
(`loader.py`), so the manifest never claims a file whose rows are not in. This asset shows that table in the UI
and compares it with what is in the landing zone now: a file that is there but not loaded, or whose bytes
changed since it was loaded, is *pending* until its day is loaded again (the landing sensor does that within its
lookback window; older days need a backfill from the UI).
"""

from pathlib import Path

import dagster as dg

from platform_assets.ingestion.loader import MANIFEST_DDL
from platform_assets.ingestion.reader import content_hash
from platform_assets.lib import landing, names
from platform_assets.resources import LandingZone, WarehouseResource

LATEST = """
SELECT source, partition_date, path, size_bytes, sha256, encoding, compression, data_lines, rows_loaded,
       rows_quarantined, reference_quarantined, problem, loaded_at
FROM (SELECT *, row_number() OVER (PARTITION BY source, partition_date ORDER BY loaded_at DESC, rowid DESC) AS n
      FROM raw.landed_files)
WHERE n = 1 ORDER BY source, partition_date
"""


def pending_files(landing_dir: Path, latest: dict[str, str]) -> list[str]:
    """Landing files not loaded in their current bytes (`latest`: path -> sha256 of the last load)."""
    return sorted(rel for rel in landing.landed_files(landing_dir)
                  if latest.get(rel) != content_hash((Path(landing_dir) / rel).read_bytes()))


def _markdown(rows: list[tuple]) -> str:
    head = "| source | day | rows loaded | quarantined | encoding | loaded at | problem |\n|---|---|---|---|---|---|---|"
    lines = [f"| {r[0]} | {r[1] or 'snapshot'} | {r[8]:,} | {r[9]:,} | {r[5]}/{r[6]} | {r[12]:%Y-%m-%d %H:%M} | "
             f"{(r[11] or '')[:80]} |" for r in rows]
    return "\n".join([head, *lines])


@dg.asset(
    key=names.LANDED_FILES,
    group_name=names.INGESTION,
    kinds={"duckdb", "csv"},
    deps=list(names.RAW),
    pool=names.DUCKDB_WRITER_POOL,
    check_specs=[dg.AssetCheckSpec(names.LANDED_FILES_CHECK, asset=names.LANDED_FILES,
                                   description="Every file in the landing zone is loaded in its current bytes")],
    description="The manifest of landed files (raw.landed_files): per file its path, size, SHA-256, encoding, "
                "counts and load time; and the files of the landing zone that are not loaded yet.",
    tags={"layer": "raw"},
)
def landed_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 landing_zone: LandingZone) -> dg.MaterializeResult:
    with warehouse.get_connection() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(MANIFEST_DDL)
        rows = con.execute(LATEST).fetchall()
        loads = con.execute("SELECT count(*) FROM raw.landed_files").fetchone()[0]
    pending = pending_files(Path(landing_zone.path), {r[2]: r[4] for r in rows})
    refused = [f"{r[2]}: {r[11]}" for r in rows if r[11]]
    by_source = {}
    for r in rows:
        by_source.setdefault(r[0], {"files": 0, "rows_loaded": 0, "rows_quarantined": 0})
        by_source[r[0]]["files"] += 1
        by_source[r[0]]["rows_loaded"] += r[8]
        by_source[r[0]]["rows_quarantined"] += r[9]
    context.log.info(f"{len(rows)} files loaded ({loads} loads in all), {len(pending)} pending, {len(refused)} refused")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "loads": loads,
            "by_source": dg.MetadataValue.json(by_source),
            "pending_files": dg.MetadataValue.json(pending[:50]),
            "refused_files": dg.MetadataValue.json(refused[:50]),
            "newest_loads": dg.MetadataValue.md(_markdown(sorted(rows, key=lambda r: r[12], reverse=True)[:20])),
            "table": "raw.landed_files",
        },
        check_results=[dg.AssetCheckResult(
            check_name=names.LANDED_FILES_CHECK, passed=not pending, severity=dg.AssetCheckSeverity.WARN,
            metadata={"pending": len(pending)},
            description=None if not pending else f"{len(pending)} landing file(s) not loaded in their current "
            f"bytes, e.g. {pending[0]}: the landing sensor loads days within its lookback window; materialize "
            "older days from the UI",
        )],
    )
