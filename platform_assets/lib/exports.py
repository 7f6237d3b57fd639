"""Reading the warehouse's parquet exports (the dbt marts), which every stage after the warehouse consumes.

Readers use an in-memory DuckDB over the parquet files, never the warehouse file itself, so they cannot collide
with an ingestion or dbt run holding its write lock. In production the exports are objects on the shared store
(`exports_dir` is then an s3:// URL, lib/object_store.py): the same SQL reads them through httpfs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from platform_assets.lib import object_store
from platform_assets.lib.identifiers import sql_identifier

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

MARTS = frozenset({
    "fct_transactions",
    "fct_transaction_labels",
    "fct_customer_daily_features",
    "fct_merchant_daily_features",
    "fct_customer_merchant_features",
    "fct_customer_recent_transactions",
    "dim_customers",
    "dim_merchants",
})


class ExportMissingError(FileNotFoundError):
    pass


def export_path(exports_dir: Path | str, mart: str) -> Path | str:
    """The mart's parquet file (a Path, or a URL on the shared store); ExportMissingError when it is not there."""
    name = f"{sql_identifier(mart, MARTS)}.parquet"
    path = object_store.join(str(exports_dir), name) if object_store.is_remote(exports_dir) \
        else Path(exports_dir) / name
    if not object_store.exists(path):
        raise ExportMissingError(
            f"{path} does not exist: materialize the warehouse (dbt) assets first, e.g. `make demo`."
        )
    return path


def connect(exports_dir: Path | str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read the exports (httpfs and the S3 secret when they are on the shared store)."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if exports_dir is not None and object_store.is_remote(exports_dir):
        object_store.configure_duckdb(con)
    return con


def query(exports_dir: Path, sql: str, params: dict | None = None, **marts: str) -> pd.DataFrame:
    """Run `sql` with each `{name}` placeholder bound to the parquet file of the mart given for it.

    `query(d, "SELECT count(*) FROM {tx}", tx="fct_transactions")`: mart names are checked against MARTS and
    values go in as parameters.
    """
    con = connect(exports_dir)
    try:
        tables = {
            alias: "read_parquet('{}')".format(str(export_path(exports_dir, mart)).replace("'", "''"))
            for alias, mart in marts.items()
        }
        return con.execute(sql.format(**tables), params or {}).df()
    finally:
        con.close()
