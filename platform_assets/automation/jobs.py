"""The jobs the schedule and the sensors launch, defined by asset selection (no asset is imported here)."""


import dagster as dg

from platform_assets.lib import names
from platform_assets.resources import MlflowResource, Notifier


def daily_ingestion_job():
    """Partitioned like the daily raw tables it selects (Dagster infers it from them)."""
    return dg.define_asset_job(
        name=names.DAILY_INGESTION_JOB,
        selection=dg.AssetSelection.assets(*names.RAW, names.LANDED_FILES),
        description="Load one day of transactions and chargebacks from the landing zone, after the customer and "
        "merchant snapshots they are checked against (unchanged files are no-ops).",
    )


refresh_downstream_job = dg.define_asset_job(
    name=names.REFRESH_JOB,
    selection=(
        dg.AssetSelection.groups(names.WAREHOUSE)
        | dg.AssetSelection.assets(names.FEAST_FEATURE_VIEWS, names.FEAST_ONLINE_STORE)
    ),
    description="Rebuild the warehouse and refresh the features after new data landed; scoring and monitoring "
    "follow by Declarative Automation.",
)

retrain_job = dg.define_asset_job(
    name=names.RETRAIN_JOB,
    selection=dg.AssetSelection.assets(names.TRAINING_SET, names.FRAUD_MODEL),
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


@dg.job(name=names.ROLLBACK_JOB, description="One-step rollback of the champion model (records why in MLflow).")
def rollback_champion_job():
    rollback_champion_op()
