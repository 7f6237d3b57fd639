"""MLflow tracking and model registry.

`dagster-mlflow` is beta and has no `ConfigurableResource`, so this small resource is ours. It only ever points
MLflow at our own tracking server/registry, and models are only loaded through `models:/<name>@<alias>` URIs of
that registry: never from a path or URL handed in from outside.

The experiment is tagged as MLflow's "custom model development" kind (created so, and an existing one re-tagged),
so MLflow's UI treats it as machine learning, not as a GenAI app; `run_url`/`model_version_url` are the MLflow
UI's own pages (its hash routes), which Dagit shows as links.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import dagster as dg
from pydantic import Field

from platform_assets.lib.names import (
    CHAMPION,
    MLFLOW_EXPERIMENT_KIND,
    MLFLOW_EXPERIMENT_KIND_TAG,
    MLFLOW_UI_WORKFLOW,
    MODEL_XGBOOST_ARTIFACT,
    TAG_PREVIOUS_CHAMPION,
    TAG_PROMOTION_DECISION,
    TAG_PROMOTION_REASON,
)


class MlflowResource(dg.ConfigurableResource):
    tracking_uri: str = Field(
        description="MLflow tracking URI: sqlite:///... locally; in production an `mlflow server` (http://host:5000, "
        "artifacts proxied by the server) or its database (postgresql+psycopg://...)"
    )
    registry_uri: str | None = Field(default=None, description="Model registry URI; defaults to the tracking URI")
    artifact_location: str | None = Field(
        default=None,
        description="Artifact root for a new experiment; empty or None: the tracking server's own (mlflow-artifacts:/ "
        "with an `mlflow server --serve-artifacts`)",
    )
    experiment_name: str = "fraud_detection"
    model_name: str = "fraud_detector"
    ui_url: str = Field(default="http://127.0.0.1:5000", description="Where people open the MLflow UI (links)")

    def setup(self):
        """Point the in-process MLflow client at our server and return the `mlflow` module, ready to use."""
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(self.tracking_uri.removeprefix("sqlite:///")), exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri or self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            mlflow.create_experiment(self.experiment_name, artifact_location=self.artifact_location or None,
                                     tags={MLFLOW_EXPERIMENT_KIND_TAG: MLFLOW_EXPERIMENT_KIND})
        elif experiment.tags.get(MLFLOW_EXPERIMENT_KIND_TAG) != MLFLOW_EXPERIMENT_KIND:
            # created before the platform set the kind (or switched in the UI): ours is a tabular model
            mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, MLFLOW_EXPERIMENT_KIND_TAG,
                                                     MLFLOW_EXPERIMENT_KIND)
        mlflow.set_experiment(self.experiment_name)
        return mlflow

    def client(self):
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri or self.tracking_uri)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The run's page in the MLflow UI (route `/experiments/:experimentId/runs/:runUuid` of its hash router)."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MLFLOW_UI_WORKFLOW}"

    def model_version_url(self, version: str) -> str:
        """The version's page in the MLflow UI (route `/models/:modelName/versions/:version`)."""
        name = quote(self.model_name, safe="")
        return f"{self.ui_url.rstrip('/')}/#/models/{name}/versions/{version}?{MLFLOW_UI_WORKFLOW}"

    def model_uri(self, alias: str = CHAMPION) -> str:
        return f"models:/{self.model_name}@{alias}"

    def champion_version(self):
        """The registry entry the `champion` alias points at, or None when there is no champion yet."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(self.model_name, CHAMPION)
        except MlflowException:  # no registered model or no champion alias yet
            return None

    def load_version(self, version: str):
        """An XGBoost classifier of our own registry, by version number (never from an outside path or URL).

        Versions are pyfunc models from code (lib/fraud_pyfunc.py: they answer probabilities to any pyfunc
        client) holding the native XGBoost model as an artifact; the platform reads that artifact directly, so no
        code stored in the registry runs in the platform's processes. Versions registered before carry the xgboost
        flavour and load through it."""
        import xgboost as xgb
        from mlflow.models import Model

        mlflow = self.setup()
        uri = f"models:/{self.model_name}/{int(version)}"
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
        flavors = Model.load(local / "MLmodel").flavors
        if "xgboost" in flavors:
            return mlflow.xgboost.load_model(uri)
        classifier = xgb.XGBClassifier()
        classifier.load_model(local / flavors["python_function"]["artifacts"][MODEL_XGBOOST_ARTIFACT]["path"])
        return classifier

    def alias_version(self, alias: str):
        """The registry entry `alias` points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None

    def rollback_champion(self, reason: str) -> tuple[str, str]:
        """Move the `champion` alias back to the version the current champion replaced (one step) and record why
        on both versions. Returns (from_version, to_version); raises if there is nothing to roll back to."""
        client = self.client()
        current = client.get_model_version_by_alias(self.model_name, CHAMPION)
        previous = current.tags.get(TAG_PREVIOUS_CHAMPION, "")
        if not previous:
            raise ValueError(f"{self.model_name} v{current.version} replaced no champion: nothing to roll back to")
        restored = client.get_model_version(self.model_name, previous)  # raises if that version was deleted
        client.set_registered_model_alias(self.model_name, CHAMPION, previous)
        for entry, decision, why in (
            (current, "rolled_back", f"rolled back: {reason}"),
            (restored, CHAMPION, f"restored by rollback of v{current.version}: {reason}"),
        ):
            client.set_model_version_tag(self.model_name, entry.version, TAG_PROMOTION_DECISION, decision)
            client.set_model_version_tag(self.model_name, entry.version, TAG_PROMOTION_REASON, why)
            # the description told the gate's decision at registration: it now ends with what changed since
            description = "\n\n".join(part for part in (entry.description, f"**{decision}**: {why}") if part)
            client.update_model_version(self.model_name, entry.version, description=description)
        return str(current.version), str(previous)
