"""The MLflow resource on a real SQLite tracking store: the experiment's kind and the MLflow UI links."""

from __future__ import annotations

from platform_assets.lib import names
from platform_assets.resources import MlflowResource
from platform_assets.resources.profile import build_resources
from platform_assets.settings import load_settings


def test_the_experiment_is_a_machine_learning_one_whether_new_or_existing(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    # As the platform created it before it set a kind: MLflow 3's UI then treats it as a GenAI experiment.
    old = client.create_experiment("fraud_detection")
    assert names.MLFLOW_EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    MlflowResource(tracking_uri=uri).setup()
    assert client.get_experiment(old).tags[names.MLFLOW_EXPERIMENT_KIND_TAG] == "custom_model_development"

    MlflowResource(tracking_uri=uri, experiment_name="fresh").setup()
    fresh = client.get_experiment_by_name("fresh")
    assert fresh.tags[names.MLFLOW_EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_links_are_the_mlflow_ui_routes_under_the_configured_base(tmp_path):
    settings = load_settings({"PLATFORM_DATA_DIR": str(tmp_path), "PLATFORM_MLFLOW_UI_URL": "https://mlflow.example/",
                              "PLATFORM_MODEL_NAME": "fraud detector"})
    resource = build_resources(settings)["mlflow_tracking"]
    assert resource.run_url("3", "abc") == (
        "https://mlflow.example/#/experiments/3/runs/abc?workflowType=machine_learning")
    assert resource.model_version_url("7") == (
        "https://mlflow.example/#/models/fraud%20detector/versions/7?workflowType=machine_learning")
