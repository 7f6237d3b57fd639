"""The system of record's updates and deletes, loaded incrementally, end up as snapshot versions, and transactions
and merchant feature rows read the category captured as of their time.

The database (SQLite) is brought to three points of its simulated history; after each, the real ingestion assets
load it into raw and a real `dbt build` snapshots it. The oracle is the simulator's change log: each key's
versions as the three captures saw them (history starts at the first capture, changes between two captures
collapse into the newest), dated by the system of record's `updated_at`; never the models' output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from platform_env import local_settings

from platform_assets.ingestion.loader import load_source
from platform_assets.ingestion.sources import CHARGEBACKS, TRANSACTIONS
from platform_assets.lib import names
from platform_assets.resources.profile import build_resources
from platform_assets.settings import PROJECT_ROOT
from platform_assets.simulator import SimulationConfig, write_landing_zone

sor = pytest.importorskip("platform_assets.simulator.system_of_record",
                          reason="the system-of-record source (branch i17-sor) is not merged yet")

CONFIG = SimulationConfig(start_date=pd.Timestamp("2026-03-01").date(), days=4, n_customers=300, n_merchants=60,
                          transactions_per_day=300, malformed_rate=0.0)
CHECKED = {"customers": ("created_at", "country", "card_type", "birth_year"),
           "merchants": ("merchant_name", "category_code", "category", "country", "created_at")}


def _captured(log, table: str, captures) -> dict[str, list[tuple]]:
    """Per key, (version, valid_from) as the snapshots must hold them: a new version at a capture whose state
    differs from the previous capture's in an attribute or `deleted_at`."""
    versions: dict[str, list[tuple]] = {}
    for at in captures:
        for key, version in log.state(table, at).items():
            seen = versions.setdefault(key, [])
            value = (tuple(version.row[c] for c in CHECKED[table]), version.deleted_at)
            if not seen or (tuple(seen[-1][0].row[c] for c in CHECKED[table]), seen[-1][0].deleted_at) != value:
                seen.append((version, version.updated_at))
    return versions


def _as_of(versions: list[tuple], at) -> object:
    """The captured version valid at `at`; the first one stands for all time before it."""
    valid = [v for i, (v, start) in enumerate(versions) if i == 0 or start <= at]
    return valid[-1]


def _plain(row) -> tuple:
    """A row comparable whatever the driver: instants as UTC ISO text, everything else as text, NULL as ""."""
    return tuple("" if x is None else x.astimezone(UTC).isoformat() if isinstance(x, datetime) else str(x)
                 for x in row)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("scd-sor")
    log = sor.change_log(CONFIG)
    captures = [log.window_start, log.window_start + timedelta(days=2), log.window_end]
    url = f"sqlite:///{data_dir / 'sources' / 'system_of_record.sqlite'}"
    (data_dir / "sources").mkdir()
    (data_dir / "exports").mkdir()
    (data_dir / "dagster").mkdir()
    write_landing_zone(CONFIG, data_dir / "landing")
    days = [CONFIG.start_date + timedelta(days=i) for i in range(CONFIG.days)]
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test(temp_dir=str(data_dir / "dagster")) as instance:
        settings = local_settings(mp, data_dir, PLATFORM_SOURCE_DATABASE_URL=url, PLATFORM_MASTER_DATA_SOURCE="database")
        from platform_assets.ingestion.definitions import build_defs

        master = [a for a in build_defs(settings).assets
                  if set(a.keys) & {names.RAW_CUSTOMERS, names.RAW_MERCHANTS}]
        for i, at in enumerate(captures):
            sor.apply_system_of_record(CONFIG, url, at)
            assert dg.materialize(master, resources=build_resources(settings), instance=instance).success
            if i == 0:
                with duckdb.connect(str(settings.warehouse_path)) as con:
                    for spec in (TRANSACTIONS, CHARGEBACKS):
                        load_source(con, spec, data_dir / "landing", days, log.window_end)
            result = subprocess.run(
                [str(Path(sys.executable).parent / "dbt"), "build", "--profiles-dir", ".", "--quiet",
                 "--target-path", str(data_dir / "dbt_target"), "--log-path", str(data_dir / "dbt_logs"),
                 "--vars", json.dumps({"platform_data_dir": str(data_dir), "platform_duckdb_memory_limit": "1GB"})],
                cwd=PROJECT_ROOT / "dbt_project", capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return {"data_dir": data_dir, "log": log, "captures": captures,
            "versions": {t: _captured(log, t, captures) for t in sor.TABLES}}


@pytest.mark.parametrize("table", ["customers", "merchants"])
def test_snapshot_holds_every_captured_version_dated_by_the_system_of_record(built, table):
    key = sor.KEYS[table]
    with duckdb.connect(str(built["data_dir"] / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        got = con.execute(f"SELECT {key}, {', '.join(CHECKED[table])}, deleted_at, dbt_valid_from "
                          f"FROM snapshots.{table}_snapshot").fetchall()
    expected = [(k, *(v.row[c] for c in CHECKED[table]), v.deleted_at, start)
                for k, versions in built["versions"][table].items() for v, start in versions]
    assert sorted(map(_plain, got)) == sorted(map(_plain, expected))
    changed = sum(len(v) > 1 for v in built["versions"][table].values())
    deleted = sum(v[-1][0].deleted_at is not None for v in built["versions"][table].values())
    assert changed > 0 and deleted > 0, "the simulated history must change and delete keys"


def test_transactions_and_merchant_rows_read_the_category_captured_as_of_their_time(built):
    exports = built["data_dir"] / "exports"
    versions = built["versions"]["merchants"]
    facts = pd.read_parquet(exports / "fct_transactions.parquet")
    expected = [int(_as_of(versions[m], ts).row["category_code"]) for m, ts in zip(facts.merchant_id, facts.event_ts,
                                                                                 strict=True)]
    assert facts.merchant_category_code.tolist() == expected
    final = [int(versions[m][-1][0].row["category_code"]) for m in facts.merchant_id]
    assert sum(a != b for a, b in zip(expected, final, strict=True)) > 0, "no transaction saw an older category"
    rows = pd.read_parquet(exports / "fct_merchant_daily_features.parquet")
    assert rows.merch_category_code.tolist() == [
        int(_as_of(versions[m], ts).row["category_code"])
        for m, ts in zip(rows.merchant_id, rows.event_timestamp, strict=True)]
