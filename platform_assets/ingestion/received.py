"""Records that arrive one by one (a stream's events, an API's pages) held as received, then loaded by the same
contract as a landing file.

A landing file is what its source sent for a day; a source that sends records one by one has no such file, so
`raw.received_<source>` plays its part: every record exactly as it came (all fields as text), keyed by its
position in the source (a stream offset, an API cursor), with the day it belongs to. Loading a day rebuilds that
day's partition of the raw table from all of its received records, through the same value rules, duplicate and
reference checks and quarantine as a file (`loader.py`). So a day that arrives as a stream or through an API
gives the raw table, the quarantine and their counts a file of the same rows would give, a re-delivered record
(same position) is received once, and re-loading a day is idempotent.

Nothing here begins or commits a transaction: the caller receives records, rebuilds their days and records how
far it read in one transaction, so a killed load leaves neither rows nor a cursor behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from platform_assets.ingestion.loader import LoadResult, ensure_raw_tables, load_parsed
from platform_assets.ingestion.reader import MAX_FIELD_CHARS, RAW_BYTES_KEPT, ParsedFile, Reject
from platform_assets.ingestion.sources import SourceSpec
from platform_assets.lib.identifiers import sql_identifier


@dataclass(frozen=True)
class Received:
    """One record as a source sent it. `record` is the source's object (field -> value), or the raw text of
    something that was not one (a garbage page, an event that is not JSON): that is quarantined, never lost."""

    position: str
    day: date
    record: Mapping[str, object] | str


def received_table(spec: SourceSpec) -> str:
    return f"raw.received_{sql_identifier(spec.table)}"


def ensure_received_table(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    ensure_raw_tables(con, spec)
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {received_table(spec)} (
            position VARCHAR NOT NULL,  -- unique by the ANTI JOIN below (DuckLake has no constraints)
            seq BIGINT NOT NULL,
            partition_date DATE NOT NULL,
            record VARCHAR NOT NULL,
            is_object BOOLEAN NOT NULL,
            origin VARCHAR NOT NULL,
            received_at TIMESTAMPTZ NOT NULL
        )"""
    )


def receive(con: duckdb.DuckDBPyConnection, spec: SourceSpec, records: Iterable[Received], origin: str,
            received_at: datetime) -> tuple[int, set[date]]:
    """Keep `records` as received; a position already held is not received again (a re-delivery). Returns how
    many were new and the days they belong to."""
    ensure_received_table(con, spec)
    table = received_table(spec)
    start = con.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()[0]
    rows, seen = [], set()
    for r in records:
        if r.position in seen:
            continue
        seen.add(r.position)
        is_object = isinstance(r.record, Mapping)
        text = json.dumps(dict(r.record), default=str) if is_object else str(r.record)
        rows.append((r.position, r.day, text, is_object))
    if not rows:
        return 0, set()
    import pyarrow as pa  # here, not at import: Definitions load without the data libraries

    con.register("_incoming", pa.table({
        "position": pa.array([r[0] for r in rows], pa.string()),
        "partition_date": pa.array([r[1] for r in rows], pa.date32()),
        "record": pa.array([r[2] for r in rows], pa.string()),
        "is_object": pa.array([r[3] for r in rows], pa.bool_()),
        "arrival": pa.array(range(len(rows)), pa.int64()),
    }))
    try:
        # The new records first, then one INSERT of them: DuckLake takes no INSERT ... RETURNING.
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _received_new AS
                        SELECT i.* FROM _incoming i ANTI JOIN {table} t ON t.position = i.position""")
        con.execute(
            f"""INSERT INTO {table}
                SELECT position, $start + row_number() OVER (ORDER BY arrival), partition_date, record,
                       is_object, $origin, $received_at
                FROM temp._received_new""",
            {"start": start, "origin": origin, "received_at": received_at},
        )
        new = con.execute("SELECT partition_date FROM temp._received_new").fetchall()
        con.execute("DROP TABLE temp._received_new")
    finally:
        con.unregister("_incoming")
    return len(new), {d for (d,) in new}


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, default=str)


def parsed_day(con: duckdb.DuckDBPyConnection, spec: SourceSpec, day: date) -> ParsedFile:
    """The day's received records as a ParsedFile: records in arrival order, each numbered by its arrival
    sequence; what is not an object of the source's fields is a reject with its reason."""
    rows = con.execute(
        f"SELECT seq, record, is_object, position FROM {received_table(spec)} WHERE partition_date = $day "
        "ORDER BY seq", {"day": day}).fetchall()
    digest = hashlib.sha256()
    parsed = ParsedFile(columns=tuple(spec.columns), size_bytes=0, sha256="", encoding="json", compression="none",
                        values={c: [] for c in spec.columns})
    for seq, text, is_object, position in rows:
        digest.update(position.encode() + b"\0")
        parsed.size_bytes += len(text)
        raw = text.encode("utf-8", errors="backslashreplace")
        if not is_object:
            parsed.rejects.append(Reject(seq, "not_a_record", raw[:RAW_BYTES_KEPT], len(raw),
                                         f"position {position}: not a JSON object"))
            continue
        record = json.loads(text)
        values = {c: _as_text(record.get(c)) for c in spec.columns}
        too_long = [c for c, v in values.items() if len(v) > MAX_FIELD_CHARS]
        if too_long:
            parsed.rejects.append(Reject(seq, "field_too_long", raw[:RAW_BYTES_KEPT], len(raw),
                                         f"position {position}: {too_long[0]} over {MAX_FIELD_CHARS} characters"))
            continue
        parsed.line_numbers.append(seq)
        for c in spec.columns:
            parsed.values[c].append(values[c])
    parsed.sha256 = digest.hexdigest()
    return parsed


def rebuild_days(con: duckdb.DuckDBPyConnection, spec: SourceSpec, days: Iterable[date], origin: str,
                 loaded_at: datetime) -> LoadResult:
    """Rebuild each day's partition of `raw.<table>` (and its quarantine) from all of its received records,
    inside the caller's transaction."""
    con.execute("SET TimeZone = 'UTC'")
    ensure_received_table(con, spec)
    result = LoadResult(source=spec.name)
    for day in sorted(set(days)):
        parsed = parsed_day(con, spec, day)
        loaded, reasons = load_parsed(con, spec, day, parsed, origin, loaded_at)
        result.files.append(f"{origin} {day.isoformat()}")
        result.rows_read += parsed.data_lines
        result.rows_loaded += loaded
        result.quarantine_by_reason.update(reasons)
    result.rows_quarantined = sum(result.quarantine_by_reason.values())
    return result
