"""The simulated system of record: the operational database where customers and merchants live and change.

A landing zone's `customers.csv` / `merchants.csv` are a snapshot; the system of record is what that snapshot was
taken from, and it changes while the window's transactions happen: customers move (their country changes),
merchants change category (code and name), a few of each are closed. `change_log(config)` is that history,
drawn from the config's seed alone, so it is an oracle: the version of key K at time T is known without any
database or ingestion code (`ChangeLog.version`, `ChangeLog.state`).

The world the generator builds holds every key's *final* version (the snapshot files are written from it, see
`landing.py`), so whether the platform reads the files or the database at the end of the window, it sees the
same rows; the history only adds the versions before. A closed key is deleted after its last transaction in the
window (the transactions are simulated to find it), so no transaction names a key that no longer existed.

Deletes are soft: the row stays with `deleted_at` set and `updated_at` bumped. Extraction is incremental by the
`updated_at` cursor, which can only see rows that are still there: a hard delete would be invisible to it and
need a full key listing on every load. Operational databases that must keep the history of what a transaction
named keep their rows for the same reason.

`apply_system_of_record(config, url, through)` brings a SQL database (any SQLAlchemy URL: a SQLite file locally,
`postgresql+psycopg://...` in production) to the state as of `through`. It writes only the rows whose version
differs, in one transaction, so re-running it with the same `through` changes nothing and a later `through`
applies only the changes in between.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np

from platform_assets.simulator.generator import CATEGORIES, COUNTRIES, SimulationConfig, build_world, simulate

TABLES = ("customers", "merchants")
KEYS = {"customers": "customer_id", "merchants": "merchant_id"}
# The landing columns of each table, in the landing files' order (docs/data-contracts.md).
COLUMNS = {
    "customers": ("customer_id", "created_at", "country", "card_type", "birth_year"),
    "merchants": ("merchant_id", "merchant_name", "category_code", "category", "country", "created_at"),
}
# Shares of keys that change during the window (at least one of each table); a changed key changes once or,
# for SECOND_CHANGE_SHARE of them, twice. Deletes are drawn among the keys that make no transaction in the
# window's last day.
MOVE_SHARE = 0.05
RECATEGORIZE_SHARE = 0.05
SECOND_CHANGE_SHARE = 0.3
DELETE_SHARE = 0.01


@dataclass(frozen=True)
class Version:
    """One key's row as the system of record held it from `updated_at` on (until its next version)."""

    table: str
    key: str
    row: dict[str, object]
    updated_at: datetime
    deleted_at: datetime | None = None

    @property
    def kind(self) -> str:
        if self.deleted_at is not None:
            return "delete"
        return "create" if self.updated_at == self.row["created_at"] else "update"


@dataclass
class ChangeLog:
    """Every version of every key, in time order per key."""

    window_start: datetime
    window_end: datetime
    versions: dict[str, dict[str, list[Version]]] = field(default_factory=dict)

    def version(self, table: str, key: str, at: datetime) -> Version | None:
        """The version of `key` the database held at `at` (a deleted key's tombstone), None before it existed."""
        history = self.versions[table].get(key, [])
        i = bisect.bisect_right([v.updated_at for v in history], at)
        return history[i - 1] if i else None

    def state(self, table: str, at: datetime) -> dict[str, Version]:
        """Every key that existed by `at`, at its version then (tombstones included)."""
        return {k: v for k in self.versions[table] if (v := self.version(table, k, at)) is not None}

    def changes(self, table: str, after: datetime | None, through: datetime) -> list[Version]:
        """The versions that appeared in (`after`, `through`], in time order."""
        found = [v for history in self.versions[table].values() for v in history
                 if (after is None or v.updated_at > after) and v.updated_at <= through]
        return sorted(found, key=lambda v: (v.updated_at, v.key))

    def deleted(self, table: str) -> dict[str, datetime]:
        return {k: h[-1].deleted_at for k, h in self.versions[table].items() if h[-1].deleted_at is not None}


