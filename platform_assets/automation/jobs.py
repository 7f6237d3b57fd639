"""The jobs the schedule and the sensor launch, defined by asset selection (no asset is imported here)."""

import dagster as dg

from platform_assets.partitions import daily_partitions

DAILY_RAW = dg.AssetSelection.assets("raw_transactions", "raw_chargebacks")

daily_ingestion_job = dg.define_asset_job(
    name="daily_ingestion",
    selection=DAILY_RAW,
    partitions_def=daily_partitions,
    description="Load one day of transactions and chargebacks from the landing zone.",
)

refresh_downstream_job = dg.define_asset_job(
    name="refresh_warehouse_features_and_monitoring",
    selection=(
        dg.AssetSelection.assets("raw_customers", "raw_merchants")
        | dg.AssetSelection.groups("warehouse")
        | dg.AssetSelection.assets("feast_feature_views", "feast_online_store")
        | dg.AssetSelection.groups("monitoring")
    ),
    description="Rebuild the warehouse, refresh the online store and re-check drift after new data landed.",
)

retrain_job = dg.define_asset_job(
    name="retrain_fraud_model",
    selection=dg.AssetSelection.assets("training_set", "fraud_model", "feature_drift_report"),
    description="Rebuild the training set, train and gate a new model version, and re-check drift against it.",
)
