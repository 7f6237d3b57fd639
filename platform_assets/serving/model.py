"""The models the service runs: the champion (answers) and the challenger (scores in shadow), by registry alias.

A `LiveModel` is one registered version, loaded from our own MLflow registry by number, with its feature reader
and review threshold. `ModelSlots` holds the current champion and challenger; a watcher thread polls the aliases
and, when one moves (a promotion, a rollback), loads and warms the new version *beside* the running one, then
swaps a single reference. A request takes the reference once, so it is scored by one version from start to end,
and no request waits for, or fails during, a swap. A version that fails to load is logged and retried; the
running one keeps serving.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from platform_assets.lib import names
from platform_assets.serving.features import OnlineFeatureReader

log = logging.getLogger("platform_assets.serving")


@dataclass
class Scored:
    scores: np.ndarray
    contributions: np.ndarray | None  # (rows, features + 1): the last column is the bias


class LiveModel:
    def __init__(self, model_name: str, version, classifier, reader: OnlineFeatureReader, threshold: float,
                 reasons: str = "approx"):
        self.model_name = model_name
        self.version = str(version.version)
        self.tags = dict(version.tags)
        self.feature_service = self.tags.get(names.TAG_FEATURE_SERVICE, reader.feature_service)
        self.training_set_id = self.tags.get(names.TAG_TRAINING_SET_ID, "")
        booster = classifier.get_booster()
        self.features = list(booster.feature_names or reader.model_features)
        if self.features != reader.model_features:
            raise ValueError(f"v{self.version}: the reader builds {reader.model_features}, the model reads {self.features}")
        # The reader builds the columns in the model's order (checked above), so the per-call name check (~0.1 ms,
        # a third of a one-row prediction) is dropped on a copy; one thread: a few rows gain nothing from more.
        self.booster = booster.copy()
        self.booster.feature_names, self.booster.feature_types = None, None
        self.booster.set_param({"nthread": 1})
        try:
            best = int(classifier.best_iteration)
            self.iteration_range = (0, best + 1)
        except AttributeError:
            self.iteration_range = (0, 0)
        self.reader = reader
        self.threshold = float(threshold)
        self.approx = reasons != "exact"
        self.loaded_at = datetime.now(UTC)

    def score(self, matrix: np.ndarray, explain: bool = True) -> Scored:
        """P(fraud) per row, as `XGBClassifier.predict_proba` gives it (the batch scores use that), and each
        feature's contribution to the margin from XGBoost's own `pred_contribs`."""
        import xgboost as xgb

        data = xgb.DMatrix(matrix, missing=np.nan, nthread=1)
        scores = self.booster.predict(data, iteration_range=self.iteration_range)
        contributions = None
        if explain:
            contributions = self.booster.predict(data, pred_contribs=True, approx_contribs=self.approx,
                                                 iteration_range=self.iteration_range)
        return Scored(np.asarray(scores, dtype="float64").reshape(-1), contributions)

    def describe(self) -> dict:
        return {"model_name": self.model_name, "model_version": self.version,
                "feature_service": self.feature_service, "training_set_id": self.training_set_id,
                "review_threshold": self.threshold, "loaded_at": self.loaded_at.isoformat()}


def top_reasons(contributions: np.ndarray, features: list[str], values: np.ndarray, k: int = 3) -> list[dict]:
    """The `k` features that moved this score most (largest absolute contribution to the margin, bias left out),
    with their values and signed contributions (positive pushes towards fraud)."""
    own = contributions[:-1]
    order = np.argsort(-np.abs(own), kind="stable")[:k]
    return [{"feature": features[j], "value": None if np.isnan(values[j]) else float(values[j]),
             "contribution": float(own[j])} for j in order]


def threshold_from_holdout(classifier, manifest, budget: float) -> float:
    """For a version registered without a review-threshold tag: the same quantile, from its training set."""
    from platform_assets.lib.predictions import review_threshold
    from platform_assets.lib.training_sets import model_inputs, read_split

    holdout = read_split(manifest.path, "holdout")
    return review_threshold(classifier.predict_proba(model_inputs(holdout, manifest.feature_columns))[:, 1], budget)


class ModelSlots:
    """The champion and challenger of one registered model, kept current by a watcher thread."""

    def __init__(self, mlflow_tracking, feast, training_sets_dir, review_budget: float, refresh_seconds: float,
                 reasons: str = "approx", on_change=None):
        self.mlflow_tracking, self.feast = mlflow_tracking, feast
        self.training_sets_dir, self.review_budget = training_sets_dir, review_budget
        self.refresh_seconds, self.reasons = refresh_seconds, reasons
        self.champion: LiveModel | None = None
        self.challenger: LiveModel | None = None
        self.last_error: str | None = None
        self.swaps = 0
        self._on_change = on_change or (lambda slots: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store = None

    def _feature_store(self):
        if self._store is None:
            self._store = self.feast.store()
        else:
            self._store.refresh_registry()
        return self._store

    def load(self, version) -> LiveModel:
        from platform_assets.lib.champion import Champion

        classifier = self.mlflow_tracking.load_version(version.version)
        features = list(classifier.get_booster().feature_names or [])
        service = version.tags.get(names.TAG_FEATURE_SERVICE, names.DEFAULT_FEATURE_SERVICE)
        reader = OnlineFeatureReader(self._feature_store(), service, features)
        tag = version.tags.get(names.TAG_REVIEW_THRESHOLD)
        if tag:
            threshold = float(tag)
        else:
            manifest = Champion(version, self.training_sets_dir, None).manifest
            threshold = threshold_from_holdout(classifier, manifest, self.review_budget)
        model = LiveModel(self.mlflow_tracking.model_name, version, classifier, reader, threshold, self.reasons)
        model.score(np.full((1, len(model.features)), np.nan))  # warm up before it takes traffic
        return model

    def refresh(self) -> bool:
        """Load whatever the aliases point at now, if it differs from what runs. True if anything changed."""
        changed = False
        for alias, slot in ((names.CHAMPION, "champion"), (names.CHALLENGER, "challenger")):
            version = self.mlflow_tracking.alias_version(alias)
            current: LiveModel | None = getattr(self, slot)
            if version is None:
                if current is not None and slot == "challenger":
                    self.challenger, changed = None, True
                continue
            if current is not None and current.version == str(version.version):
                continue
            if slot == "challenger" and self.champion is not None and self.champion.version == str(version.version):
                continue  # a challenger since promoted: it answers already
            try:
                model = self.load(version)
            except Exception as exc:
                self.last_error = f"{alias} v{version.version} failed to load: {exc}"
                log.exception(self.last_error)
                continue
            setattr(self, slot, model)  # the swap: one reference, taken once by each request
            self.swaps += 1
            changed = True
            log.info("%s is now %s v%s (%s)", alias, model.model_name, model.version, model.feature_service)
        if self.challenger is not None and self.champion is not None and self.challenger.version == self.champion.version:
            self.challenger, changed = None, True
        if changed:
            self.last_error = None
            # Move everything loaded so far (MLflow, Feast, the models) out of the collector's reach: a full
            # collection over a ~450 MB heap would otherwise stall the event loop for tens of milliseconds.
            gc.freeze()
            self._on_change(self)
        return changed

    def start(self, first_refresh: bool = True) -> None:
        self._thread = threading.Thread(target=self._watch, args=(first_refresh,), name="model-watcher", daemon=True)
        self._thread.start()

    def _watch(self, first_refresh: bool) -> None:
        wait = 0.0 if first_refresh else self.refresh_seconds
        while not self._stop.wait(wait):
            wait = self.refresh_seconds
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 (registry down: keep serving what runs, try again)
                self.last_error = f"registry poll failed: {exc}"
                log.warning(self.last_error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