def _micros(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def _at(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def _last_transactions(config: SimulationConfig) -> dict[str, dict[str, int]]:
    """Each key's last transaction time in the window (microseconds), from the simulated days themselves."""
    last: dict[str, dict[str, int]] = {"customers": {}, "merchants": {}}
    for batch in simulate(config):
        ts = batch.transactions.column("event_ts").cast("int64").to_numpy()
        for table, column in (("customers", "customer_id"), ("merchants", "merchant_id")):
            ids = batch.transactions.column(column).to_pylist()
            for key, t in zip(ids, ts.tolist()):
                last[table][key] = t  # the day's rows are in time order
    return last


def _history(rng: np.random.Generator, table: str, row: dict, start_us: int, end_us: int, earlier: list[dict],
             deleted_after_us: int | None) -> list[Version]:
    """The versions of one key: `earlier` values (oldest first) before its final `row`, each change at a random
    second of the window after the key was created, and a tombstone after `deleted_after_us` if it is closed."""
    key, created_us = row[KEYS[table]], _micros(row["created_at"])
    first = max(created_us, start_us)
    delete_us = None
    if deleted_after_us is not None:
        low = max(first, deleted_after_us) + 1_000_000
        delete_us = int(rng.integers(low, end_us)) // 1_000_000 * 1_000_000 if low < end_us else None
    last = (delete_us or end_us) - 1_000_000
    if earlier and last <= first:
        earlier = []  # no room in the window for a change before the close: this key never changed
    times = sorted(int(t) // 1_000_000 * 1_000_000 for t in rng.integers(first, last, len(earlier))) if earlier \
        else []
    rows = [{**row, **e} for e in earlier] + [row]
    stamps = [created_us, *times]
    versions = [Version(table, key, r, _at(t)) for r, t in zip(rows, stamps)]
    if delete_us is not None:
        versions.append(Version(table, key, row, _at(delete_us), _at(delete_us)))
    return versions


@cache
def change_log(config: SimulationConfig) -> ChangeLog:
    """The system of record's history over `config`'s window (cached: it simulates the window once)."""
    world = build_world(config)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 4_242]))
    start = datetime(config.start_date.year, config.start_date.month, config.start_date.day, tzinfo=UTC)
    end = start + timedelta(days=config.days)
    start_us, end_us = _micros(start), _micros(end)
    last_tx = _last_transactions(config)
    log = ChangeLog(window_start=start, window_end=end)
    codes = {str(c.code): c for c in CATEGORIES}
    for table, snapshot in (("customers", world.customers), ("merchants", world.merchants)):
        rows = snapshot.to_pylist()
        n = len(rows)
        share = MOVE_SHARE if table == "customers" else RECATEGORIZE_SHARE
        changed = set(rng.choice(n, max(1, round(share * n)), replace=False).tolist())
        twice = rng.random(n) < SECOND_CHANGE_SHARE
        quiet_before = end_us - 86_400_000_000
        candidates = [i for i, r in enumerate(rows) if last_tx[table].get(r[KEYS[table]], 0) < quiet_before]
        n_delete = min(len(candidates), max(1, round(DELETE_SHARE * n)))
        deleted = set(rng.choice(candidates, n_delete, replace=False).tolist()) if n_delete else set()
        log.versions[table] = {}
        for i, r in enumerate(rows):
            key = r[KEYS[table]]
            earlier: list[dict] = []
            if i in changed:
                for _ in range(2 if twice[i] else 1):
                    avoid = {r["country"] if table == "customers" else r["category_code"],
                             *(e.get("country", e.get("category_code")) for e in earlier)}
                    if table == "customers":
                        choices = [c for c in COUNTRIES.tolist() if c not in avoid]
                        earlier.insert(0, {"country": str(rng.choice(choices))})
                    else:
                        choices = sorted(c for c in codes if c not in avoid)
                        cat = codes[str(rng.choice(choices))]
                        earlier.insert(0, {"category_code": str(cat.code), "category": cat.name})
            log.versions[table][key] = _history(
                rng, table, r, start_us, end_us, earlier, last_tx[table].get(key, start_us) if i in deleted else None)
    return log


@dataclass(frozen=True)
class AppliedSummary:
    """What `apply_system_of_record` changed, per table: rows inserted, updated (including deletes), and the
    tombstones written; `rows` is the table's size afterwards."""

    through: datetime
    inserted: dict[str, int]
    updated: dict[str, int]
    deleted: dict[str, int]
    rows: dict[str, int]

    @property
    def changed(self) -> int:
        return sum(self.inserted.values()) + sum(self.updated.values())


def _tables(metadata):
    import sqlalchemy as sa  # here, not at import: the simulator's files mode needs no SQL engine

    def ts(name, nullable=False):
        return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)

    customers = sa.Table(
        "customers", metadata,
        sa.Column("customer_id", sa.String(64), primary_key=True), ts("created_at"),
        sa.Column("country", sa.String(64)), sa.Column("card_type", sa.String(64)),
        sa.Column("birth_year", sa.Integer), ts("updated_at"), ts("deleted_at", nullable=True),
        sa.Index("customers_updated_at", "updated_at"),
    )
    merchants = sa.Table(
        "merchants", metadata,
        sa.Column("merchant_id", sa.String(64), primary_key=True), sa.Column("merchant_name", sa.String(256)),
        sa.Column("category_code", sa.String(16)), sa.Column("category", sa.String(64)),
        sa.Column("country", sa.String(64)), ts("created_at"), ts("updated_at"), ts("deleted_at", nullable=True),
        sa.Index("merchants_updated_at", "updated_at"),
    )
    return {"customers": customers, "merchants": merchants}


def _utc(ts: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes (what was written, in UTC); PostgreSQL aware ones.
    return None if ts is None else (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC))


def apply_system_of_record(config: SimulationConfig, url: str, through: datetime) -> AppliedSummary:
    """Bring the database at `url` to the system of record's state as of `through`, in one transaction.

    Idempotent: a row whose stored `updated_at` already equals its version's is left alone. A database that
    holds a newer version than `through` is refused (the system of record does not travel back), and rows of
    keys the simulator does not know are left alone.
    """
    import sqlalchemy as sa

    if through.tzinfo is None:
        raise ValueError("through must be timezone-aware")
    log = change_log(config)
    engine = sa.create_engine(url)
    inserted, updated, deleted, rows = {}, {}, dict.fromkeys(TABLES, 0), {}
    try:
        metadata = sa.MetaData()
        tables = _tables(metadata)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for name, table in tables.items():
                key_col = table.c[KEYS[name]]
                stored = {k: _utc(u) for k, u in conn.execute(sa.select(key_col, table.c.updated_at))}
                new, changed = [], []
                for key, version in log.state(name, through).items():
                    have = stored.get(key)
                    if have is not None and have > version.updated_at:
                        raise ValueError(f"{name} {key} was updated at {have}, after {through}: the database is "
                                         "ahead of the requested time; start from an empty database")
                    if have == version.updated_at:
                        continue
                    values = {**version.row, "updated_at": version.updated_at, "deleted_at": version.deleted_at}
                    (new if have is None else changed).append(values)
                    deleted[name] += version.deleted_at is not None
                if new:
                    conn.execute(table.insert(), new)
                for values in changed:
                    conn.execute(table.update().where(key_col == values[KEYS[name]]).values(**values))
                inserted[name], updated[name] = len(new), len(changed)
                rows[name] = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()
    return AppliedSummary(through=through, inserted=inserted, updated=updated, deleted=deleted,
                          rows=rows)
