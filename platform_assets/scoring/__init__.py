"""Scoring stage: the champion model's daily batch predictions, with their provenance."""

from platform_assets.scoring.assets import daily_predictions, scoring_assets

__all__ = ["daily_predictions", "scoring_assets"]
