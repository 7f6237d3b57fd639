"""The promotion gate: a new model becomes champion only if it beats the champion on the same holdout."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def decide(
    candidate_pr_auc: float,
    champion_pr_auc: float | None,
    min_improvement: float = 0.0,
    champion_version: str | None = None,
) -> PromotionDecision:
    """PR AUC is the yardstick: with ~1% positives it tracks what a fraud team sees; ROC AUC barely moves.
    A champion that cannot be scored on the new holdout (its features are gone) cannot block a new model."""
    if champion_pr_auc is None:
        if champion_version is not None:
            return PromotionDecision(True, f"champion v{champion_version} reads features this holdout lacks")
        return PromotionDecision(True, "no champion yet")
    margin = candidate_pr_auc - champion_pr_auc
    if margin > min_improvement:
        return PromotionDecision(
            True, f"PR AUC {candidate_pr_auc:.4f} beats champion {champion_pr_auc:.4f} by {margin:+.4f}"
        )
    return PromotionDecision(
        False,
        f"PR AUC {candidate_pr_auc:.4f} does not beat champion {champion_pr_auc:.4f} by more than "
        f"{min_improvement:.4f} on the same holdout",
    )
