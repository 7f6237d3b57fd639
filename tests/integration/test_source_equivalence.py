"""The same simulated days give the same raw tables whichever way they arrive: as landing files, or from the
system-of-record database, the chargeback API and the transaction stream.

Two platforms are built from one `SimulationConfig`: one loads the landing files, the other feeds the live source
systems day by day (tools/live_sources.py, what `make demo` does) and reads them in two incremental ingestion
runs, through the chargeback API service started by its own command and the embedded stream. The oracle is the
file world: every raw table holds the same rows, and the quarantine the same refusals by reason. A share of the
transactions is malformed on purpose (bad amounts, missing ids, broken and out-of-day timestamps, re-sent ids).
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from platform_env import local_settings
from process_helpers import free_port

from platform_assets.definitions import build_definitions
from platform_assets.lib import names
from platform_assets.simulator import SimulationConfig, write_landing_zone
from platform_assets.tools.live_sources import LiveSources, chunks, create_live_sources

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = SimulationConfig(start_date=date(2026, 5, 1), days=4, n_customers=150, n_merchants=30,
                          transactions_per_day=300, fraud_rate=0.05, malformed_rate=0.01, max_label_delay_days=2)
# The columns every way of arriving shares (the system of record adds updated_at and deleted_at).
COLUMNS = {
    "customers": "customer_id, created_at, country, card_type, birth_year",
    "merchants": "merchant_id, merchant_name, category_code, category, country, created_at",
    "transactions": "transaction_id, customer_id, merchant_id, amount, currency, channel, event_ts, partition_date",
    "chargebacks": "chargeback_id, transaction_id, reported_at, reason, partition_date",
}


def _tables(settings) -> dict[str, object]:
    import duckdb

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        found = {t: sorted(con.execute(f"SELECT {cols} FROM raw.{t}").fetchall()) for t, cols in COLUMNS.items()}
        found["quarantine"] = sorted(con.execute(
            "SELECT source, partition_date, reason, count(*) FROM raw.quarantine GROUP BY ALL").fetchall())
    finally:
        con.close()
    return found


def _materialize(settings, instance, first: date, last: date) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups(names.INGESTION),
                            instance=instance, resources=defs.resources,
                            tags=names.partition_range_tags(first.isoformat(), last.isoformat()))
    assert result.success
    return result


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    built = {}
    with dg.instance_for_test() as instance:
        with pytest.MonkeyPatch.context() as mp:
            files = local_settings(mp, tmp_path_factory.mktemp("files"))
            write_landing_zone(CONFIG, files.landing_dir)
            _materialize(files, instance, CONFIG.start_date, CONFIG.end_date)
            built["files"] = (files, _tables(files))
        with pytest.MonkeyPatch.context() as mp:
            data_dir = tmp_path_factory.mktemp("live")
            create_live_sources(data_dir, CONFIG)
            settings = local_settings(mp, data_dir, PLATFORM_CHARGEBACK_API_PORT=str(free_port()))
            assert settings.sources.as_dict() == {"master_data": "database", "chargebacks": "api",
                                                  "transactions": "stream"}
            live = LiveSources(settings, CONFIG)
            with live.running():
                for first, last in chunks(CONFIG.start_date, CONFIG.end_date, 2):
                    live.feed_through(last)
                    _materialize(settings, instance, first, last)
            built["live"] = (settings, _tables(settings), live)
    return built


@pytest.mark.parametrize("table", list(COLUMNS))
def test_every_raw_table_holds_the_same_rows(worlds, table):
    files, live = worlds["files"][1][table], worlds["live"][1][table]
    assert files, f"the file world loaded no {table}"
    assert len(live) == len(files) and live == files


def test_the_same_rows_are_refused_for_the_same_reasons(worlds):
    files, live = worlds["files"][1]["quarantine"], worlds["live"][1]["quarantine"]
    refused = {r[0] for r in files}
    assert "transactions" in refused, files
    assert live == files


def test_the_stream_carried_every_row_of_the_landing_files(worlds):
    _, tables, live = worlds["live"]
    transactions = len(tables["transactions"])
    refused = sum(n for source, _, _, n in tables["quarantine"] if source == "transactions")
    assert live.events_sent == transactions + refused
