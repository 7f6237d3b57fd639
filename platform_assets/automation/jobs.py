"""The jobs the schedule and the sensors launch, defined by asset selection (no asset is imported here)."""

import dagster as dg

from platform_assets.partitions import daily_partitions
from platform_assets.resources import MlflowResource, Notifier

DAILY_RAW = dg.AssetSelection.assets("raw_transactions", "raw_chargebacks")

daily_ingestion_job = dg.define_asset_job(
    name="daily_ingestion",
    selection=DAILY_RAW,
    partitions_def=daily_partitions,
    description="Load one day of transactions and chargebacks from the landing zone.",
)

refresh_downstream_job = dg.define_asset_job(
    name="refresh_warehouse_and_features",
    selection=(
        dg.AssetSelection.assets("raw_customers", "raw_merchants")
        | dg.AssetSelection.groups("warehouse")
        | dg.AssetSelection.assets("feast_feature_views", "feast_online_store")
    ),
    description="Rebuild the warehouse and refresh the features after new data landed; scoring and monitoring "
    "follow by Declarative Automation.",
)

retrain_job = dg.define_asset_job(
    name="retrain_fraud_model",
    selection=dg.AssetSelection.assets("training_set", "fraud_model"),
    description="Rebuild the training set as of the drift window and train a new version behind the promotion "
    "gate; scoring and monitoring of the newest day follow by Declarative Automation.",
)


class RollbackConfig(dg.Config):
    reason: str = "manual rollback from the launchpad"


@dg.op(description="Move the champion alias back to the version the current champion replaced.")
def rollback_champion_op(
    context: dg.OpExecutionContext, config: RollbackConfig, mlflow_tracking: MlflowResource, notifier: Notifier
) -> None:
    mlflow_tracking.setup()
    old, new = mlflow_tracking.rollback_champion(config.reason)
    notifier.send("rollback", f"{mlflow_tracking.model_name} champion v{old} -> v{new}: {config.reason}",
                  {"from_version": old, "to_version": new}, log=context.log)


@dg.job(name="rollback_champion", description="One-step rollback of the champion model (records why in MLflow).")
def rollback_champion_job():
    rollback_champion_op()
