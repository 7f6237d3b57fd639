"""`make relocate OLD=<old dir>` (python -m platform_assets.tools.relocate OLD [NEW]): after moving the data directory.

Most of the data directory is found relative to `PLATFORM_DATA_DIR` at use (training-set manifests name their
parquet file relative to themselves; dbt, Feast's CLI and the platform derive every path from the variable). Four
stores, written by the libraries themselves, record absolute paths, and this command rewrites them from OLD to
NEW (default: the active `PLATFORM_DATA_DIR`) once the directory has been moved:

- **MLflow** (`mlflow/mlflow.db`): MLflow resolves a relative artifact location to an absolute one when it
  creates an experiment, so experiments' `artifact_location`, runs' `artifact_uri`, logged models' and model
  versions' `storage_location`, and tags such as `training_set_path` hold OLD. Every text value of the database is
  rewritten (then VACUUM, so no copy stays in freed pages), and each model's `MLmodel` file (`artifact_path`).
- **Feast** (`feast/registry.db`, the local profile's file registry): the data sources' parquet paths. Every
  string of the registry protobuf is rewritten.
- **DuckDB** (`warehouse/warehouse.duckdb`): dbt-duckdb's `external` marts are views over
  `read_parquet('<exports>/<mart>.parquet')`; each view naming OLD is re-created with NEW.
- **Training sets** written before manifests held relative names (`training_sets/*.json`).

A path is rewritten only where OLD is followed by a path separator or ends the value (`/data` does not match
`/data2`), in both its plain and its `file://` URI form. Nothing else is touched: Dagster's run history keeps the
paths its past runs reported (links of old reports in the UI), the landing manifest already holds relative paths.
Stop `make dev`, `make serve` and notebooks first (the warehouse and the MLflow database are opened for writing).
Running it twice, or on a directory that was never anywhere else, changes nothing.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from platform_assets.lib.files import write_atomic
from platform_assets.settings import load_settings


@dataclass
class Relocated:
    """What was rewritten, per store: counts of values (MLflow, registry) or views (warehouse) and files."""

    mlflow_values: int = 0
    mlmodel_files: int = 0
    registry_strings: int = 0
    warehouse_views: list[str] = field(default_factory=list)
    manifests: int = 0

    def lines(self) -> list[str]:
        return [
            f"MLflow: {self.mlflow_values} values in mlflow.db, {self.mlmodel_files} MLmodel files",
            f"Feast registry: {self.registry_strings} paths",
            f"warehouse: {len(self.warehouse_views)} views ({', '.join(self.warehouse_views) or 'none'})",
            f"training-set manifests: {self.manifests}",
        ]


def path_rewriter(old: Path, new: Path, escape: Callable[[str], str] = str) -> Callable[[str], str]:
    """A function replacing OLD by NEW in a text, as a plain path and as a `file://` URI, at path boundaries.
    `escape` is applied to the inserted path (e.g. doubling quotes inside a SQL literal)."""
    forms = {old.as_uri(): new.as_uri(), str(old): escape(str(new))}
    pattern = re.compile("(" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + r")(?=[/\\'\",;)\s]|$)")
    return lambda text: pattern.sub(lambda m: forms[m.group(1)], text)


def relocate_mlflow(db: Path, rewrite: Callable[[str], str]) -> int:
    """Rewrite every text value of MLflow's SQLite database; the number of values changed."""
    changed = 0
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        with con:
            for table in tables:
                columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
                for column in columns:
                    rows = con.execute(f'SELECT rowid, "{column}" FROM "{table}" WHERE typeof("{column}") = \'text\'')
                    for rowid, value in rows.fetchall():
                        updated = rewrite(value)
                        if updated != value:
                            con.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', (updated, rowid))
                            changed += 1
        if changed:
            con.execute("VACUUM")
    finally:
        con.close()
    return changed


def _rewrite_file(path: Path, rewrite: Callable[[str], str]) -> bool:
    text = path.read_text()
    updated = rewrite(text)
    if updated == text:
        return False
    write_atomic(path, updated)
    return True


