"""The champion: which registered model version serves, what it was trained on, and how it scores a frame.

Scoring, monitoring and the promotion gate all need the same three things: the version the `champion` alias
points at, the manifest of the training set behind it (its feature columns and holdout), and the model's fraud
probabilities for a frame. They are written once here, so a model is always fed exactly the columns, order and
types it was trained with (`model_inputs`), and always loaded from our own registry by version.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import dagster as dg

from platform_assets.lib import names
from platform_assets.lib.training_sets import TrainingSetManifest, manifest_path, model_inputs


class NoChampionError(dg.Failure):
    """Raised by an asset that needs a champion before one was promoted (a clear failure in the run, not a trace)."""


def score(model, frame, features: list[str]):
    """Fraud probabilities (class 1) of an XGBoost classifier for every row of `frame`."""
    return model.predict_proba(model_inputs(frame, features))[:, 1]


class Champion:
    """The registered champion version; its training set's manifest and its model are read on first use."""

    def __init__(self, version, training_sets_dir: Path, load):
        self.version = version  # mlflow.entities.model_registry.ModelVersion
        self._training_sets_dir, self._load = training_sets_dir, load  # a Path, or an S3 UPath: kept as given

    @property
    def number(self) -> str:
        return str(self.version.version)

    @cached_property
    def manifest(self) -> TrainingSetManifest:
        snapshot = self.version.tags[names.TAG_TRAINING_SET_ID]
        return TrainingSetManifest.read(manifest_path(self._training_sets_dir, snapshot))

    @property
    def features(self) -> list[str]:
        return self.manifest.feature_columns

    @cached_property
    def model(self):
        return self._load(self.version.version)

    def score(self, frame):
        return score(self.model, frame, self.features)


def find_champion(mlflow_tracking, training_sets_dir: Path) -> Champion | None:
    """The champion of `mlflow_tracking`'s registered model, or None when no version holds the alias yet."""
    version = mlflow_tracking.champion_version()
    return None if version is None else Champion(version, training_sets_dir, mlflow_tracking.load_version)


def require_champion(mlflow_tracking, training_sets_dir: Path) -> Champion:
    champion = find_champion(mlflow_tracking, training_sets_dir)
    if champion is None:
        raise NoChampionError(f"no {names.CHAMPION} model yet: materialize {names.FRAUD_MODEL.to_user_string()} first")
    return champion
