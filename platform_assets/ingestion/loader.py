"""Landing files -> DuckDB `raw` tables, with a row-level quarantine and a manifest. Plain functions over a DuckDB
connection.

A load is one DuckDB transaction: either every file of the request is in (its partition replaced, its refused
lines in `raw.quarantine` with their reason, its entry in `raw.landed_files`) or nothing changed. Re-loading the
same partition gives the same table. A file whose bytes are already loaded is a no-op (the manifest), unless its
day holds rows refused for a reference to another table (an unknown customer, merchant or transaction): those
depend on what else has been loaded since, so that day is judged again.

Every line of a file ends in exactly one place: the raw table, the quarantine, or the blank-line count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from platform_assets.ingestion.reader import ParsedFile, read_landing_bytes
from platform_assets.ingestion.sources import REFERENCE_REASONS, SourceSpec
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
# Added after the first release: older warehouses get them on their next load.
QUARANTINE_COLUMNS = {"file": "VARCHAR", "detail": "VARCHAR"}
MANIFEST_DDL = """
CREATE TABLE IF NOT EXISTS raw.landed_files (
    source VARCHAR NOT NULL,
    partition_date DATE,
    path VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    encoding VARCHAR NOT NULL,
    compression VARCHAR NOT NULL,
    data_lines BIGINT NOT NULL,
    blank_lines BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    reference_quarantined BIGINT NOT NULL,
    problem VARCHAR,
    loaded_at TIMESTAMPTZ NOT NULL
)
"""


class LandingFileMissing(FileNotFoundError):
    pass


class LandingFileInvalid(ValueError):
    """Something other than a regular file sits where a landing file belongs."""


class ReferenceNotLoaded(RuntimeError):
    pass


@dataclass
class LoadResult:
    source: str
    files: list[str] = field(default_factory=list)
    files_unchanged: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    blank_lines: int = 0
    quarantine_by_reason: Counter = field(default_factory=Counter)
    file_problems: list[str] = field(default_factory=list)

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
    # Added with the system of record: older warehouses get them on their next load.
    for column, kind in spec.history_columns.items():
        con.execute(f"ALTER TABLE raw.{table} ADD COLUMN IF NOT EXISTS {sql_identifier(column)} {kind}")
    con.execute(QUARANTINE_DDL)
    for column, kind in QUARANTINE_COLUMNS.items():
        con.execute(f"ALTER TABLE raw.quarantine ADD COLUMN IF NOT EXISTS {column} {kind}")
    con.execute(MANIFEST_DDL)


def checked_landing_file(landing_dir: Path, path: Path) -> Path:
    """The file to read, or a clear error: a missing file, a directory, or a symlink leading out of the landing
    zone are refused before anything is read."""
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(Path(landing_dir).resolve()):
            raise LandingFileInvalid(f"{path} is a symlink to {target}, outside the landing zone {landing_dir}: "
                                     "landing files must be regular files inside it")
    if path.is_dir():
        raise LandingFileInvalid(f"{path} is a directory; a landing file belongs there (docs/data-contracts.md)")
    if path.exists() and not path.is_file():
        raise LandingFileInvalid(f"{path} is not a regular file")
    return path


def _stage(con: duckdb.DuckDBPyConnection, spec: SourceSpec, parsed: ParsedFile) -> None:
    import pyarrow as pa  # here, not at import: Definitions load without the data libraries

    table = pa.table({"_line_number": pa.array(parsed.line_numbers, pa.int64()),
                      **{c: pa.array(parsed.values[c], pa.string()) for c in spec.columns}})
    names = [sql_identifier(c) for c in spec.columns]
    con.register("_parsed_records", table)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _staged AS SELECT _line_number, "
            f"to_json(struct_pack({', '.join(f'{n} := {n}' for n in names)}))::VARCHAR AS _record, "
            f"{', '.join(names)} FROM _parsed_records"
        )
    finally:
        con.unregister("_parsed_records")


def _require_reference(con: duckdb.DuckDBPyConnection, spec: SourceSpec, table: str) -> None:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = $t", {"t": table}
    ).fetchone()[0]
    if not exists or not con.execute(f"SELECT count(*) FROM raw.{sql_identifier(table)}").fetchone()[0]:
        raise ReferenceNotLoaded(
            f"raw.{table} is empty: {spec.name} rows are checked against it, so load it first (materialize "
            f"raw_{table}; the daily ingestion job and `make demo` do it in that order)"
        )


def _classify(con: duckdb.DuckDBPyConnection, spec: SourceSpec, day: date | None) -> None:
    """Give every staged row its refusal reason (NULL = good), in one pass: the value rules in order, then repeats
    of an id within the file (among rows the rules let through), then ids already loaded on another day, then
    references to other raw tables. The first that applies names the reason."""
    cases = " ".join(f"WHEN {predicate} THEN '{reason}'" for reason, predicate in spec.rules)
    id_col, table = sql_identifier(spec.id_column), sql_identifier(spec.table)
    joins, reasons = [], []
    # Identical copies: the first loads. Copies that disagree: none can be trusted, all are refused.
    joins.append(f"""LEFT JOIN (SELECT _line_number AS line,
                         row_number() OVER (PARTITION BY {id_col} ORDER BY _line_number) AS copy,
                         count(DISTINCT _record) OVER (PARTITION BY {id_col}) AS versions
                  FROM ruled WHERE _rule IS NULL) AS dup ON dup.line = ruled._line_number""")
    reasons.append(f"CASE WHEN dup.versions > 1 THEN 'conflicting_{id_col}' "
                   f"WHEN dup.copy > 1 THEN 'duplicate_{id_col}' END")
    if spec.partitioned:
        joins.append(f"LEFT JOIN (SELECT DISTINCT {id_col} AS id FROM raw.{table} WHERE partition_date <> $day) "
                     f"AS other_day ON other_day.id = ruled.{id_col}")
        reasons.append(f"CASE WHEN other_day.id IS NOT NULL THEN 'duplicate_{id_col}_across_days' END")
    # The referenced rows are read only for the ids this file names: a day's file must not cost a scan and an
    # aggregate of the whole history of the table it names (10x faster on a 90-day backfill of chargebacks).
    pending = con.execute("SELECT count(*) FROM _staged").fetchone()[0]
    for i, ref in enumerate(spec.references if pending else ()):
        _require_reference(con, spec, ref.table)
        col, other = sql_identifier(ref.column), sql_identifier(ref.table)
        if ref.not_before:
            ours, theirs, late = (sql_identifier(ref.not_before[0]), sql_identifier(ref.not_before[1]),
                                  ref.not_before[2])
            joins.append(f"LEFT JOIN (SELECT {col} AS id, min({theirs}) AS at FROM raw.{other} "
                         f"WHERE {col} IN (SELECT {col} FROM _staged) GROUP BY 1) AS ref{i} "
                         f"ON ref{i}.id = ruled.{col}")
            reasons.append(f"CASE WHEN ref{i}.id IS NULL THEN '{ref.reason}' "
                           f"WHEN try_cast(ruled.{ours} AS TIMESTAMPTZ) < ref{i}.at THEN '{late}' END")
        else:
            joins.append(f"LEFT JOIN (SELECT DISTINCT {col} AS id FROM raw.{other} "
                         f"WHERE {col} IN (SELECT {col} FROM _staged)) AS ref{i} ON ref{i}.id = ruled.{col}")
            reasons.append(f"CASE WHEN ref{i}.id IS NULL THEN '{ref.reason}' END")
    sql = f"""
        CREATE OR REPLACE TEMP TABLE _classified AS
        WITH ruled AS (SELECT *, CASE {cases} END AS _rule FROM _staged)
        SELECT ruled.* EXCLUDE (_rule), coalesce(_rule, {', '.join(reasons)}) AS _reason
        FROM ruled {' '.join(joins)}
    """
    con.execute(sql, {"partition_date": day, "day": day} if spec.partitioned else {})


def _replace_partition(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, day: date | None, parsed: ParsedFile, file: str,
    loaded_at: datetime,
) -> tuple[int, Counter]:
    table = sql_identifier(spec.table)
    names = [sql_identifier(c) for c in spec.columns]
    casts = ", ".join(f"CAST({c} AS {t})" for c, t in zip(names, spec.columns.values()))
    where_day = "partition_date = $day" if spec.partitioned else "true"
    con.execute(f"DELETE FROM raw.{table} WHERE {where_day}", {"day": day} if spec.partitioned else {})
    extra_cols, extra_vals = (", partition_date", ", $day") if spec.partitioned else ("", "")
    con.execute(
        f"INSERT INTO raw.{table} ({', '.join(names)}{extra_cols}, _loaded_at) "
        f"SELECT {casts}{extra_vals}, $loaded_at FROM _classified WHERE _reason IS NULL ORDER BY _line_number",
        {"loaded_at": loaded_at, **({"day": day} if spec.partitioned else {})},
    )
    con.execute(
        "DELETE FROM raw.quarantine WHERE source = $source AND partition_date IS NOT DISTINCT FROM $day",
        {"source": spec.name, "day": day},
    )
    con.execute(
        """
        INSERT INTO raw.quarantine (source, partition_date, line_number, reason, record, _loaded_at, file, detail)
        SELECT $source, $day, _line_number, _reason, _record, $loaded_at, $file, NULL
        FROM _classified WHERE _reason IS NOT NULL ORDER BY _line_number
        """,
        {"source": spec.name, "day": day, "loaded_at": loaded_at, "file": file},
    )
    line_rejects = [(spec.name, day, r.line_number, r.reason, r.record(), loaded_at, file, r.detail or None)
                    for r in parsed.rejects]
    if parsed.problem and not parsed.data_lines:
        # Nothing could be read line by line (an empty or undecodable file): one entry says why.
        line_rejects.append((spec.name, day, 0, parsed.problem.split(":")[0], "{}", loaded_at, file,
                             parsed.problem))
    if line_rejects:
        con.executemany("INSERT INTO raw.quarantine (source, partition_date, line_number, reason, record, "
                        "_loaded_at, file, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", line_rejects)
    loaded = con.execute("SELECT count(*) FROM _classified WHERE _reason IS NULL").fetchone()[0]
    reasons = Counter(
        dict(con.execute("SELECT _reason, count(*) FROM _classified WHERE _reason IS NOT NULL GROUP BY 1").fetchall())
    )
    reasons.update(r.reason for r in parsed.rejects)
    return loaded, reasons


def load_parsed(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, day: date | None, parsed: ParsedFile, origin: str,
    loaded_at: datetime,
) -> tuple[int, Counter]:
    """Replace `day`'s partition (or the snapshot) with the good records of `parsed` and its quarantine with the
    rest, inside the caller's transaction: the contract of a landing file for records from anywhere
    (`received.py`). Returns the rows loaded and the refusals by reason."""
    _stage(con, spec, parsed)
    _classify(con, spec, day)
    return _replace_partition(con, spec, day, parsed, origin, loaded_at)


def _unchanged(con: duckdb.DuckDBPyConnection, spec: SourceSpec, day: date | None, sha256: str) -> tuple | None:
    """The manifest entry of this exact file if loading it again would change nothing, else None."""
    entry = con.execute(
        """
        SELECT sha256, data_lines, blank_lines, rows_loaded, reference_quarantined, problem FROM raw.landed_files
        WHERE source = $source AND partition_date IS NOT DISTINCT FROM $day ORDER BY loaded_at DESC, rowid DESC LIMIT 1
        """,
        {"source": spec.name, "day": day},
    ).fetchone()
    if entry is None or entry[0] != sha256 or entry[4]:
        return None
    where_day = "partition_date = $day" if spec.partitioned else "true"
    present = con.execute(f"SELECT count(*) FROM raw.{sql_identifier(spec.table)} WHERE {where_day}",
                          {"day": day} if spec.partitioned else {}).fetchone()[0]
    return entry if present == entry[3] else None


def _record_unchanged(con, spec: SourceSpec, day: date | None, entry: tuple, result: LoadResult) -> None:
    _, data_lines, blank_lines, rows_loaded, _, problem = entry
    reasons = dict(con.execute(
        "SELECT reason, count(*) FROM raw.quarantine WHERE source = $source AND partition_date IS NOT DISTINCT "
        "FROM $day AND line_number > 0 GROUP BY 1", {"source": spec.name, "day": day}).fetchall())
    result.files_unchanged += 1
    result.rows_read += data_lines
    result.blank_lines += blank_lines
    result.rows_loaded += rows_loaded
    result.quarantine_by_reason.update(reasons)
    if problem:
        result.file_problems.append(problem)


def load_source(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    landing_dir: Path,
    days: list[date] | None,
    loaded_at: datetime,
    on_file_loaded: Callable[[int], None] | None = None,
    reload_unchanged: bool = False,
) -> LoadResult:
    """Load the files of `days` (or the snapshot file) of one source, all or nothing. `on_file_loaded(rows_read)`
    is called after each file, for progress reporting."""
    targets: list[date | None] = sorted(days) if spec.partitioned else [None]
    paths = [checked_landing_file(landing_dir, spec.landing_file(landing_dir, d)) for d in targets]
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
            data = path.read_bytes()
            relative = str(path.relative_to(landing_dir)) if path.is_relative_to(landing_dir) else str(path)
            parsed = read_landing_bytes(data, tuple(spec.columns))
            entry = None if reload_unchanged else _unchanged(con, spec, day, parsed.sha256)
            if entry is not None:
                _record_unchanged(con, spec, day, entry, result)
            else:
                loaded, reasons = load_parsed(con, spec, day, parsed, relative, loaded_at)
                _record_file(con, spec, day, relative, parsed, loaded, reasons, loaded_at)
                result.rows_read += parsed.data_lines
                result.blank_lines += parsed.blank_lines
                result.rows_loaded += loaded
                result.quarantine_by_reason.update(reasons)
                if parsed.problem:
                    result.file_problems.append(f"{relative}: {parsed.problem}")
            result.files.append(str(path))
            if on_file_loaded is not None:
                on_file_loaded(parsed.data_lines)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    result.rows_quarantined = sum(result.quarantine_by_reason.values())
    return result


def _record_file(con, spec: SourceSpec, day: date | None, relative: str, parsed: ParsedFile, loaded: int,
                 reasons: Counter, loaded_at: datetime) -> None:
    con.execute(
        "INSERT INTO raw.landed_files VALUES ($source, $day, $path, $size, $sha, $encoding, $compression, "
        "$data_lines, $blank_lines, $loaded, $quarantined, $reference, $problem, $loaded_at)",
        {"source": spec.name, "day": day, "path": relative, "size": parsed.size_bytes, "sha": parsed.sha256,
         "encoding": parsed.encoding, "compression": parsed.compression, "data_lines": parsed.data_lines,
         "blank_lines": parsed.blank_lines, "loaded": loaded, "quarantined": sum(reasons.values()),
         "reference": sum(n for r, n in reasons.items() if r in REFERENCE_REASONS), "problem": parsed.problem,
         "loaded_at": loaded_at},
    )
