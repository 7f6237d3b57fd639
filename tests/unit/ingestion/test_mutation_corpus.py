"""A hostile source system: the simulator's own files of one day, each broken in one of 60+ ways, on both daily
sources (transactions and chargebacks), loaded by the real loader into a real DuckDB file.

Every kind states, independently of the loader, which lines must be refused and why, and which ids must be in
the raw table afterwards; the test asserts exactly that: no good row lost, no bad row in, every refused line
with the reason that names its defect. The oracle is the mutation itself (which rows it touched), not our code.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from platform_assets.ingestion.loader import LandingFileInvalid, load_source
from platform_assets.ingestion.sources import SOURCES
from platform_assets.lib.identifiers import partition_date
from platform_assets.simulator import SimulationConfig, write_landing_zone

CONFIG = SimulationConfig(start_date=datetime(2026, 3, 1).date(), days=6, n_customers=150, n_merchants=30,
                          transactions_per_day=120, fraud_rate=0.15, malformed_rate=0.0, max_label_delay_days=3,
                          seed=11)
DAY = CONFIG.start_date + timedelta(days=4)
LOADED_AT = datetime(2026, 3, 10, tzinfo=UTC)
# Per source: the id, a column naming another table's row, the time column, the enum column and an unknown value.
ROLES = {
    "transactions": {"id": "transaction_id", "ref": "customer_id", "ts": "event_ts", "enum": "channel",
                         "bad_enum": "atm", "ref_reason": "unknown_customer"},
    "chargebacks": {"id": "chargeback_id", "ref": "transaction_id", "ts": "reported_at", "enum": "reason",
                        "bad_enum": "changed_my_mind", "ref_reason": "unknown_transaction"},
}


@dataclass
class Base:
    source: str
    header: list[str]
    rows: list[list[str]]
    other_day_row: list[str]  # a row of another day's file of the same source
    late_transaction: tuple[str, str]  # (id, event_ts) of the latest transaction of DAY

    def col(self, role: str) -> int:
        return self.header.index(ROLES[self.source][role])

    @property
    def ids(self) -> list[str]:
        return [r[self.col("id")] for r in self.rows]


@dataclass
class Expected:
    data: bytes
    bad_lines: dict[int, str] = field(default_factory=dict)  # line number -> reason
    loaded_ids: set[str] | None = None  # None: the base ids minus those of the bad lines' rows
    blank_lines: int = 0
    problem: str | None = None  # the file-level reason, when the file as a whole is refused


def to_csv(header: list[str], rows: list[list[str]], terminator: str = "\n", quoting=csv.QUOTE_MINIMAL) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=terminator, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def lines_of(b: Base) -> list[bytes]:
    return to_csv(b.header, b.rows).split(b"\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


# --- the mutations ------------------------------------------------------------------------------------------------
# Row index i of the base is line i + 2 of the file (the header is line 1).

ROW = 3  # the row most mutations break
LINE = ROW + 2


def set_value(role: str, value: str, reason: str | None, row: int = ROW) -> Callable[[Base], Expected]:
    def mutate(b: Base) -> Expected:
        rows = [list(r) for r in b.rows]
        rows[row][b.col(role) if role in ROLES[b.source] else b.header.index(role)] = value
        return Expected(to_csv(b.header, rows), {row + 2: reason} if reason else {})
    return mutate


def edit_line(edit: Callable[[bytes], bytes], reason: str) -> Callable[[Base], Expected]:
    def mutate(b: Base) -> Expected:
        lines = lines_of(b)
        lines[LINE - 1] = edit(lines[LINE - 1])
        return Expected(join(lines), {LINE: reason})
    return mutate


def replace_id(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda line: line.replace(old, new, 1)


def first_field(edit: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def apply(line: bytes) -> bytes:
        head, _, rest = line.partition(b",")
        return edit(head) + b"," + rest
    return apply


def insert_lines(extra: list[bytes], at: int, reasons: list[str | None], blank: int = 0):
    """New lines at line `at`: only they can be refused, every base row still loads."""
    def mutate(b: Base) -> Expected:
        lines = lines_of(b)
        lines[at - 1:at - 1] = extra
        return Expected(join(lines), {at + i: r for i, r in enumerate(reasons) if r}, loaded_ids=set(b.ids),
                        blank_lines=blank)
    return mutate


def whole_file(transform: Callable[[bytes], bytes], problem: str | None = None) -> Callable[[Base], Expected]:
    def mutate(b: Base) -> Expected:
        data = transform(to_csv(b.header, b.rows))
        if problem:
            return Expected(data, {}, loaded_ids=set(), problem=problem)
        return Expected(data)
    return mutate


def header_edit(edit: Callable[[list[str]], list[str]], accepted: bool) -> Callable[[Base], Expected]:
    def mutate(b: Base) -> Expected:
        data = to_csv(edit(list(b.header)), b.rows)
        if accepted:
            return Expected(data)
        return Expected(data, {i + 2: "header_mismatch" for i in range(len(b.rows))}, loaded_ids=set(),
                        problem="header_mismatch")
    return mutate


def reordered_columns(b: Base) -> Expected:
    order = list(reversed(range(len(b.header))))
    return Expected(to_csv([b.header[i] for i in order], [[r[i] for i in order] for r in b.rows]))


def no_header(b: Base) -> Expected:
    # The first data row is taken for the header: it names no contract column, so the file is refused.
    data = join(lines_of(b)[1:])
    return Expected(data, {i + 1: "header_mismatch" for i in range(1, len(b.rows))}, loaded_ids=set(),
                    problem="header_mismatch")


def truncated_last_row(b: Base) -> Expected:
    lines = lines_of(b)
    last = lines[-1]
    lines[-1] = last[: last.rindex(b",")]  # cut before the last field, no final newline
    return Expected(b"\n".join(lines), {len(lines): "field_count"})


def truncated_mid_field(b: Base) -> Expected:
    lines = lines_of(b)
    ends_in_time = b.header[-1] == ROLES[b.source]["ts"]
    lines[-1] = lines[-1][:-12 if ends_in_time else -2]  # into the last field, no final newline
    reason = "invalid_timestamp" if ends_in_time else f"unknown_{b.header[-1]}"
    return Expected(b"\n".join(lines), {len(lines): reason})


def unterminated_quote(b: Base) -> Expected:
    lines = lines_of(b)
    lines[LINE - 1] = b'"' + lines[LINE - 1]
    return Expected(join(lines), {LINE: "unterminated_quote"})


def two_unterminated_quotes(b: Base) -> Expected:
    lines = lines_of(b)
    for line in (LINE, LINE + 3):
        fields = lines[line - 1].split(b",")
        fields[1] = b'"' + fields[1]
        lines[line - 1] = b",".join(fields)
    return Expected(join(lines), {LINE: "unterminated_quote", LINE + 3: "unterminated_quote"})


def all_quoted(b: Base) -> Expected:
    return Expected(to_csv(b.header, b.rows, quoting=csv.QUOTE_ALL))


def exact_duplicate(b: Base) -> Expected:
    rows = b.rows + [list(b.rows[ROW])]
    return Expected(to_csv(b.header, rows), {len(rows) + 1: f"duplicate_{ROLES[b.source]['id']}"},
                    loaded_ids=set(b.ids))


def conflicting_duplicate(b: Base) -> Expected:
    copy = list(b.rows[ROW])
    enum = b.col("enum")
    values = ("online", "card_present") if b.source == "transactions" else ("fraud", "product_not_received")
    copy[enum] = values[1] if copy[enum] == values[0] else values[0]
    rows = b.rows + [copy]
    reason = f"conflicting_{ROLES[b.source]['id']}"
    return Expected(to_csv(b.header, rows), {LINE: reason, len(rows) + 1: reason})


def duplicate_across_days(b: Base) -> Expected:
    copy = list(b.other_day_row)
    copy[b.col("ts")] = f"{DAY.isoformat()}T12:00:00Z"
    rows = b.rows + [copy]
    return Expected(to_csv(b.header, rows), {len(rows) + 1: f"duplicate_{ROLES[b.source]['id']}_across_days"},
                    loaded_ids=set(b.ids))


def reported_before_transaction(b: Base) -> Expected:
    rows = [list(r) for r in b.rows]
    tx_id, _ = b.late_transaction
    rows[ROW][b.col("ref")] = tx_id
    rows[ROW][b.col("ts")] = f"{DAY.isoformat()}T00:00:00Z"
    return Expected(to_csv(b.header, rows), {LINE: "reported_before_transaction"})


def latin1_file(b: Base) -> Expected:
    # A latin-1 byte in one line: that line only.
    lines = lines_of(b)
    lines[LINE - 1] = lines[LINE - 1].replace(b",", b"\xe9,", 1)
    return Expected(join(lines), {LINE: "bad_encoding"})


def utf16_without_bom(b: Base) -> Expected:
    data = to_csv(b.header, b.rows).decode().encode("utf-16-le")
    return Expected(data, {}, loaded_ids=set(), problem="unreadable_file")


def truncated_gzip(b: Base) -> Expected:
    data = gzip.compress(to_csv(b.header, b.rows))
    return Expected(data[: len(data) // 2], {}, loaded_ids=set(), problem="unreadable_file")


def cr_in_lf_file(b: Base) -> Expected:
    lines = lines_of(b)
    lines[LINE - 1] += b"\r"
    return Expected(join(lines))


def blank_lines_at_end(b: Base) -> Expected:
    return Expected(to_csv(b.header, b.rows) + b"\n\n  \n", blank_lines=3)


def header_only(b: Base) -> Expected:
    return Expected(to_csv(b.header, []), loaded_ids=set())


def empty_file(b: Base) -> Expected:
    return Expected(b"", loaded_ids=set(), problem="missing_header")


def huge_field(size: int) -> Callable[[Base], Expected]:
    def mutate(b: Base) -> Expected:
        rows = [list(r) for r in b.rows]
        rows[ROW][b.col("ref")] = "x" * size
        return Expected(to_csv(b.header, rows), {LINE: "oversize_field"})
    return mutate


def ts_in_day(value: Callable[[str], str], reason: str | None):
    """Rewrite the time of ROW from its own value (YYYY-MM-DDTHH:MM:SS[.f]Z)."""
    def mutate(b: Base) -> Expected:
        rows = [list(r) for r in b.rows]
        rows[ROW][b.col("ts")] = value(rows[ROW][b.col("ts")])
        return Expected(to_csv(b.header, rows), {LINE: reason} if reason else {})
    return mutate


def id_kind(value: str, reason: str):
    return lambda b: set_value("id", value, reason)(b)


def nul_in_id(b: Base) -> Expected:
    return edit_line(first_field(lambda f: f[:2] + b"\x00" + f[2:]), "nul_byte")(b)


def ref_kind(value: str, reason_key: str):
    def mutate(b: Base) -> Expected:
        reason = ROLES[b.source]["ref_reason"] if reason_key == "unknown" else reason_key.format(
            col=ROLES[b.source]["ref"])
        return set_value("ref", value, reason)(b)
    return mutate


def enum_kind(value: Callable[[Base], str], reason: bool = True):
    def mutate(b: Base) -> Expected:
        return set_value("enum", value(b), f"unknown_{ROLES[b.source]['enum']}" if reason else None)(b)
    return mutate


KINDS: dict[str, Callable[[Base], Expected]] = {
    # structure of one line
    "extra_field": edit_line(lambda line: line + b",extra", "field_count"),
    "missing_field": edit_line(lambda line: line[: line.rindex(b",")], "field_count"),
    "only_one_field": edit_line(lambda line: line.split(b",")[0], "field_count"),
    "truncated_last_row": truncated_last_row,
    "truncated_mid_field": truncated_mid_field,
    "blank_line": insert_lines([b""], LINE, [None], blank=1),
    "whitespace_only_line": insert_lines([b"   \t "], LINE, [None], blank=1),
    "blank_lines_at_end": blank_lines_at_end,
    "nul_byte_in_id": nul_in_id,
    "nul_byte_at_line_end": edit_line(lambda line: line + b"\x00", "nul_byte"),
    "unterminated_quote": unterminated_quote,
    "two_unterminated_quotes": two_unterminated_quotes,
    "quote_then_junk": edit_line(first_field(lambda f: b'"' + f + b'"x'), "malformed_quoting"),
    "stray_quote_in_id": edit_line(first_field(lambda f: f[:2] + b'"' + f[2:]), "stray_quote"),
    "escaped_quote_in_id": edit_line(first_field(lambda f: b'"' + f[:2] + b'""' + f[2:] + b'"'), "stray_quote"),
    "all_fields_quoted": all_quoted,
    "huge_field_5mb": huge_field(5_000_000),
    "long_field_2kb": huge_field(2_000),
    "oversize_line_100kb": edit_line(lambda line: line + b"," + b"y" * 100_000, "oversize_field"),
    "latin1_byte": latin1_file,
    "invalid_utf8_continuation": edit_line(lambda line: line.replace(b",", b"\xc3(,", 1), "bad_encoding"),
    "bell_control_character": edit_line(first_field(lambda f: f + b"\x07"), "control_character"),
    "tab_in_id": edit_line(first_field(lambda f: f[:2] + b"\t" + f[2:]), "control_character"),
    "c1_control_character": edit_line(first_field(lambda f: f + "\u0085".encode()), "control_character"),
    "line_separator_character": edit_line(first_field(lambda f: f + "\u2028".encode()), "control_character"),
    "repeated_header_line": lambda b: insert_lines([lines_of(b)[0]], LINE, ["repeated_header"])(b),
    "padded_repeated_header_line": lambda b: insert_lines(
        [b", ".join(lines_of(b)[0].split(b",")).upper()], LINE, ["repeated_header"])(b),
    # whole-file encodings and wrappers
    "utf8_bom": whole_file(lambda d: b"\xef\xbb\xbf" + d),
    "utf16_with_bom": whole_file(lambda d: d.decode().encode("utf-16")),
    "utf16_without_bom": utf16_without_bom,
    "crlf_line_endings": whole_file(lambda d: d.replace(b"\n", b"\r\n")),
    "cr_only_line_endings": whole_file(lambda d: d.replace(b"\n", b"\r")),
    "one_crlf_line_in_lf_file": cr_in_lf_file,
    "gzip_under_csv_name": whole_file(gzip.compress),
    "truncated_gzip": truncated_gzip,
    "empty_file": empty_file,
    "header_only": header_only,
    # headers
    "reordered_columns": reordered_columns,
    "renamed_column": header_edit(lambda h: [h[0] + "_renamed", *h[1:]], accepted=False),
    "padded_header_names": header_edit(lambda h: [f"  {c} " for c in h], accepted=True),
    "upper_case_header": header_edit(lambda h: [c.upper() for c in h], accepted=True),
    "repeated_column_name": header_edit(lambda h: [h[0], h[0], *h[2:]], accepted=False),
    "extra_column_in_header": header_edit(lambda h: [*h, "note"], accepted=False),
    "missing_header_row": no_header,
    # ids
    "empty_id": lambda b: set_value("id", "", f"missing_{ROLES[b.source]['id']}")(b),
    "whitespace_id": lambda b: set_value("id", "   ", f"missing_{ROLES[b.source]['id']}")(b),
    "padded_id": lambda b: set_value("id", " " + b.ids[ROW], f"invalid_{ROLES[b.source]['id']}")(b),
    "path_traversal_id": lambda b: set_value("id", "../../etc/passwd", f"invalid_{ROLES[b.source]['id']}")(b),
    "overlong_id": lambda b: set_value("id", "X" * 65, f"invalid_{ROLES[b.source]['id']}")(b),
    "zero_width_space_id": lambda b: set_value("id", b.ids[ROW] + "\u200b", f"invalid_{ROLES[b.source]['id']}")(b),
    "sql_in_id": lambda b: set_value("id", "x'; DROP TABLE raw.transactions; --",
                                     f"invalid_{ROLES[b.source]['id']}")(b),
    "exact_duplicate_row": exact_duplicate,
    "conflicting_duplicate_id": conflicting_duplicate,
    "duplicate_id_across_days": duplicate_across_days,
    # references
    "unknown_reference": ref_kind("ZZ9999999", "unknown"),
    "empty_reference": ref_kind("", "missing_{col}"),
    "reference_with_quote": ref_kind('ab"c', "stray_quote"),
    # timestamps
    "timestamp_without_zone": ts_in_day(lambda t: t.rstrip("Z"), "timestamp_without_zone"),
    "date_only_timestamp": ts_in_day(lambda t: t[:10], "timestamp_without_zone"),
    "space_separated_timestamp_with_offset": ts_in_day(lambda t: t[:10] + " " + t[11:19] + "+00:00", None),
    "offset_within_day": ts_in_day(lambda t: t[:10] + "T13:00:00+02:00", None),
    "offset_out_of_day": ts_in_day(lambda t: t[:10] + "T00:30:00+01:00", "timestamp_outside_partition"),
    "next_day_timestamp": ts_in_day(lambda t: (DAY + timedelta(days=1)).isoformat() + "T00:00:00Z",
                                    "timestamp_outside_partition"),
    "hour_24": ts_in_day(lambda t: t[:10] + "T24:00:00Z", "invalid_timestamp"),
    "seven_fraction_digits": ts_in_day(lambda t: t[:19] + ".1234567Z", "invalid_timestamp"),
    "february_30": ts_in_day(lambda t: "2026-02-30T10:00:00Z", "invalid_timestamp"),
    "epoch_seconds": ts_in_day(lambda t: "1772791200", "invalid_timestamp"),
    "lower_case_z": ts_in_day(lambda t: t[:19] + "z", "invalid_timestamp"),
    "garbage_timestamp": ts_in_day(lambda t: "yesterday", "invalid_timestamp"),
    # enums
    "unknown_enum_value": enum_kind(lambda b: ROLES[b.source]["bad_enum"]),
    "upper_case_enum": enum_kind(lambda b: b.rows[ROW][b.col("enum")].upper()),
    "padded_enum": enum_kind(lambda b: " " + b.rows[ROW][b.col("enum")]),
    "empty_enum": enum_kind(lambda b: ""),
}
# What only a transaction has: an amount and a currency (17+ spellings of special amounts among them).
TRANSACTION_KINDS = {
    **{f"amount_{name}": set_value("amount", value, "invalid_amount") for name, value in {
        "nan": "NaN", "nan_lower": "nan", "inf": "inf", "minus_inf": "-inf", "infinity": "Infinity",
        "exponent": "1e3", "exponent_upper": "1E3", "hex": "0x1F", "dollar": "$12.50", "with_currency": "12.50 EUR",
        "leading_space": " 12.50", "plus_sign": "+12.50", "negative": "-12.50", "zero": "0", "zero_decimals": "0.00",
        "empty": "", "null": "null", "leading_dot": ".50", "trailing_dot": "12.", "two_dots": "1.2.3",
        "arabic_digits": "\u0661\u0662.\u0665\u0660", "quoted_decimal_comma": "12,50", "overflow": "9" * 20,
    }.items()},
    "amount_three_decimals": set_value("amount", "12.505", "amount_precision"),
    "amount_trailing_zero_decimals": set_value("amount", "12.5000", "amount_precision"),
    "amount_integer": set_value("amount", "12", None),
    "amount_one_decimal": set_value("amount", "12.5", None),
    "amount_leading_zeros": set_value("amount", "0012.50", None),
    "currency_lower_case": set_value("currency", "eur", "invalid_currency"),
    "currency_four_letters": set_value("currency", "EURO", "invalid_currency"),
    "yen_with_decimals": lambda b: set_value("amount", "1200.50", "amount_precision")(
        Base(b.source, b.header, [r if i != ROW else [*r[:4], "JPY", *r[5:]] for i, r in enumerate(b.rows)],
             b.other_day_row, b.late_transaction)),
    "unknown_merchant": set_value("merchant_id", "M99999", "unknown_merchant"),
}
CHARGEBACK_KINDS = {"reported_before_transaction": reported_before_transaction}


def build_template(landing: Path, source: str, path: Path) -> Path:
    """A warehouse ready for a load of `source` on DAY: the snapshots and the other days loaded (for chargebacks,
    every day's transactions too)."""
    days = [CONFIG.start_date + timedelta(days=i) for i in range(CONFIG.days)]
    others = [d for d in days if d != DAY]
    con = duckdb.connect(str(path))
    for snapshot in ("customers", "merchants"):
        load_source(con, SOURCES[snapshot], landing, None, LOADED_AT)
    load_source(con, SOURCES["transactions"], landing, others if source == "transactions" else days, LOADED_AT)
    if source == "chargebacks":
        load_source(con, SOURCES["chargebacks"], landing, others, LOADED_AT)
    con.close()
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The simulator's landing zone, and a template warehouse per source."""
    root = tmp_path_factory.mktemp("corpus")
    landing = root / "landing"
    write_landing_zone(CONFIG, landing)
    return landing, {source: build_template(landing, source, root / f"{source}.duckdb") for source in ROLES}


def read_day(landing: Path, source: str, day) -> tuple[list[str], list[list[str]]]:
    with SOURCES[source].landing_file(landing, day).open(newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def base_of(landing: Path, source: str) -> Base:
    header, rows = read_day(landing, source, DAY)
    other_header, other_rows = read_day(landing, source, DAY - timedelta(days=1))
    assert other_header == header and len(rows) >= 8 and other_rows, (source, len(rows))
    tx_header, tx_rows = read_day(landing, "transactions", DAY)
    ts = tx_header.index("event_ts")
    late = max(tx_rows, key=lambda r: r[ts])
    return Base(source, header, rows, other_rows[0], (late[0], late[ts]))


CASES = [(source, kind) for source in ROLES for kind in KINDS] + \
    [("transactions", kind) for kind in TRANSACTION_KINDS] + [("chargebacks", kind) for kind in CHARGEBACK_KINDS]


def test_the_corpus_has_at_least_sixty_kinds_on_each_daily_source():
    assert len(KINDS) >= 60
    assert len(KINDS) + len(TRANSACTION_KINDS) >= 90


def expected_of(base: Base, kind: str) -> Expected:
    expected = {**KINDS, **TRANSACTION_KINDS, **CHARGEBACK_KINDS}[kind](base)
    if expected.loaded_ids is None:
        touched = {line - 2 for line in expected.bad_lines}
        expected.loaded_ids = {i for n, i in enumerate(base.ids) if n not in touched}
    return expected


@pytest.mark.parametrize(("source", "kind"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_mutated_file_loads_every_good_row_and_quarantines_exactly_the_bad_ones(world, tmp_path, source, kind):
    landing, templates = world
    base = base_of(landing, source)
    expected = expected_of(base, kind)

    spec = SOURCES[source]
    mine = tmp_path / "landing"
    target = spec.landing_file(mine, DAY)
    target.parent.mkdir(parents=True)
    target.write_bytes(expected.data)
    db = tmp_path / "w.duckdb"
    shutil.copy(templates[source], db)
    con = duckdb.connect(str(db))
    try:
        result = load_source(con, spec, mine, [DAY], LOADED_AT)
        quarantined = dict(con.execute(
            "SELECT line_number, reason FROM raw.quarantine WHERE source = $s AND partition_date = $d "
            "AND line_number > 0", {"s": source, "d": DAY}).fetchall())
        loaded = {r[0] for r in con.execute(
            f"SELECT {ROLES[source]['id']} FROM raw.{spec.table} WHERE partition_date = $d", {"d": DAY}).fetchall()}
        whole = con.execute("SELECT reason FROM raw.quarantine WHERE source = $s AND partition_date = $d "
                            "AND line_number = 0", {"s": source, "d": DAY}).fetchall()
    finally:
        con.close()

    assert quarantined == expected.bad_lines
    assert loaded == expected.loaded_ids
    assert result.rows_loaded == len(expected.loaded_ids)
    assert result.quarantine_by_reason == Counter(expected.bad_lines.values())
    assert result.blank_lines == expected.blank_lines
    # Every line is accounted for: loaded, quarantined, or blank.
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    if expected.problem:
        assert result.file_problems and expected.problem in result.file_problems[0]
        assert whole == ([] if expected.bad_lines else [(expected.problem,)])
    else:
        assert result.file_problems == [] and whole == []


def test_a_directory_or_an_outside_symlink_where_a_file_belongs_is_refused_before_reading(world, tmp_path):
    landing, templates = world
    spec = SOURCES["transactions"]
    shutil.copy(templates["transactions"], tmp_path / "w.duckdb")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    mine = tmp_path / "landing"
    target = spec.landing_file(mine, DAY)
    target.mkdir(parents=True)
    with pytest.raises(LandingFileInvalid, match="is a directory"):
        load_source(con, spec, mine, [DAY], LOADED_AT)
    target.rmdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("x\n")
    target.symlink_to(outside)
    with pytest.raises(LandingFileInvalid, match="outside the landing zone"):
        load_source(con, spec, mine, [DAY], LOADED_AT)
    # A symlink inside the landing zone is followed.
    target.unlink()
    inside = mine / "transactions" / "kept.csv"
    shutil.copy(spec.landing_file(landing, DAY), inside)
    target.symlink_to(inside)
    result = load_source(con, spec, mine, [DAY], LOADED_AT)
    assert result.rows_loaded == len(read_day(landing, "transactions", DAY)[1]) and result.rows_quarantined == 0
    con.close()


@pytest.mark.parametrize("key", ["../../etc", "2026-03-01/../x", "2026-3-1", "2026-02-30", "", "2026-03-01 "])
def test_partition_keys_that_are_not_days_are_refused(key):
    with pytest.raises(ValueError):
        partition_date(key)


def corpus_table(root: Path) -> str:
    """Every kind on its source(s): expected and actual loaded and quarantined counts, as a markdown table
    (`python tests/unit/ingestion/test_mutation_corpus.py`: the figures the issue's note lists)."""
    landing = root / "landing"
    write_landing_zone(CONFIG, landing)
    templates = {source: build_template(landing, source, root / f"{source}.duckdb") for source in ROLES}
    lines = ["| source | kind | lines in file | expected loaded / quarantined | loaded / quarantined | reasons |",
             "|---|---|---|---|---|---|"]
    for source, kind in CASES:
        expected = expected_of(base_of(landing, source), kind)
        mine = root / f"{source}-{kind}"
        target = SOURCES[source].landing_file(mine, DAY)
        target.parent.mkdir(parents=True)
        target.write_bytes(expected.data)
        shutil.copy(templates[source], mine / "w.duckdb")
        con = duckdb.connect(str(mine / "w.duckdb"))
        result = load_source(con, SOURCES[source], mine, [DAY], LOADED_AT)
        con.close()
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(result.quarantine_by_reason.items()))
        problem = f" (file: {result.file_problems[0].split(': ', 1)[1].split(':')[0]})" if result.file_problems else ""
        lines.append(f"| {source} | {kind} | {len(expected.data.splitlines())} | {len(expected.loaded_ids)} / "
                     f"{len(expected.bad_lines)} | {result.rows_loaded} / {result.rows_quarantined} | "
                     f"{reasons or '-'}{problem} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(corpus_table(Path(tmp)))
