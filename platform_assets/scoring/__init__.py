"""Scoring stage: the champion model's daily batch predictions, with their provenance."""
