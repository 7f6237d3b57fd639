"""The promotion gate and the one-step rollback, free of Dagster so they can be unit-tested on their own.

A new model version (the challenger) becomes champion only if it beats the champion on two yardsticks, both
scored by the same code on the same rows:
- the challenger's holdout (the newest matured whole days of its training set), by more than `min_improvement`;
- the latest matured window (the newest `latest_window_days` of that holdout), where it may not be worse by more
  than `max_latest_regression`: a model better on average but worse on the newest data is refused.
PR AUC is the yardstick: with ~1% positives it tracks what a fraud team sees; ROC AUC barely moves. Every decision
carries its reason, which the training asset writes to MLflow (tags) and to its metadata.

The two models may read different feature services (a `fraud_detector_v3` challenger with velocity features
against a `fraud_detector_v2` champion, or back): the holdout rows are the same transactions either way, and the
training asset feeds each model its own service's features for them (training/assets.py `gate`), so the figures
compare models, not rows. The reason names the services when they differ.

The one-step rollback is `MlflowResource.rollback_champion` (ground floor, also run by the `rollback_champion`
job); `python -m platform_assets.training.promotion rollback --reason "..."` runs it from a shell.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

__all__ = ["GateScores", "PromotionDecision", "decide"]


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


@dataclass(frozen=True)
class GateScores:
    """PR AUC of one model on the holdout and on the latest matured window (None: that window has one class)."""

    holdout_pr_auc: float
    latest_pr_auc: float | None = None
    # Recorded with the decision (PR AUC decides): ROC AUC on the same holdout, and the feature service the model
    # read its inputs from, for a challenger of another service than the champion's (a v3 model against v2).
    holdout_roc_auc: float | None = None
    feature_service: str | None = None


def decide(
    candidate: GateScores | float,
    champion: GateScores | float | None,
    min_improvement: float = 0.0,
    champion_version: str | None = None,
    max_latest_regression: float = 0.0,
) -> PromotionDecision:
    """A champion that cannot be scored on the new holdout (its features are gone) cannot block a new model."""
    candidate = candidate if isinstance(candidate, GateScores) else GateScores(candidate)
    if champion is None:
        if champion_version is not None:
            return PromotionDecision(True, f"champion v{champion_version} reads features this holdout lacks")
        return PromotionDecision(True, "no champion yet")
    champion = champion if isinstance(champion, GateScores) else GateScores(champion)
    margin = candidate.holdout_pr_auc - champion.holdout_pr_auc
    if margin <= min_improvement:
        services = ""
        if candidate.feature_service and champion.feature_service and candidate.feature_service != champion.feature_service:
            services = f" ({candidate.feature_service} vs {champion.feature_service})"
        return PromotionDecision(
            False,
            f"PR AUC {candidate.holdout_pr_auc:.4f} does not beat champion {champion.holdout_pr_auc:.4f} by more "
            f"than {min_improvement:.4f} on the same holdout{services}",
        )
    reason = f"PR AUC {candidate.holdout_pr_auc:.4f} beats champion {champion.holdout_pr_auc:.4f} by {margin:+.4f}"
    if candidate.feature_service and champion.feature_service and candidate.feature_service != champion.feature_service:
        reason = (f"PR AUC {candidate.holdout_pr_auc:.4f} ({candidate.feature_service}) beats champion "
                  f"{champion.holdout_pr_auc:.4f} ({champion.feature_service}) by {margin:+.4f}")
    if candidate.latest_pr_auc is not None and champion.latest_pr_auc is not None:
        latest_margin = candidate.latest_pr_auc - champion.latest_pr_auc
        if latest_margin < -max_latest_regression:
            return PromotionDecision(
                False,
                f"{reason} on the holdout, but on the latest matured window PR AUC {candidate.latest_pr_auc:.4f} "
                f"is worse than champion {champion.latest_pr_auc:.4f} by more than {max_latest_regression:.4f}",
            )
        reason += f"; latest matured window {candidate.latest_pr_auc:.4f} vs {champion.latest_pr_auc:.4f}"
    return PromotionDecision(True, reason)


def main(argv: list[str] | None = None) -> None:
    """`python -m platform_assets.training.promotion rollback --reason "..."`: the same rollback as the
    `rollback_champion` job, from a shell, on the active profile's registry."""
    from platform_assets.resources import MlflowResource
    from platform_assets.settings import load_settings

    parser = argparse.ArgumentParser(description="Roll the champion model back one step")
    parser.add_argument("command", choices=["rollback"])
    parser.add_argument("--reason", required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    mlflow_tracking = MlflowResource(
        tracking_uri=settings.mlflow_tracking_uri, experiment_name=settings.mlflow_experiment,
        model_name=settings.model_name, artifact_location=settings.mlflow_artifact_location,
        ui_url=settings.mlflow_ui_url,
    )
    mlflow_tracking.setup()
    old, new = mlflow_tracking.rollback_champion(args.reason)
    print(f"{mlflow_tracking.model_name}: champion v{old} -> v{new}")


if __name__ == "__main__":
    main()
