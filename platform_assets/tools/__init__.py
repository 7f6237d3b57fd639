"""Entry points for people, not for Dagster: the demo, the doctor and the notebook helpers."""
