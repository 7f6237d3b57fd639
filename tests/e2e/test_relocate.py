"""The data directory moves: `mv` it, `python -m platform_assets.tools.relocate OLD`, and everything works from NEW.

The demo's world is copied to A (and relocated there, so A is a world of its own: the shared world is never
touched), then A is moved to B with `mv` and relocated with the documented command. A no longer exists, so any
path still pointing there fails: the champion is loaded from the MLflow registry and scores its holdout, the
warehouse's views are queried, Feast serves online and historical features, an asset runs into the moved Dagster
instance. Afterwards neither path appears in MLflow's database or artifacts, Feast's registry, the training-set
manifests, or the warehouse's view definitions.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from platform_env import local_settings

from platform_assets.settings import PROJECT_ROOT

# Files that may still hold an old path after a move: Dagster's history of the runs made there (what those runs
# reported, by design) and the warehouse file's freed blocks (its views are checked through DuckDB instead).
# Records of what happened where, kept as they were: Dagster's run history, the demo's logs, and the warehouse
# backups taken before the move (a restored one is relocated again: docs/how-to.md#move-the-data-directory).
HISTORY = ("dagster/", "logs/", "backups/")
FREED_BLOCKS = ("warehouse/warehouse.duckdb",)


def files_naming(root: Path, *paths: Path) -> set[str]:
    needles = [str(p).encode() for p in paths]
    return {str(f.relative_to(root)) for f in root.rglob("*")
            if f.is_file() and any(n in f.read_bytes() for n in needles)}


def mlflow_text_values_naming(db: Path, path: Path) -> list[tuple[str, str]]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        found = []
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for column in [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]:
                if con.execute(f'SELECT count(*) FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), ?) > 0',
                               (str(path),)).fetchone()[0]:
                    found.append((table, column))
        return found
    finally:
        con.close()


def test_the_data_directory_moves(demo_platform, tmp_path, monkeypatch):
    import shutil

    from platform_assets.tools.relocate import relocate

    origin = demo_platform.data_dir
    old = tmp_path / "old-home" / "data"
    shutil.copytree(origin, old, symlinks=True)
    relocate(origin, old)
    new = tmp_path / "new home" / "platform data"  # spaces: file URIs are percent-encoded, plain paths are not
    new.parent.mkdir()
    subprocess.run(["mv", str(old), str(new)], check=True)
    assert not old.exists()

    out = subprocess.run([sys.executable, "-m", "platform_assets.tools.relocate", str(old)], cwd=PROJECT_ROOT,
                         env={**demo_platform.env, "PLATFORM_DATA_DIR": str(new)}, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"relocated {old} -> {new}" in out.stdout
    assert "warehouse: 7 views" in out.stdout  # the dbt marts exported as parquet (dbt-duckdb external)

    stale = files_naming(new, old, origin)
    assert {f for f in stale if not f.startswith(HISTORY)} <= set(FREED_BLOCKS), stale
    assert not mlflow_text_values_naming(new / "mlflow" / "mlflow.db", old)

    settings = local_settings(monkeypatch, new)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)  # MLflow sets it; undone after the test
    monkeypatch.setenv("DAGSTER_HOME", str(new / "dagster"))

    # The MLflow registry: locations under NEW, the champion loads from there and scores its holdout.
    from platform_assets.lib.champion import require_champion
    from platform_assets.lib.training_sets import read_split
    from platform_assets.resources.profile import build_resources

    resources = build_resources(settings)
    mlflow_tracking = resources["mlflow_tracking"]
    client = mlflow_tracking.client()
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    assert experiment.artifact_location.startswith(new.as_uri() + "/")
    champion = require_champion(mlflow_tracking, settings.data_dir / "training_sets")
    assert client.get_model_version_download_uri(settings.model_name, champion.number).startswith(new.as_uri() + "/")
    assert client.get_run(champion.version.run_id).info.artifact_uri.startswith(new.as_uri() + "/")
    assert Path(champion.manifest.path).parent == new / "training_sets"
    holdout = read_split(champion.manifest.path, "holdout")
    scores = champion.score(holdout)
    assert len(scores) == len(holdout) > 100 and 0 <= scores.min() < scores.max() <= 1

    # The warehouse: the marts' views read the parquet exports under NEW.
    from platform_assets.lib.warehouse_file import connect

    con = connect(settings.warehouse_path, read_only=True)
    try:
        views = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
        assert not [name for name, sql in views if str(old) in sql or str(origin) in sql]
        labels, frauds = con.execute("SELECT count(*), sum(is_fraud::int) FROM main.fct_transaction_labels").fetchone()
        assert labels > 10_000 and frauds > 0
        customer, merchant = con.execute(
            "SELECT customer_id, merchant_id FROM main.fct_transactions ORDER BY event_ts DESC LIMIT 1").fetchone()
    finally:
        con.close()

    # Feast: online features from the moved SQLite store, a point-in-time frame from the moved exports.
    from platform_assets.tools.notebook import feature_store, historical_features, online_features

    store = feature_store(settings)
    assert {v.name for v in store.list_feature_views()} >= {"customer_daily_features", "merchant_daily_features"}
    online = online_features([{"customer_id": customer, "merchant_id": merchant, "amount": 42.0,
                               "transaction_epoch": int(datetime.now(UTC).timestamp())}], settings=settings)
    assert online.values["cust_txn_count_30d"][0] is not None and online.values["merch_txn_count_30d"][0] is not None
    assert not online.stale
    day = demo_platform.last_day
    frame = historical_features(datetime.combine(day, datetime.min.time(), UTC),
                                datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC), settings=settings)
    assert len(frame) > 100 and frame["cust_txn_count_30d"].notna().mean() > 0.9

    # One asset, run into the moved Dagster instance: the newest day scored by the champion.
    from platform_assets.definitions import build_definitions
    from platform_assets.lib import names

    defs = build_definitions(settings)
    with dg.DagsterInstance.from_config(str(new / "dagster")) as instance:
        assert instance.get_latest_materialization_event(names.FRAUD_MODEL) is not None  # the demo's history moved
        result = dg.materialize(list(defs.assets), selection=[names.DAILY_PREDICTIONS], instance=instance,
                                resources=defs.resources, partition_key=day.isoformat())
        assert result.success
    assert files_naming(new, old) <= set(FREED_BLOCKS) | {f for f in stale if f.startswith(HISTORY)}
