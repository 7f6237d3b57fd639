"""What every window feature means, recomputed from the raw ingestion tables alone (never from the dbt models).

For a transaction at instant t on UTC day D, a window of W days is the W whole days before D: [D - W, D - 1]
(a transaction never sees its own day). Counts and sums over an empty window are 0, averages, maxima, shares and
rates are null; a customer (merchant) with no transaction before D has never been seen: every value is null.
The merchant's known frauds are its transactions of the window whose first `fraud` chargeback was reported by the
end of D - 1. On-demand features follow from the same truths and the request (amount, t).

`python tests/feature_oracle.py DATA_DIR` checks the newest training set of a platform's data dir (e.g. the one
`make demo` built) and prints the share of wrong values per feature.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from platform_assets.lib.training_sets import TrainingSetManifest

CUSTOMER_WINDOW_FEATURES = [
    "cust_txn_count_1d", "cust_amount_sum_1d", "cust_amount_avg_1d", "cust_amount_max_1d",
    "cust_txn_count_7d", "cust_amount_sum_7d", "cust_amount_avg_7d", "cust_amount_max_7d",
    "cust_night_txn_share_7d", "cust_online_txn_share_7d", "cust_distinct_merchants_7d",
    "cust_txn_count_30d", "cust_amount_sum_30d", "cust_amount_avg_30d", "cust_amount_max_30d",
    "cust_distinct_merchants_30d",
]
MERCHANT_WINDOW_FEATURES = [
    "merch_txn_count_1d", "merch_txn_count_7d", "merch_amount_avg_7d", "merch_amount_max_7d",
    "merch_night_txn_share_7d", "merch_online_txn_share_7d", "merch_distinct_customers_7d",
    "merch_txn_count_30d", "merch_amount_avg_30d", "merch_known_frauds_30d", "merch_chargeback_rate_30d",
]
ON_DEMAND_FEATURES = ["amount_to_cust_avg_30d", "amount_to_cust_max_30d", "seconds_since_last_txn",
                      "first_purchase_at_merchant"]
WINDOW_FEATURES = CUSTOMER_WINDOW_FEATURES + MERCHANT_WINDOW_FEATURES + ON_DEMAND_FEATURES
IDLE_GAPS = (1, 6, 7, 8, 29, 30, 31)


def _aggregates(prefix: str, counterpart: str, windows: dict[int, list[str]]) -> str:
    """SELECT list of `prefix` features over each window: `windows` maps days -> the aggregates wanted."""
    exprs = []
    for days, wanted in windows.items():
        inside = f"h.day BETWEEN r.day - {days} AND r.day - 1"
        count = f"count(*) FILTER (WHERE {inside})"
        total = f"CAST(sum(h.amount) FILTER (WHERE {inside}) AS DOUBLE)"
        forms = {
            "txn_count": count,
            "amount_sum": f"coalesce({total}, 0)",
            "amount_avg": f"{total} / nullif({count}, 0)",
            "amount_max": f"CAST(max(h.amount) FILTER (WHERE {inside}) AS DOUBLE)",
            "night_txn_share": f"CAST(count(*) FILTER (WHERE {inside} AND h.hour < 6) AS DOUBLE) / nullif({count}, 0)",
            "online_txn_share": f"CAST(count(*) FILTER (WHERE {inside} AND h.channel = 'online') AS DOUBLE) "
                                f"/ nullif({count}, 0)",
            f"distinct_{counterpart}s": f"count(DISTINCT h.{counterpart}_id) FILTER (WHERE {inside})",
            "known_frauds": f"count(*) FILTER (WHERE {inside} AND h.fraud_known_day <= r.day - 1)",
            "chargeback_rate": f"CAST(count(*) FILTER (WHERE {inside} AND h.fraud_known_day <= r.day - 1) AS DOUBLE)"
                               f" / nullif({count}, 0)",
        }
        exprs += [f"CASE WHEN count(h.day) > 0 THEN {forms[w]} END AS {prefix}_{w}_{days}d" for w in wanted]
    return ",\n".join(exprs)


ORACLE_SQL = """
WITH history AS (
    SELECT t.transaction_id, t.customer_id, t.merchant_id, CAST(t.amount AS DECIMAL(18, 2)) AS amount, t.channel,
           t.event_ts, CAST(timezone('UTC', t.event_ts) AS DATE) AS day,
           extract(hour FROM timezone('UTC', t.event_ts)) AS hour, f.fraud_known_day
    FROM raw.transactions AS t
    LEFT JOIN (
        SELECT transaction_id, CAST(timezone('UTC', min(reported_at)) AS DATE) AS fraud_known_day
        FROM raw.chargebacks WHERE reason = 'fraud' GROUP BY 1
    ) AS f USING (transaction_id)
),
requests AS (
    SELECT DISTINCT customer_id, merchant_id, CAST(timezone('UTC', event_timestamp) AS DATE) AS day
    FROM entity_rows
),
customer_days AS (SELECT DISTINCT customer_id, day FROM requests),
merchant_days AS (SELECT DISTINCT merchant_id, day FROM requests),
customer_truth AS (
    SELECT r.customer_id, r.day, {customer},
           CAST(epoch(max(h.event_ts)) AS BIGINT) AS last_txn_epoch
    FROM customer_days AS r
    LEFT JOIN history AS h ON h.customer_id = r.customer_id AND h.day < r.day
    GROUP BY 1, 2
),
merchant_truth AS (
    SELECT r.merchant_id, r.day, {merchant}
    FROM merchant_days AS r
    LEFT JOIN history AS h ON h.merchant_id = r.merchant_id AND h.day < r.day
    GROUP BY 1, 2
),
pair_truth AS (
    SELECT r.customer_id, r.merchant_id, r.day, count(h.day) AS paid_before
    FROM requests AS r
    LEFT JOIN history AS h ON h.customer_id = r.customer_id AND h.merchant_id = r.merchant_id AND h.day < r.day
    GROUP BY 1, 2, 3
)
SELECT e.row_id, c.* EXCLUDE (customer_id, day), m.* EXCLUDE (merchant_id, day), p.paid_before,
       CAST(epoch(e.event_timestamp) AS BIGINT) AS request_epoch, e.amount AS request_amount
