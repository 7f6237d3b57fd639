"""A landing file read under its pinned dialect: every physical line is either a record, a blank line, or a
reject with the reason that names its defect.

Why not DuckDB's `read_csv(store_rejects=true)` alone: measured here (DuckDB 1.5.6, dialect pinned, strict mode)
it keeps the good rows around a line with another field count, invalid UTF-8 or an oversize line, but an
unterminated quote swallows every following line of the file into one rejected value, a NUL byte inside a value
and a repeated header line pass as data, and accepted rows carry no line number, so a value-level quarantine
could not name its line. The contract (docs/data-contracts.md) makes a record exactly one physical line, so each
line is checked as bytes (size, NUL, encoding) and then parsed by the standard library's `csv` module in strict
mode; the typed value rules run in DuckDB afterwards (`loader.py`).

Whole-file transport wrappers are undone before the lines are read, because they are how files travel, not
defects of the data: a gzip stream under a `.csv` name, a UTF-8 byte-order mark, a UTF-16 file with its
byte-order mark, CR-only line endings.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field

MAX_LINE_BYTES = 64 * 1024
MAX_FIELD_CHARS = 1024
RAW_BYTES_KEPT = 1024
# C0 and C1 control characters and the Unicode line/paragraph separators: never part of an id, amount or time.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Reject:
    line_number: int
    reason: str
    raw: bytes
    size: int
    detail: str = ""

    def record(self) -> str:
        """The raw line as JSON text, bounded: the first RAW_BYTES_KEPT bytes, undecodable bytes escaped."""
        return json.dumps({
            "raw": self.raw[:RAW_BYTES_KEPT].decode("utf-8", errors="backslashreplace"),
            "bytes": self.size,
            "truncated": self.size > RAW_BYTES_KEPT,
            **({"detail": self.detail} if self.detail else {}),
        })


@dataclass
class ParsedFile:
    """What one file holds. `problem` is set when the file as a whole cannot be read under the contract (no or a
    wrong header, undecodable); its data lines are then all rejects."""

    columns: tuple[str, ...]
    size_bytes: int
    sha256: str
    encoding: str = "utf-8"
    compression: str = "none"
    problem: str | None = None
    line_numbers: list[int] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    blank_lines: int = 0

    @property
    def records(self) -> int:
        return len(self.line_numbers)

    @property
    def data_lines(self) -> int:
        """Lines that are neither the header nor blank: each is a record or a reject."""
        return self.records + len(self.rejects)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unwrap(data: bytes) -> tuple[bytes, str, str, str | None]:
    """(UTF-8 bytes, encoding, compression, whole-file problem)."""
    compression = "none"
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            return b"", "unknown", "gzip", f"unreadable_file: corrupt gzip stream ({exc})"
        compression = "gzip"
    if data[:3] == b"\xef\xbb\xbf":
        return data[3:], "utf-8-sig", compression, None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16", compression, None
        except UnicodeDecodeError as exc:
            return b"", "utf-16", compression, f"unreadable_file: invalid UTF-16 ({exc.reason})"
    head = data[:200]
    if len(head) >= 4 and head[1::2].count(0) > len(head) // 4:
        return b"", "unknown", compression, "unreadable_file: looks like UTF-16 without a byte-order mark"
    return data, "utf-8", compression, None


def _split_lines(data: bytes) -> list[bytes]:
    if not data:
        return []
    sep = b"\n" if b"\n" in data or b"\r" not in data else b"\r"
    lines = data.split(sep)
    if lines and lines[-1] == b"":
        lines.pop()
    if sep == b"\n":
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return lines


def _parse(text: str) -> tuple[list[str] | None, str | None]:
    try:
        return next(csv.reader([text], strict=True)), None
    except csv.Error as exc:
        message = str(exc)
        return None, "unterminated_quote" if "end of data" in message else "malformed_quoting"
    except StopIteration:
        return [], None


def _header_mapping(fields: list[str], columns: tuple[str, ...]) -> tuple[list[int] | None, str | None]:
    """Column positions in contract order. Names match after trimming spaces, in any order and case; a missing,
    unknown or repeated name refuses the file."""
    names = [f.strip().lower() for f in fields]
    problems = []
    missing = [c for c in columns if c not in names]
    unknown = [n for n in names if n not in columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if missing:
        problems.append(f"missing column(s) {missing}")
    if unknown:
        problems.append(f"unknown column(s) {unknown}")
    if repeated:
        problems.append(f"repeated column(s) {repeated}")
    if problems:
        return None, (f"header_mismatch: {'; '.join(problems)}; expected {list(columns)} in any order "
                      "(docs/data-contracts.md)")
    return [names.index(c) for c in columns], None


def _line_defect(line: bytes) -> tuple[str, list[str] | None, str | None, str]:
    """(text, fields, defect, detail) of one line's bytes."""
    if len(line) > MAX_LINE_BYTES:
        return "", None, "oversize_field", f"line of {len(line)} bytes, limit {MAX_LINE_BYTES}"
    if b"\x00" in line:
        return "", None, "nul_byte", ""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "", None, "bad_encoding", f"not UTF-8 at byte {exc.start}"
    if '"' not in text:  # no quoting: the csv module would split exactly here
        return text, text.split(","), None, ""
    fields, defect = _parse(text)
    return text, fields, defect, ""


