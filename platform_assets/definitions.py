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
from platform_assets.resources.profile import build_resources
from platform_assets.scoring.definitions import build_defs as scoring_defs
from platform_assets.serving.definitions import build_defs as serving_defs
from platform_assets.settings import Settings, load_settings
from platform_assets.training.definitions import build_defs as training_defs
from platform_assets.warehouse.definitions import build_defs as warehouse_defs

STAGES = (ingestion_defs, warehouse_defs, features_defs, training_defs, scoring_defs, serving_defs, monitoring_defs,
          automation_defs)
__all__ = ["build_definitions", "build_executor", "build_resources", "defs"]


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
