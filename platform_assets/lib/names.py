"""Every name that crosses a stage boundary, defined once.

Stages never import each other; they meet through assets (a DuckDB table, a parquet export, the Feast registry,
an MLflow model version) and through the names in this module: the asset keys one stage declares and another
depends on, the group names jobs and sensors select by, the metadata keys a sensor reads off another stage's
materializations, the MLflow tags the training stage writes and scoring and monitoring read. A typo in one of
these would not fail anywhere loudly; here it fails at import.
"""

from __future__ import annotations

import dagster as dg

from platform_assets.lib import transaction_stream

# Groups: one per stage, as the UI shows them.
INGESTION = "ingestion"
WAREHOUSE = "warehouse"
FEATURES = "features"
TRAINING = "training"
SCORING = "scoring"
MONITORING = "monitoring"
SERVING = "serving"
STAGE_GROUPS = (INGESTION, WAREHOUSE, FEATURES, TRAINING, SCORING, SERVING, MONITORING)

# Asset keys. Ingestion: one raw table per source system.
RAW_CUSTOMERS = dg.AssetKey("raw_customers")
RAW_MERCHANTS = dg.AssetKey("raw_merchants")
RAW_TRANSACTIONS = dg.AssetKey("raw_transactions")
RAW_CHARGEBACKS = dg.AssetKey("raw_chargebacks")
DAILY_RAW = (RAW_TRANSACTIONS, RAW_CHARGEBACKS)
SNAPSHOT_RAW = (RAW_CUSTOMERS, RAW_MERCHANTS)
# Every raw table in load order: a row may only name rows of the tables before it (docs/data-contracts.md).
RAW = SNAPSHOT_RAW + DAILY_RAW
# The manifest of every landed file loaded into raw (raw.landed_files): path, size, hash, counts.
LANDED_FILES = dg.AssetKey("landed_files")

# Warehouse: dbt snapshots (the customer and merchant history) are keyed `snapshots/<name>`.
SNAPSHOTS_KEY_PREFIX = "snapshots"
# Warehouse: the dbt marts later stages read (their parquet exports), keyed by model name.
FCT_TRANSACTIONS = dg.AssetKey("fct_transactions")
FCT_TRANSACTION_LABELS = dg.AssetKey("fct_transaction_labels")
FCT_CUSTOMER_DAILY_FEATURES = dg.AssetKey("fct_customer_daily_features")
FCT_MERCHANT_DAILY_FEATURES = dg.AssetKey("fct_merchant_daily_features")
FCT_CUSTOMER_MERCHANT_FEATURES = dg.AssetKey("fct_customer_merchant_features")
# The velocity state: each customer's transactions of the last 24 hours after each instant (feature view
# customer_recent_transactions; online, the stream consumer pushes it).
FCT_CUSTOMER_RECENT_TRANSACTIONS = dg.AssetKey("fct_customer_recent_transactions")
FEATURE_MARTS = (FCT_CUSTOMER_DAILY_FEATURES, FCT_MERCHANT_DAILY_FEATURES, FCT_CUSTOMER_MERCHANT_FEATURES,
                 FCT_CUSTOMER_RECENT_TRANSACTIONS)
ENTITY_MARTS = (FCT_TRANSACTIONS, FCT_TRANSACTION_LABELS)

# Features, training, scoring, monitoring.
FEAST_FEATURE_VIEWS = dg.AssetKey("feast_feature_views")
FEAST_ONLINE_STORE = dg.AssetKey("feast_online_store")
TRAINING_SET = dg.AssetKey("training_set")
FRAUD_MODEL = dg.AssetKey("fraud_model")
DAILY_PREDICTIONS = dg.AssetKey("daily_predictions")
FEATURE_DRIFT_REPORT = dg.AssetKey("feature_drift_report")
PREDICTION_DRIFT_REPORT = dg.AssetKey("prediction_drift_report")
MODEL_PERFORMANCE = dg.AssetKey("model_performance")
DATA_QUALITY_SUMMARY = dg.AssetKey("data_quality_summary")
SERVED_TRAFFIC_REPORT = dg.AssetKey("served_traffic_report")
# Serving: which model version the scoring service runs, and the predictions it served (its log, loaded daily).
DEPLOYED_MODEL = dg.AssetKey("deployed_model")
SERVED_PREDICTIONS = dg.AssetKey("served_predictions")
# The monitoring assets whose verdict can ask for a retrain.
VERDICT_ASSETS = (FEATURE_DRIFT_REPORT, PREDICTION_DRIFT_REPORT, MODEL_PERFORMANCE)

# Asset checks other stages (the retrain sensor, the docs, the tests) refer to.
QUARANTINE_CHECK = "quarantine_share_below_threshold"
LANDED_FILES_CHECK = "every_landed_file_loaded"
TRAINABLE_CHECK = "enough_labelled_fraud_in_each_split"
SKEW_CHECK = "served_features_match_point_in_time"
ONLINE_STORE_CHECK = "online_store_matches_offline"
# The monitoring verdicts, one asset check per daily partition (monitoring/checks.py). A failed check is the
# only thing the retrain sensor reads: the check is the verdict.
FEATURE_DRIFT_CHECK = "no_feature_drift"
PREDICTION_DRIFT_CHECK = "no_prediction_drift"
FRAUD_RECALL_CHECK = "fraud_recall_above_floor"
SERVED_SCORE_DRIFT_CHECK = "no_served_score_drift"
# The failed checks that ask for a retrain: the verdicts of VERDICT_ASSETS. Live-traffic drift is shown, not acted
# on: the batch prediction drift of the same days already is, on every transaction rather than the served sample.
RETRAIN_CHECKS = (
    dg.AssetCheckKey(FEATURE_DRIFT_REPORT, FEATURE_DRIFT_CHECK),
    dg.AssetCheckKey(PREDICTION_DRIFT_REPORT, PREDICTION_DRIFT_CHECK),
    dg.AssetCheckKey(MODEL_PERFORMANCE, FRAUD_RECALL_CHECK),
)
# On `fraud_model`, kept by the retrain sensor: fails while a drift event asks for a retrain that has not yet
# produced a new model version; its metadata names the failed check, partition and figures that made it due.
RETRAIN_DUE_CHECK = "fraud_model_not_due_for_retrain"

