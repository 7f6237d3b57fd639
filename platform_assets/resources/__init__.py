"""Ground floor: the resources every stage uses. Stages import from here, never from each other."""

from platform_assets.resources.chargeback_api import ChargebackApi
from platform_assets.resources.feature_store import FeastResource
from platform_assets.resources.landing import LandingZone
from platform_assets.resources.mlflow_tracking import MlflowResource
from platform_assets.resources.notifications import Notifier
from platform_assets.resources.policy import LoopPolicy
from platform_assets.resources.scoring_service import ScoringService
from platform_assets.resources.storage import PlatformStorage
from platform_assets.resources.system_of_record import SystemOfRecord
from platform_assets.resources.training_cluster import TrainingCluster
from platform_assets.resources.warehouse import WarehouseCorruptError, WarehouseLockedError, WarehouseResource

__all__ = [
    "ChargebackApi",
    "FeastResource",
    "LandingZone",
    "LoopPolicy",
    "MlflowResource",
    "Notifier",
    "PlatformStorage",
    "ScoringService",
    "SystemOfRecord",
    "TrainingCluster",
    "WarehouseCorruptError",
    "WarehouseLockedError",
    "WarehouseResource",
]
