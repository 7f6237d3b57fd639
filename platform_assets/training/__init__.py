"""Training stage: XGBoost fraud model, MLflow tracking and registry, promotion gate."""
