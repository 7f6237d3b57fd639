"""Assembles the platform: merges what each stage defines and picks the resources of the active profile.

Each stage builds its own `Definitions` from the settings (`<stage>/definitions.py`); this module only merges
them. The environment is read once, by `load_settings()`, when Dagster asks for the Definitions (`defs`), never
at import. Nothing heavy happens here either: no dbt parse, no Feast or MLflow connection, no pandas, no data
read. The UI loads this module in seconds; the stages do their work when their assets run.
"""

import dagster as dg

from platform_assets.automation.definitions import build_defs as automation_defs
from platform_assets.features.definitions import build_defs as features_defs
from platform_assets.ingestion.definitions import build_defs as ingestion_defs
from platform_assets.lib.executors import multiprocess_unless_one_step
from platform_assets.monitoring.definitions import build_defs as monitoring_defs
from platform_assets.resources import (
    FeastResource,
    LandingZone,
    LoopPolicy,
    MlflowResource,
    Notifier,
    PlatformStorage,
    WarehouseResource,
)
from platform_assets.resources.dbt import PlatformDbtResource, dbt_executable, dbt_project
from platform_assets.scoring.definitions import build_defs as scoring_defs
from platform_assets.settings import Settings, load_settings
from platform_assets.training.definitions import build_defs as training_defs
from platform_assets.warehouse.definitions import build_defs as warehouse_defs

STAGES = (ingestion_defs, warehouse_defs, features_defs, training_defs, scoring_defs, monitoring_defs,
          automation_defs)


def build_resources(settings: Settings) -> dict:
    """The resources of `settings.profile`. Production differs only in where things live, never in code:
    the Feast SQL registry and Redis online store (their URLs from the environment, resolved at run time),
    and MLflow's tracking server (MLFLOW_TRACKING_URI)."""
    production = settings.profile == "production"
    return {
        "warehouse": WarehouseResource(
            database=str(settings.warehouse_path), connection_config={"memory_limit": settings.duckdb_memory_limit}
        ),
        "landing_zone": LandingZone(path=str(settings.landing_dir)),
        "dbt": PlatformDbtResource(
            project_dir=dbt_project(settings),
            target=settings.profile,
            data_dir=str(settings.data_dir),
            duckdb_memory_limit=settings.duckdb_memory_limit,
            dbt_executable=dbt_executable(),
        ),
        "feast": FeastResource(
            repo_path=str(settings.feature_repo_dir),
            feature_store_yaml=str(settings.feature_store_yaml),
            data_dir=str(settings.data_dir),
            project=settings.feast_project,
            registry_url=dg.EnvVar("PLATFORM_FEAST_REGISTRY_URL") if production else None,
            redis_url=dg.EnvVar("PLATFORM_REDIS_URL") if production else None,
        ),
        "mlflow_tracking": MlflowResource(
            # In production the URI may hold the database password: resolved at run time, hidden in the UI.
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI") if production else settings.mlflow_tracking_uri,
            artifact_location=settings.mlflow_artifact_location,
            experiment_name=settings.mlflow_experiment,
            model_name=settings.model_name,
        ),
        "storage": PlatformStorage(data_dir=str(settings.data_dir)),
        "policy": LoopPolicy(**dict(settings.policy_overrides)),
        # The webhook URL may hold a token: resolved at run time, hidden in the UI; no webhook unless set.
        "notifier": Notifier(webhook_url=dg.EnvVar("PLATFORM_WEBHOOK_URL") if settings.webhook_configured else None),
    }


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of every job: one process per step, a one-step run in the run worker itself
    (lib/executors.py), unless PLATFORM_EXECUTOR=celery, the production default, which sends each step to a
    Celery worker through the broker (Redis). The broker and result-backend URLs may hold a password: they stay
    in the environment and are resolved at run time. The workers read the same variables
    (deploy/production/dagster_celery_config.py)."""
    if settings.executor != "celery":
        return multiprocess_unless_one_step
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": {"env": "PLATFORM_CELERY_BROKER_URL"},
            "backend": {"env": "PLATFORM_CELERY_BACKEND_URL"},
            "config_source": settings.celery_config(),
        },
        name="celery",
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        *(stage(settings) for stage in STAGES),
        dg.Definitions(resources=build_resources(settings), executor=build_executor(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What the UI, the daemon and `dagster definitions validate` load (workspace.yaml): the active profile."""
    return build_definitions(load_settings())
