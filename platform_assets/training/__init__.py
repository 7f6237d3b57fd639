"""Training stage: XGBoost fraud model, MLflow tracking and registry, promotion gate."""

from platform_assets.training.assets import fraud_model, training_assets

__all__ = ["fraud_model", "training_assets"]