# Metadata key of a `feast_online_store` materialization that rebuilt a lost store (the docs, the tests).
ONLINE_STORE_REBUILT = "rebuilt"

# Metadata key of a monitoring report's headline (drift / no_drift / degraded / insufficient_data); the verdict
# the retrain sensor acts on is the asset check above, which carries the same word.
VERDICT = "verdict"
# Metadata keys read outside the stage that writes them (the demo's stage lines, the notebook, tests).
ROW_COUNT = "dagster/row_count"  # Dagster's own key: the UI shows it as the asset's row count
ROWS_QUARANTINED = "rows_quarantined"
DRIFT_SHARE = "drift_share"
DRIFT_WINDOW_END = "drift_window_end"
MODEL_VERSION = "model_version"
CHAMPION_VERSION = "champion_version"
LIVE_VERSION = "live_version"

# Jobs (names the UI shows and the sensors target).
DAILY_INGESTION_JOB = "daily_ingestion"
REFRESH_JOB = "refresh_warehouse_and_features"
RETRAIN_JOB = "retrain_fraud_model"
ROLLBACK_JOB = "rollback_champion"

# Concurrency pool of every DuckDB writer (limit 1 in dagster.yaml): DuckDB allows one writing process.
DUCKDB_WRITER_POOL = "duckdb_writer"

# MLflow registry: aliases, and the tags every registered version carries.
CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_TRAINING_SET_ID = "training_set_id"
TAG_FEATURE_SERVICE = "feature_service"
TAG_PROMOTION_DECISION = "promotion_decision"
TAG_PROMOTION_REASON = "promotion_reason"
TAG_PREVIOUS_CHAMPION = "previous_champion"
# The native XGBoost model inside a registered version (lib/fraud_pyfunc.py, which must stay self-contained,
# repeats it; a unit test keeps the two equal).
MODEL_XGBOOST_ARTIFACT = "xgboost_model"
# The score above which a transaction goes to review: the (1 - review_budget) quantile of the model's holdout
# scores, so real-time decisions send the same share to review as the daily batch's top-budget queue.
TAG_REVIEW_THRESHOLD = "review_threshold"
# MLflow's own experiment tag: its UI offers "GenAI apps & agents" or "Machine learning" views of an experiment by
# it, and ours is a tabular classifier (values in the MLflow UI's ExperimentKind enum).
MLFLOW_EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MLFLOW_EXPERIMENT_KIND = "custom_model_development"
# MLflow 3.17's UI picks its view from this query parameter (else the browser's last choice, GenAI by default):
# our links to the MLflow UI carry it so they open in the machine-learning view.
MLFLOW_UI_WORKFLOW = "workflowType=machine_learning"
# The contexts of the training set's two splits among a run's MLflow input datasets.
DATASET_TRAIN = "train"
DATASET_HOLDOUT = "holdout"

# The feature service the model trained now reads (feature_repo/fraud_features.py keeps older ones servable).
DEFAULT_FEATURE_SERVICE = "fraud_detector_v2"

# Dagster's own run tags for a partition range (documented tag names; the constants are not public API).
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
RUN_KEY_TAG = "dagster/run_key"


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run materialize the partitions first..last (a single-run backfill)."""
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}


def asset_name(key: dg.AssetKey) -> str:
    """The op name of a single-key asset (what a run config's `ops:` section is keyed by)."""
    return key.to_python_identifier()

# System of record (ingestion/system_of_record.py): metadata key of a raw_customers / raw_merchants
# materialization in database mode, the changed rows dlt extracted since the last committed cursor.
ROWS_EXTRACTED = "rows_extracted"
# The transaction event stream (issue 17): its observable source asset upstream of raw_transactions, the metadata
# key of the committed stream position on each raw_transactions materialization (the sensor and the observation
# read it from the instance, never from DuckDB), and the run tags of the sensor's micro-batches.
TRANSACTION_STREAM = dg.AssetKey("transaction_stream")
STREAM_COMMITTED_POSITION = "stream_committed_position"
STREAM_EVENTS_PER_SECOND = "events_per_second"
STREAM_SENSOR = "transaction_stream_sensor"
STREAM_CONSUMER_TAG = "platform/stream_consumer"
STREAM_AFTER_TAG = "platform/stream_after"

# Real-time velocity features (issue 18): the state view the online consumer writes through its push source, the
# scoring service's own traffic as a second stream (same backend as the transaction stream), the consumer's own
# Redis consumer group (never ingestion's), and its observable source asset.
CUSTOMER_RECENT_TRANSACTIONS_VIEW = "customer_recent_transactions"
CUSTOMER_TRANSACTIONS_PUSH = "customer_transactions_push"
VELOCITY_FEATURES_VIEW = "velocity_features"
VELOCITY_FEATURE_SERVICE = "fraud_detector_v3"
SCORED_TRANSACTIONS_STREAM = transaction_stream.SCORED_STREAM
VELOCITY_CONSUMER_GROUP = "platform-velocity"
VELOCITY_CONSUMER = "velocity_online"
VELOCITY_CONSUMER_ASSET = dg.AssetKey("velocity_online_consumer")