def read_landing_bytes(data: bytes, columns: tuple[str, ...]) -> ParsedFile:
    """Classify every line of one landing file (its bytes as dropped) against the contract's `columns`."""
    parsed = ParsedFile(columns=columns, size_bytes=len(data), sha256=content_hash(data),
                        values={c: [] for c in columns})
    text, parsed.encoding, parsed.compression, problem = _unwrap(data)
    if problem:
        parsed.problem = problem
        return parsed
    lines = _split_lines(text)
    header_index = next((i for i, line in enumerate(lines) if line.strip(b" \t")), None)
    if header_index is None:
        parsed.problem = "missing_header: the file has no header line"
        parsed.blank_lines = len(lines)
        return parsed
    parsed.blank_lines = header_index
    _, header_fields, defect, _ = _line_defect(lines[header_index])
    mapping, parsed.problem = (None, f"header_mismatch: the header line is unreadable ({defect})") if defect \
        else _header_mapping(header_fields, columns)
    for offset, line in enumerate(lines[header_index + 1:], start=header_index + 2):
        if not line.strip(b" \t"):
            parsed.blank_lines += 1
            continue
        if mapping is None:
            parsed.rejects.append(Reject(offset, "header_mismatch", line[:RAW_BYTES_KEPT], len(line)))
            continue
        text, fields, reason, detail = _line_defect(line)
        if reason is None:
            reason, detail = _field_defect(text, fields, header_fields, columns)
        if reason is not None:
            parsed.rejects.append(Reject(offset, reason, line[:RAW_BYTES_KEPT], len(line), detail))
            continue
        parsed.line_numbers.append(offset)
        for column, position in zip(columns, mapping):
            parsed.values[column].append(fields[position])
    return parsed


def _field_defect(text: str, fields: list[str], header_fields: list[str],
                  columns: tuple[str, ...]) -> tuple[str | None, str]:
    if len(fields) != len(header_fields):
        return "field_count", f"{len(fields)} fields, the header has {len(header_fields)}"
    if fields[0].strip().lower() in columns and sorted(f.strip().lower() for f in fields) == sorted(columns):
        return "repeated_header", ""
    if len(text) > MAX_FIELD_CHARS:
        longest = max(map(len, fields))
        if longest > MAX_FIELD_CHARS:
            return "oversize_field", f"field of {longest} characters, limit {MAX_FIELD_CHARS}"
    control = _CONTROL.search(text)
    if control:
        return "control_character", f"U+{ord(control.group()):04X}"
    return None, ""
