"""MLflow tracking and model registry.

`dagster-mlflow` is beta and has no `ConfigurableResource`, so this small resource is ours. It only ever points
MLflow at our own tracking server/registry, and models are only loaded through `models:/<name>@<alias>` URIs of
that registry: never from a path or URL handed in from outside.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

CHAMPION = "champion"
CHALLENGER = "challenger"


class MlflowResource(dg.ConfigurableResource):
    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///... locally, postgresql://... in production)")
    registry_uri: str | None = Field(default=None, description="Model registry URI; defaults to the tracking URI")
    artifact_location: str | None = Field(
        default=None, description="Artifact root for a new experiment (a local folder by default)"
    )
    experiment_name: str = "fraud_detection"
    model_name: str = "fraud_detector"

    def setup(self):
        """Point the in-process MLflow client at our server and return the `mlflow` module, ready to use."""
        os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(self.tracking_uri.removeprefix("sqlite:///")), exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri or self.tracking_uri)
        if mlflow.get_experiment_by_name(self.experiment_name) is None:
            mlflow.create_experiment(self.experiment_name, artifact_location=self.artifact_location)
        mlflow.set_experiment(self.experiment_name)
        return mlflow

    def client(self):
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri or self.tracking_uri)

    def model_uri(self, alias: str = CHAMPION) -> str:
        return f"models:/{self.model_name}@{alias}"