FROM entity_rows AS e
JOIN customer_truth AS c ON c.customer_id = e.customer_id AND c.day = CAST(timezone('UTC', e.event_timestamp) AS DATE)
JOIN merchant_truth AS m ON m.merchant_id = e.merchant_id AND m.day = CAST(timezone('UTC', e.event_timestamp) AS DATE)
JOIN pair_truth AS p ON p.customer_id = e.customer_id AND p.merchant_id = e.merchant_id
    AND p.day = CAST(timezone('UTC', e.event_timestamp) AS DATE)
ORDER BY e.row_id
""".format(
    customer=_aggregates("cust", "merchant", {
        1: ["txn_count", "amount_sum", "amount_avg", "amount_max"],
        7: ["txn_count", "amount_sum", "amount_avg", "amount_max", "night_txn_share", "online_txn_share",
            "distinct_merchants"],
        30: ["txn_count", "amount_sum", "amount_avg", "amount_max", "distinct_merchants"],
    }),
    merchant=_aggregates("merch", "customer", {
        1: ["txn_count"],
        7: ["txn_count", "amount_avg", "amount_max", "night_txn_share", "online_txn_share", "distinct_customers"],
        30: ["txn_count", "amount_avg", "known_frauds", "chargeback_rate"],
    }),
)


def expected_features(warehouse: Path, entity_rows: pd.DataFrame) -> pd.DataFrame:
    """The true window and on-demand features of `entity_rows` (customer_id, merchant_id, event_timestamp,
    amount), in their order, computed from `raw.transactions` and `raw.chargebacks` of `warehouse`."""
    rows = entity_rows[["customer_id", "merchant_id", "event_timestamp", "amount"]].reset_index(drop=True)
    rows.insert(0, "row_id", range(len(rows)))
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("entity_rows", rows)
        truth = con.execute(ORACLE_SQL).df()
    finally:
        con.close()
    seen = truth["last_txn_epoch"].notna()
    average, maximum = truth["cust_amount_avg_30d"], truth["cust_amount_max_30d"]
    amount = truth["request_amount"].astype("float64")
    truth["amount_to_cust_avg_30d"] = amount / average.where(average > 0)
    truth["amount_to_cust_max_30d"] = amount / maximum.where(maximum > 0)
    truth["seconds_since_last_txn"] = (truth["request_epoch"] - truth["last_txn_epoch"]).where(seen)
    truth["first_purchase_at_merchant"] = (truth["paid_before"] == 0).astype("int64")
    return truth.set_index("row_id").sort_index()


def same(got, want, rel: float = 1e-9) -> bool:
    got_missing = got is None or (isinstance(got, float) and math.isnan(got)) or pd.isna(got)
    want_missing = want is None or pd.isna(want)
    if got_missing or want_missing:
        return got_missing and want_missing
    return math.isclose(float(got), float(want), rel_tol=rel, abs_tol=1e-9)


@dataclass
class OracleReport:
    rows: int
    wrong: dict[str, int]  # feature -> rows where the value is not the truth
    examples: list[tuple]

    @property
    def wrong_rows(self) -> int:
        return sum(self.wrong.values())

    def shares(self) -> dict[str, float]:
        return {name: round(n / max(self.rows, 1), 5) for name, n in self.wrong.items()}


def compare(actual: pd.DataFrame, truth: pd.DataFrame, features: list[str], keys: list[str]) -> OracleReport:
    """Feature by feature, the rows of `actual` (in the order `truth` was computed for) whose value is not the
    truth."""
    actual = actual.reset_index(drop=True)
    wrong, examples = {}, []
    for name in features:
        got, want = actual[name].tolist(), truth[name].tolist()
        bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if not same(g, w)]
        wrong[name] = len(bad)
        examples += [(name, *actual.loc[i, keys].tolist(), got[i], want[i]) for i in bad[:3]]
    return OracleReport(len(actual), wrong, examples)


def idle_gaps(warehouse: Path, entity_rows: pd.DataFrame, key: str = "customer_id") -> dict[int, int]:
    """How many of `entity_rows` come after exactly n whole idle days of their `key` (no transaction on the n
    days before the row's day, one on the day before those), for each n in IDLE_GAPS."""
    rows = entity_rows[[key, "event_timestamp"]].reset_index(drop=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("entity_rows", rows)
        frame = con.execute(f"""
            WITH days AS (SELECT DISTINCT {key}, CAST(timezone('UTC', event_ts) AS DATE) AS day FROM raw.transactions)
            SELECT CAST(timezone('UTC', e.event_timestamp) AS DATE) - max(d.day) - 1 AS idle
            FROM entity_rows AS e
            JOIN days AS d ON d.{key} = e.{key} AND d.day < CAST(timezone('UTC', e.event_timestamp) AS DATE)
            GROUP BY e.{key}, e.event_timestamp
        """).df()
    finally:
        con.close()
    counts = frame.groupby("idle").size()
    return {n: int(counts.get(n, 0)) for n in IDLE_GAPS}


def check_training_set(data_dir: Path) -> tuple[OracleReport, dict[int, int]]:
    manifest = TrainingSetManifest.read(data_dir / "training_sets" / "latest.json")
    frame = pd.read_parquet(manifest.path)
    warehouse = data_dir / "warehouse" / "warehouse.duckdb"
    features = [f for f in WINDOW_FEATURES if f in frame.columns]
    truth = expected_features(warehouse, frame)
    return compare(frame, truth, features, ["transaction_id", "customer_id"]), idle_gaps(warehouse, frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    report, gaps = check_training_set(args.data_dir)
    print(json.dumps({"rows": report.rows, "wrong_share": report.shares(), "wrong": report.wrong,
                      "rows_after_idle_days": gaps, "examples": [list(map(str, e)) for e in report.examples[:12]]},
                     indent=1))
    return 1 if report.wrong_rows else 0


if __name__ == "__main__":
    sys.exit(main())
