"""Reading the warehouse's parquet exports (the dbt marts), which every stage after the warehouse consumes.

Readers use an in-memory DuckDB over the parquet files, never the warehouse file itself, so they cannot collide
with an ingestion or dbt run holding its write lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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


def export_path(exports_dir: Path, mart: str) -> Path:
    path = Path(exports_dir) / f"{sql_identifier(mart, MARTS)}.parquet"
    if not path.exists():
        raise ExportMissingError(
            f"{path} does not exist: materialize the warehouse (dbt) assets first, e.g. `make demo`."
        )
    return path


def connect() -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


def query(exports_dir: Path, sql: str, params: dict | None = None, **marts: str) -> pd.DataFrame:
    """Run `sql` with each `{name}` placeholder bound to the parquet file of the mart given for it.

    `query(d, "SELECT count(*) FROM {tx}", tx="fct_transactions")`: mart names are checked against MARTS and
    values go in as parameters.
    """
    con = connect()
    try:
        tables = {
            alias: "read_parquet('{}')".format(str(export_path(exports_dir, mart)).replace("'", "''"))
            for alias, mart in marts.items()
        }
        return con.execute(sql.format(**tables), params or {}).df()
    finally:
        con.close()
