"""Chargebacks from the acquirer's paged API into `raw.chargebacks`, incrementally, by the landing-file contract.

A run for the days a..b reads every item after the committed cursor that was reported before b+1 (the API's
order is (reported_at, chargeback_id), so that is everything up to the end of b), receives the items as they came
(`received.py`, keyed by each item's position in that order, so an item the API sends twice is held once),
rebuilds the days they belong to and the days a..b from all of their received items, and moves the cursor to the
last item read: all in one DuckDB transaction, so a run that fails or is killed leaves neither rows nor a cursor
behind, and its rerun reads the same items again. The HTTP reads happen before the transaction, with the warehouse
closed: a slow or failing API never holds the writer's lock.

Items of days before a (the cursor was behind: earlier days never ran, or ran before those items were reported)
are loaded too: the cursor passes them, and skipping them would lose them. Their days are rebuilt and reported as
materializations of their own partitions, and listed in the run's metadata (`days_outside_range`); so would items
of days after b that an API ignoring `reported_before` sent.

A 200 whose body is not a page (garbage) is retried; what it said is received as it came (a record that is not an
object, quarantined `not_a_record`), under the day of the page that replaced it. It carries no chargeback, so the
quarantine check judges the share of refused chargebacks without it; `garbage_pages` counts it.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import duckdb

from platform_assets.ingestion.assets import IngestionConfig, load_result, quarantine_check
from platform_assets.ingestion.loader import LoadResult
from platform_assets.ingestion.received import (
    Received,
    ensure_received_table,
    rebuild_days,
    receive,
    received_table,
)
from platform_assets.ingestion.sources import CHARGEBACKS
from platform_assets.lib import names
from platform_assets.lib.identifiers import partition_date
from platform_assets.resources.chargeback_api import ChargebackApi, Fetched
from platform_assets.resources.warehouse import WarehouseResource
from platform_assets.settings import Settings

SOURCE = "chargeback_api"
# No PRIMARY KEY: DuckLake (the production warehouse) has no constraints. One row per source holds because the
# only writer replaces it inside its load's transaction.
CURSORS_DDL = """
CREATE TABLE IF NOT EXISTS raw.source_cursors (
    source VARCHAR NOT NULL,
    cursor VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
)
"""
GARBAGE_PREFIX = "garbage|"


def committed_cursor(con: duckdb.DuckDBPyConnection) -> str | None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(CURSORS_DDL)
    row = con.execute("SELECT cursor FROM raw.source_cursors WHERE source = $s", {"s": SOURCE}).fetchone()
    return row[0] if row else None


def _commit_cursor(con: duckdb.DuckDBPyConnection, cursor: str, at: datetime) -> None:
    con.execute("DELETE FROM raw.source_cursors WHERE source = $s", {"s": SOURCE})
    con.execute("INSERT INTO raw.source_cursors VALUES ($s, $c, $at)", {"s": SOURCE, "c": cursor, "at": at})


def _reported_day(item: object) -> date | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("reported_at"), str):
        return None
    try:
        reported = datetime.fromisoformat(item["reported_at"])
    except ValueError:
        return None
    # A time without a zone is refused by the contract (timestamp_without_zone): it is filed under its own date,
    # not under the day this machine's zone would make of it.
    return (reported if reported.tzinfo is None else reported.astimezone(UTC)).date()


def received_items(fetched: Fetched, last_day: date, received_at: datetime) -> list[Received]:
    """The items of `fetched` as received records, in the API's order. An item is at (reported_at, chargeback_id),
    its place in that order; one without them (not an object, an unreadable time) is at its page's cursor and
    index, under the day of the item before it (it is quarantined either way). A garbage page's body goes under
    the day of the first item of the page that replaced it (`last_day` if that page was empty)."""
    records: list[Received] = []
    day = None
    for cursor, page in fetched.pages:
        for index, item in enumerate(page.items):
            item_day = _reported_day(item)
            if item_day is not None and isinstance(item.get("chargeback_id"), str):
                position = f"{item['reported_at']}|{item['chargeback_id']}"
            else:
                position = f"{cursor}#{index}"
            day = item_day or day or last_day
            records.append(Received(position, day, item if isinstance(item, Mapping) else str(item)))
    first_day_after = {}
    for cursor, page in fetched.pages:
        first_day_after.setdefault(cursor, next(filter(None, map(_reported_day, page.items)), last_day))
    records.extend(
        Received(f"{GARBAGE_PREFIX}{g.cursor}|{received_at.isoformat()}|{g.attempt}",
                 first_day_after.get(g.cursor, last_day), g.body)
        for g in fetched.garbage)
    return records


def _garbage_in(con: duckdb.DuckDBPyConnection, days: set[date]) -> int:
    return con.execute(
        f"SELECT count(*) FROM {received_table(CHARGEBACKS)} WHERE partition_date IN (SELECT unnest($days)) "
        "AND starts_with(position, $prefix)", {"days": sorted(days), "prefix": GARBAGE_PREFIX}).fetchone()[0]


def load_chargebacks(con: duckdb.DuckDBPyConnection, days: list[date], fetched: Fetched, cursor_read: str | None,
                     loaded_at: datetime) -> tuple[LoadResult, set[date], int, int]:
    """Receive what `fetched` brought, rebuild its days and `days`, and commit the cursor, in one transaction.
    Returns the load, the days rebuilt, the items new to the warehouse (garbage aside), and the garbage bodies
    held for those days."""
    records = received_items(fetched, max(days), loaded_at)
    last_cursor = next((p.next_cursor for _, p in reversed(fetched.pages) if p.items), None)
    con.execute("SET TimeZone = 'UTC'")
    ensure_received_table(con, CHARGEBACKS)
    con.begin()
    try:
        if committed_cursor(con) != cursor_read:
            raise RuntimeError("the chargeback cursor moved while this run read the API (another writer outside "
                               f"the {names.DUCKDB_WRITER_POOL} pool?): nothing loaded, run again")
        new, new_days = receive(con, CHARGEBACKS, records, SOURCE, loaded_at)
        rebuilt = set(days) | new_days
        load = rebuild_days(con, CHARGEBACKS, rebuilt, SOURCE, loaded_at)
        garbage = _garbage_in(con, rebuilt)
        if last_cursor is not None:
            _commit_cursor(con, last_cursor, loaded_at)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return load, rebuilt, new - len(fetched.garbage), garbage


def _result(load: LoadResult, fetched: Fetched, garbage: int, new: int, outside: list[date], cursor: str | None,
            max_share: float) -> dg.MaterializeResult:
    return load_result(CHARGEBACKS, load, max_share, names.RAW_CHARGEBACKS, not_records=garbage, metadata={
        "pages": len(fetched.pages),
        "requests": fetched.requests,
        "retries_by_cause": dg.MetadataValue.json(dict(fetched.retries)),
        "garbage_pages": len(fetched.garbage),
        "garbage_quarantined": garbage,
        "items_read": fetched.items,
        "items_new": new,
        "read_seconds": float(round(fetched.seconds, 3)),
        "days_outside_range": dg.MetadataValue.json([d.isoformat() for d in outside]),
        "cursor": cursor or "",
    })


def build_defs(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    @dg.asset(
        key=names.RAW_CHARGEBACKS,
        deps=[names.RAW_TRANSACTIONS],
        group_name=names.INGESTION,
        kinds={"api", "duckdb"},
        description="Chargebacks read from the acquirer's API (incremental by cursor), one daily partition per "
                    "UTC day they were reported, in raw.chargebacks.",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.warehouse_writer_pool,
        check_specs=[quarantine_check(names.RAW_CHARGEBACKS, "Refused chargebacks stay below max_quarantine_share")],
        metadata={"source_url": settings.chargeback_api_url, "table": f"raw.{CHARGEBACKS.table}"},
        tags={"layer": "raw"},
    )
    def raw_chargebacks(context: dg.AssetExecutionContext, config: IngestionConfig, warehouse: WarehouseResource,
                        chargeback_api: ChargebackApi) -> dg.MaterializeResult:
        days = sorted(partition_date(k) for k in context.partition_keys)
        bound = datetime.combine(days[-1] + timedelta(days=1), time(), UTC)

        def progress(fetched: Fetched) -> None:
            if len(fetched.pages) % 20 == 0:
                context.log.info(f"chargebacks: {len(fetched.pages)} pages, {fetched.items:,} items so far")

        # The cursor is read, the API read from it and the cursor moved by one writer at a time (on the lake: its
        # advisory lock; on the file: the pool), so a retried commit still starts from the cursor it read.
        with warehouse.exclusive(f"source:{SOURCE}"):
            with warehouse.get_connection() as con:
                cursor = committed_cursor(con)
            fetched = chargeback_api.read(cursor, bound, on_page=progress)

            def work(con):
                return (*load_chargebacks(con, days, fetched, cursor, datetime.now(UTC)), committed_cursor(con))

            load, rebuilt, new, garbage, committed = warehouse.write(work, log=context.log.warning)
        outside = sorted(rebuilt - set(days))
        for day in outside:
            if partitions.has_partition_key(day.isoformat()):
                context.log_event(dg.AssetMaterialization(
                    names.RAW_CHARGEBACKS, partition=day.isoformat(),
                    metadata={"loaded_by_range": f"{days[0]}..{days[-1]}", "source": SOURCE}))
        context.log.info(
            f"chargebacks: {fetched.items:,} items in {len(fetched.pages)} pages ({new:,} new, "
            f"{sum(fetched.retries.values())} retries {dict(fetched.retries)}, {len(fetched.garbage)} garbage), "
            f"{load.rows_loaded:,} rows in {len(rebuilt)} days, {load.rows_quarantined:,} quarantined"
            + (f"; days outside the range loaded too: {[d.isoformat() for d in outside]}" if outside else ""))
        return _result(load, fetched, garbage, new, outside, committed, config.max_quarantine_share)

    return dg.Definitions(assets=[raw_chargebacks])
