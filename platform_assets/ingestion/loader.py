"""Landing-zone files -> DuckDB `raw` tables, with a quarantine. Plain functions over a DuckDB connection.

A load is one DuckDB transaction: either every file of the request is in (its partition replaced, its refused
rows in `raw.quarantine` with their reason) or nothing changed. Re-loading the same partition gives the same
table: rows of that partition are deleted before they are inserted again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from platform_assets.ingestion.sources import SourceSpec
from platform_assets.lib.identifiers import sql_identifier

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
    source VARCHAR NOT NULL,
    partition_date DATE,
    line_number BIGINT NOT NULL,
    reason VARCHAR NOT NULL,
    record VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL
)
"""


class LandingFileMissing(FileNotFoundError):
    pass


class LandingSchemaMismatch(ValueError):
    pass


@dataclass
class LoadResult:
    source: str
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantine_by_reason: Counter = field(default_factory=Counter)

    @property
    def quarantine_share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


def ensure_raw_tables(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    table = sql_identifier(spec.table)
    cols = [f"{sql_identifier(c)} {t}" for c, t in spec.columns.items()]
    if spec.partitioned:
        cols.append("partition_date DATE NOT NULL")
    cols.append("_loaded_at TIMESTAMPTZ NOT NULL")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(f"CREATE TABLE IF NOT EXISTS raw.{table} ({', '.join(cols)})")
    con.execute(QUARANTINE_DDL)


def _stage_file(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path) -> int:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _staged AS
        SELECT row_number() OVER () + 1 AS _line_number, to_json(t)::VARCHAR AS _record, t.*
        FROM read_csv($path, all_varchar = true, header = true, hive_partitioning = false) AS t
        """,
        {"path": str(path)},
    )
    present = {row[0] for row in con.execute("DESCRIBE _staged").fetchall()}
    missing = [c for c in spec.columns if c not in present]
    if missing:
        raise LandingSchemaMismatch(
            f"{path} lacks column(s) {missing}; expected {list(spec.columns)} (see docs/data-contracts.md)"
        )
    return con.execute("SELECT count(*) FROM _staged").fetchone()[0]


def _classify(con: duckdb.DuckDBPyConnection, spec: SourceSpec, day: date | None) -> None:
    """Give every staged row its refusal reason (NULL = good). Duplicates are judged among good rows only,
    so a malformed first copy never costs the good second one."""
    cases = " ".join(f"WHEN {predicate} THEN '{reason}'" for reason, predicate in spec.rules)
    id_col = sql_identifier(spec.id_column)
    sql = f"""
        CREATE OR REPLACE TEMP TABLE _classified AS
        WITH ruled AS (SELECT *, CASE {cases} END AS _rule_reason FROM _staged)
        SELECT *,
               CASE WHEN _rule_reason IS NULL AND row_number() OVER (
                        PARTITION BY {id_col}, _rule_reason IS NULL ORDER BY _line_number) > 1
                    THEN 'duplicate_{id_col}'
                    ELSE _rule_reason END AS _reason
        FROM ruled
    """
    params = {"partition_date": day} if "$partition_date" in sql else {}
    con.execute(sql, params)


def _replace_partition(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, day: date | None, loaded_at: datetime
) -> tuple[int, Counter]:
    table = sql_identifier(spec.table)
    names = [sql_identifier(c) for c in spec.columns]
    casts = ", ".join(f"CAST({c} AS {t})" for c, t in zip(names, spec.columns.values()))
    if spec.partitioned:
        con.execute(f"DELETE FROM raw.{table} WHERE partition_date = $day", {"day": day})
        con.execute(
            f"INSERT INTO raw.{table} ({', '.join(names)}, partition_date, _loaded_at) "
            f"SELECT {casts}, $day, $loaded_at FROM _classified WHERE _reason IS NULL ORDER BY _line_number",
            {"day": day, "loaded_at": loaded_at},
        )
    else:
        con.execute(f"DELETE FROM raw.{table}")
        con.execute(
            f"INSERT INTO raw.{table} ({', '.join(names)}, _loaded_at) "
            f"SELECT {casts}, $loaded_at FROM _classified WHERE _reason IS NULL ORDER BY _line_number",
            {"loaded_at": loaded_at},
        )
    con.execute(
        "DELETE FROM raw.quarantine WHERE source = $source AND partition_date IS NOT DISTINCT FROM $day",
        {"source": spec.name, "day": day},
    )
    con.execute(
        """
        INSERT INTO raw.quarantine
        SELECT $source, $day, _line_number, _reason, _record, $loaded_at
        FROM _classified WHERE _reason IS NOT NULL ORDER BY _line_number
        """,
        {"source": spec.name, "day": day, "loaded_at": loaded_at},
    )
    loaded = con.execute("SELECT count(*) FROM _classified WHERE _reason IS NULL").fetchone()[0]
    reasons = Counter(
        dict(con.execute("SELECT _reason, count(*) FROM _classified WHERE _reason IS NOT NULL GROUP BY 1").fetchall())
    )
    return loaded, reasons


def load_source(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    landing_dir: Path,
    days: list[date] | None,
    loaded_at: datetime,
    on_file_loaded: Callable[[int], None] | None = None,
) -> LoadResult:
    """Load the files of `days` (or the snapshot file) of one source, all or nothing. `on_file_loaded(rows_read)`
    is called after each file, for progress reporting."""
    targets: list[date | None] = list(days) if spec.partitioned else [None]
    paths = [spec.landing_file(landing_dir, d) for d in targets]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise LandingFileMissing(
            f"{len(absent)} landing file(s) missing for {spec.name}, e.g. {absent[0]}. No sample data yet? Run "
            "`make simulate` (only writes the sample files, python -m platform_assets.simulator) or `make demo` "
            "(writes them and materializes the whole graph); or drop your own files there "
            "(layout: docs/data-contracts.md)."
        )
    # Partition days are UTC days, whatever zone the caller's connection is in.
    con.execute("SET TimeZone = 'UTC'")
    ensure_raw_tables(con, spec)
    result = LoadResult(source=spec.name)
    con.begin()
    try:
        for day, path in zip(targets, paths):
            rows_read = _stage_file(con, spec, path)
            result.rows_read += rows_read
            _classify(con, spec, day)
            loaded, reasons = _replace_partition(con, spec, day, loaded_at)
            result.rows_loaded += loaded
            result.quarantine_by_reason.update(reasons)
            result.files.append(str(path))
            if on_file_loaded is not None:
                on_file_loaded(rows_read)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    result.rows_quarantined = sum(result.quarantine_by_reason.values())
    return result
