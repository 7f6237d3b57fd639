"""The knobs of the closed loop (monitoring -> retrain -> promotion), as one resource.

Runs launched by Declarative Automation or a sensor carry no run config, so thresholds that must hold for them
live here, not in asset config: every monitoring asset, the retrain sensor, the retrain job and a training set
materialized from the UI read the same values. Defaults suit a real issuer (21-day chargeback window);
`settings.POLICY_ENV` lists the environment variables that override them, and the launchpad can override them
per run (the resource, or a training set's own config fields).
"""

import dagster as dg
from pydantic import Field


class LoopPolicy(dg.ConfigurableResource):
    label_maturity_days: int = Field(
        default=21, description="Days after which a transaction without a fraud chargeback counts as legitimate"
    )
    warmup_days: int = Field(default=30, description="Leading days a retrain skips while rolling windows fill up")
    holdout_days: int = Field(default=7, description="Newest matured days a retrain keeps for evaluation")
    drift_window_days: int = Field(default=7, description="Days of newest predictions compared to the reference")
    drift_share_threshold: float = Field(default=0.2, description="Share of drifted feature columns that is drift")
    drift_min_rows: int = Field(default=1_000, description="Below this many current rows no drift verdict is given")
    max_report_rows: int = Field(default=50_000, description="Each side of a report is sampled down to this")
    review_budget: float = Field(
        default=0.02, description="Share of each day's transactions the fraud team can review (the top scores)"
    )
    min_fraud_recall: float = Field(
        default=0.3,
        description="Share of recently reported frauds the model must have sent to review; below it = degraded",
    )
    min_reported_frauds: int = Field(default=15, description="Below this many reported frauds no recall verdict")
    retrain_cooldown_days: int = Field(
        default=14, description="After a retrain request, drift in the next days opens no new drift event"
    )
    retrain_wait_days: int = Field(
        default=0,
        description="Days a drift event waits before its retrain is requested, so drifted labels can mature",
    )

    retrain_half_life_days: float = Field(
        default=7.0, description="A drift retrain halves a training row's weight every this many days back"
    )

    def training_windows(
        self, label_maturity_days: int | None = None, warmup_days: int | None = None, holdout_days: int | None = None
    ) -> dict[str, int]:
        """The windows a training set is cut with: this policy's, unless a run's config overrides one."""
        return {
            "label_maturity_days": self.label_maturity_days if label_maturity_days is None else label_maturity_days,
            "warmup_days": self.warmup_days if warmup_days is None else warmup_days,
            "holdout_days": self.holdout_days if holdout_days is None else holdout_days,
        }
