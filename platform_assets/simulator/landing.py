"""Writes simulated batches into the landing zone, in the layout `docs/data-contracts.md` documents.

Files are written to a temporary name and renamed, so an ingestion run never sees half a file. A small share of
rows is deliberately malformed (bad amounts, missing ids, unparsable or out-of-day timestamps, repeated ids): the
ingestion stage must quarantine them and still load the good rows.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from platform_assets.lib.landing import SOURCES, partition_path, snapshot_path
from platform_assets.simulator.generator import DayBatch, SimulationConfig, World, build_world, simulate_day

TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # %S carries the microseconds for timestamp[us]


@dataclass(frozen=True)
class LandingSummary:
    days: int
    transactions: int
    fraud_transactions: int
    chargebacks_written: int
    chargebacks_not_yet_reported: int
    malformed_rows: int
    first_day: date
    last_day: date

    @property
    def fraud_rate(self) -> float:
        return self.fraud_transactions / max(self.transactions, 1)


def _as_text(table: pa.Table) -> pa.Table:
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            cols[name] = pc.strftime(col, format=TS_FORMAT)
        elif pa.types.is_floating(col.type):
            cols[name] = pc.cast(pc.round(col, 2), pa.string())
        else:
            cols[name] = pc.cast(col, pa.string())
    return pa.table(cols)


def _write_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
    tmp.replace(path)


def corrupt_transactions(table: pa.Table, rate: float, rng: np.random.Generator) -> tuple[pa.Table, int]:
    """Return the day's transactions as text with ~`rate` of rows broken in one of five ways."""
    text = _as_text(table)
    n = text.num_rows
    k = int(rng.binomial(n, rate)) if n else 0
    if k == 0:
        return text, 0
    rows = rng.choice(n, size=min(k, n), replace=False)
    cols = {name: text.column(name).to_pylist() for name in text.column_names}
    duplicates = []
    for i, kind in zip(rows, rng.integers(0, 5, len(rows))):
        if kind == 0:
            cols["amount"][i] = rng.choice(["n/a", "-12.00", ""])
        elif kind == 1:
            cols["customer_id"][i] = ""
        elif kind == 2:
            cols["event_ts"][i] = "not-a-timestamp"
        elif kind == 3:
            cols["event_ts"][i] = "1999-12-31T23:59:59Z"  # outside the partition day
        else:
            duplicates.append(i)
    corrupted = pa.table({name: pa.array(values, pa.string()) for name, values in cols.items()})
    if duplicates:
        corrupted = pa.concat_tables([corrupted, corrupted.take(duplicates)])
    return corrupted, len(rows)


def write_landing_zone(config: SimulationConfig, landing_dir: Path, clean: bool = True) -> LandingSummary:
    """Simulate `config` and write every source into `landing_dir`.

    The snapshot files hold every customer and merchant at its final version in the window, those the system
    of record deletes during it included (`system_of_record.py`: the window's transactions name them), so the
    files and the database give raw the same rows at the window's end.

    Chargebacks are filed under the day they are reported; those reported after the last simulated day are not
    written (they have not happened yet), which is exactly the label delay a real issuer lives with.
    """
    if clean:
        for source in SOURCES:
            shutil.rmtree(landing_dir / source, ignore_errors=True)
    world: World = build_world(config)
    _write_atomic(_as_text(world.customers), snapshot_path(landing_dir, "customers"))
    _write_atomic(_as_text(world.merchants), snapshot_path(landing_dir, "merchants"))

    pending: dict[date, list[pa.Table]] = defaultdict(list)
    n_tx = n_fraud = n_malformed = 0
    for day_index in range(config.days):
        batch: DayBatch = simulate_day(config, world, day_index)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, day_index, 77]))
        text, broken = corrupt_transactions(batch.transactions, config.malformed_rate, rng)
        _write_atomic(text, partition_path(landing_dir, "transactions", batch.day))
        n_tx += batch.transactions.num_rows
        n_fraud += int(batch.is_fraud.sum())
        n_malformed += broken
        if batch.chargebacks.num_rows:
            report_day = pc.cast(batch.chargebacks.column("reported_at"), pa.date32()).to_pylist()
            days = np.array(report_day, dtype="datetime64[D]")
            for d in np.unique(days):
                pending[d.astype(object)].append(batch.chargebacks.filter(pa.array(days == d)))

    written = late = 0
    for day, parts in pending.items():
        table = pa.concat_tables(parts).sort_by("reported_at")
        if day > config.end_date:
            late += table.num_rows
            continue
        _write_atomic(_as_text(table), partition_path(landing_dir, "chargebacks", day))
        written += table.num_rows
    # A day without chargebacks still gets its (empty) file: "nothing reported" is an answer, not a gap.
    for day_index in range(config.days):
        day = config.start_date + timedelta(days=day_index)
        path = partition_path(landing_dir, "chargebacks", day)
        if not path.exists():
            empty = pa.table({c: pa.array([], pa.string()) for c in
                              ("chargeback_id", "transaction_id", "reported_at", "reason")})
            _write_atomic(empty, path)
    return LandingSummary(
        days=config.days,
        transactions=n_tx,
        fraud_transactions=n_fraud,
        chargebacks_written=written,
        chargebacks_not_yet_reported=late,
        malformed_rows=n_malformed,
        first_day=config.start_date,
        last_day=config.end_date,
    )