def _rewrite_proto(message, rewrite: Callable[[str], str]) -> int:
    changed = 0
    for descriptor, value in message.ListFields():
        repeated = descriptor.is_repeated
        if descriptor.type == descriptor.TYPE_MESSAGE:
            if descriptor.message_type.GetOptions().map_entry:
                for key in list(value):
                    item = value[key]
                    if isinstance(item, str):
                        if rewrite(item) != item:
                            value[key] = rewrite(item)
                            changed += 1
                    else:
                        changed += _rewrite_proto(item, rewrite)
            else:
                for item in (value if repeated else [value]):
                    changed += _rewrite_proto(item, rewrite)
        elif descriptor.type == descriptor.TYPE_STRING:
            if repeated:
                for i, item in enumerate(value):
                    if rewrite(item) != item:
                        value[i] = rewrite(item)
                        changed += 1
            elif rewrite(value) != value:
                setattr(message, descriptor.name, rewrite(value))
                changed += 1
    if message.DESCRIPTOR.full_name == VERSION_RECORD:
        # Feast's feature view version history keeps each version as a serialized proto of its own type.
        inner = _version_types()[message.feature_view_type].FromString(message.feature_view_proto)
        inner_changed = _rewrite_proto(inner, rewrite)
        if inner_changed:
            message.feature_view_proto = inner.SerializeToString()
            changed += inner_changed
    return changed


VERSION_RECORD = "feast.core.FeatureViewVersionRecord"


def _version_types() -> dict:
    """The proto class of each `feature_view_type` of a version record (as Feast's proto_registry_utils reads it)."""
    from feast.protos.feast.core.FeatureView_pb2 import FeatureView
    from feast.protos.feast.core.LabelView_pb2 import LabelView
    from feast.protos.feast.core.OnDemandFeatureView_pb2 import OnDemandFeatureView
    from feast.protos.feast.core.StreamFeatureView_pb2 import StreamFeatureView

    return {"feature_view": FeatureView, "stream_feature_view": StreamFeatureView,
            "on_demand_feature_view": OnDemandFeatureView, "label_view": LabelView}


def relocate_registry(path: Path, rewrite: Callable[[str], str]) -> int:
    """Rewrite the strings of Feast's file registry (the sources' parquet paths); the number changed."""
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = Registry()
    registry.ParseFromString(path.read_bytes())
    changed = _rewrite_proto(registry, rewrite)
    if changed:
        write_atomic(path, registry.SerializeToString())
    return changed


def relocate_warehouse(path: Path, old: Path, new: Path) -> list[str]:
    """Re-create the warehouse's views that read files under OLD; their qualified names."""
    from platform_assets.lib.warehouse_file import connect

    rewrite = path_rewriter(old, new, escape=lambda text: text.replace("'", "''"))
    con = connect(path)
    try:
        views = con.execute("SELECT database_name, schema_name, view_name, sql FROM duckdb_views() "
                            "WHERE NOT internal AND NOT temporary").fetchall()
        done = []
        for database, schema, view, sql in views:
            updated = rewrite(sql)
            if updated == sql:
                continue
            con.execute(f'USE "{database}"."{schema}"')
            con.execute(re.sub(r"^\s*CREATE\s+VIEW", "CREATE OR REPLACE VIEW", updated, count=1, flags=re.IGNORECASE))
            done.append(f"{schema}.{view}")
        con.execute("CHECKPOINT")
        return done
    finally:
        con.close()


def relocate(old: Path, new: Path) -> Relocated:
    """Rewrite the absolute paths under `old` recorded in the stores of the data directory `new`."""
    old, new = Path(old).absolute(), Path(new).resolve()
    if not new.is_dir():
        raise FileNotFoundError(f"{new} is not a directory: move the data directory there first")
    if old == new:
        return Relocated()
    if new.is_relative_to(old):
        # /a -> /a/b rewrites /a/x to /a/b/x, and a second run would make it /a/b/b/x: not idempotent.
        raise ValueError(f"{new} lies inside {old}: move the data directory out of its old place, then relocate")
    rewrite = path_rewriter(old, new)
    result = Relocated()
    db = new / "mlflow" / "mlflow.db"
    if db.exists():
        result.mlflow_values = relocate_mlflow(db, rewrite)
        artifacts = new / "mlflow" / "artifacts"
        result.mlmodel_files = sum(_rewrite_file(p, rewrite) for p in sorted(artifacts.rglob("MLmodel")))
    registry = new / "feast" / "registry.db"
    if registry.exists():
        result.registry_strings = relocate_registry(registry, rewrite)
    warehouse = new / "warehouse" / "warehouse.duckdb"
    if warehouse.exists():
        result.warehouse_views = relocate_warehouse(warehouse, old, new)
    result.manifests = sum(_rewrite_file(p, rewrite) for p in sorted((new / "training_sets").glob("*.json")))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="where the data directory was (absolute path)")
    parser.add_argument("new", nargs="?", help="where it is now (default: PLATFORM_DATA_DIR, else <repo>/data)")
    args = parser.parse_args(argv)
    old = Path(args.old)
    if not old.is_absolute():
        parser.error(f"OLD must be the absolute path the data directory had, got {args.old!r}")
    new = Path(args.new) if args.new else load_settings().data_dir
    try:
        result = relocate(old, new)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"relocated {old} -> {new.resolve()}")
    for line in result.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
