"""The resources of the active profile, chosen in one place.

Dagster's Definitions (`definitions.py`), the scoring service, the notebook helpers and the tests all build their
resources here, so the local and production profiles differ only in configuration, never in code.
"""

import dagster as dg

from platform_assets.resources.chargeback_api import ChargebackApi
from platform_assets.resources.dbt import PlatformDbtResource, dbt_executable, dbt_project
from platform_assets.resources.feature_store import FeastResource
from platform_assets.resources.io_manager import NoValuesIOManager
from platform_assets.resources.landing import LandingZone
from platform_assets.resources.mlflow_tracking import MlflowResource
from platform_assets.resources.notifications import Notifier
from platform_assets.resources.policy import LoopPolicy
from platform_assets.resources.scoring_service import ScoringService
from platform_assets.resources.storage import PlatformStorage
from platform_assets.resources.system_of_record import SystemOfRecord
from platform_assets.resources.training_cluster import TrainingCluster
from platform_assets.resources.warehouse import WarehouseResource
from platform_assets.settings import CHARGEBACK_API_TOKEN_ENV, Settings


def build_resources(settings: Settings) -> dict:
    """The resources of `settings.profile`. Production differs only in where things live, never in code:
    the Feast SQL registry and Redis online store (their URLs from the environment, resolved at run time),
    and MLflow's tracking server (MLFLOW_TRACKING_URI); `fraud_model` trains on the Dask cluster of
    PLATFORM_DASK_SCHEDULER when one is named (either profile), in-process otherwise."""
    production = settings.profile == "production"
    # No asset passes a value to another (resources/io_manager.py): in production nothing is pickled to a folder
    # every worker would have to share; locally Dagster's default file IO manager stays.
    io_managers = {"io_manager": NoValuesIOManager()} if production else {}
    return {
        **io_managers,
        # In production with PLATFORM_WAREHOUSE_CATALOG: DuckLake (its catalog string may hold a password, so it
        # is resolved at run time), data files on the shared store. Otherwise the DuckDB file.
        "warehouse": WarehouseResource(
            database=":memory:" if settings.warehouse_catalog_configured else str(settings.warehouse_path),
            connection_config={"memory_limit": settings.duckdb_memory_limit},
            ducklake_catalog=dg.EnvVar("PLATFORM_WAREHOUSE_CATALOG") if settings.warehouse_catalog_configured
            else None,
            ducklake_data_path=settings.warehouse_data_url if settings.warehouse_catalog_configured else None,
        ),
        "landing_zone": LandingZone(path=str(settings.landing_dir)),
        "dbt": PlatformDbtResource(
            project_dir=dbt_project(settings),
            target=settings.dbt_target,
            data_dir=str(settings.data_dir),
            duckdb_memory_limit=settings.duckdb_memory_limit,
            shared_root=settings.shared_store_url,
            dbt_executable=dbt_executable(),
        ),
        "feast": FeastResource(
            repo_path=str(settings.feature_repo_dir),
            feature_store_yaml=str(settings.feature_store_yaml),
            data_dir=str(settings.data_dir),
            shared_root=settings.shared_store_url,
            project=settings.feast_project,
            registry_url=dg.EnvVar("PLATFORM_FEAST_REGISTRY_URL") if production else None,
            redis_url=dg.EnvVar("PLATFORM_REDIS_URL") if production else None,
        ),
        "mlflow_tracking": MlflowResource(
            # In production the URI may hold a password (a database URL, or an MLflow server's behind basic auth):
            # resolved at run time, hidden in the UI. With an http(s) server and no PLATFORM_MLFLOW_ARTIFACTS the
            # artifact location is empty: the server's proxied store (mlflow-artifacts:/), no folder, no S3 keys.
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI") if production else settings.mlflow_tracking_uri,
            artifact_location=settings.mlflow_artifact_location,
            experiment_name=settings.mlflow_experiment,
            model_name=settings.model_name,
            ui_url=settings.mlflow_ui_url,
        ),
        "storage": PlatformStorage(data_dir=str(settings.data_dir), shared_root=settings.shared_store_url,
                                   evidently_url=settings.evidently_url,
                                   evidently_keep_days=settings.evidently_keep_days),
        # Not a secret (a tcp:// address): shown in the launchpad, recorded with each trained model.
        "training_cluster": TrainingCluster(scheduler=settings.dask_scheduler),
        "policy": LoopPolicy(**dict(settings.policy_overrides)),
        # The webhook URL may hold a token: resolved at run time, hidden in the UI; no webhook unless set.
        "notifier": Notifier(webhook_url=dg.EnvVar("PLATFORM_WEBHOOK_URL") if settings.webhook_configured else None),
        # The scoring service's token, when one is set, is resolved at run time and hidden in the UI.
        "scoring_service": ScoringService(
            url=settings.serving_url,
            token=dg.EnvVar("PLATFORM_SERVING_TOKEN") if settings.serving_token_configured else None,
        ),
        # The source database's URL may hold its password: from the environment it is resolved at run time.
        "system_of_record": SystemOfRecord(
            url=dg.EnvVar("PLATFORM_SOURCE_DATABASE_URL") if settings.source_database_url_from_env
            else settings.source_database_url,
            pipelines_dir=str(settings.dlt_pipelines_dir),
        ),
        # The chargeback API's token, when one is set, likewise (only raw_chargebacks in api mode uses it).
        "chargeback_api": ChargebackApi(
            url=settings.chargeback_api_url,
            token=dg.EnvVar(CHARGEBACK_API_TOKEN_ENV) if settings.chargeback_api_token_configured else None,
        ),
    }
