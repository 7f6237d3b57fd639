"""Named drift scenarios: how the simulated world changes from a chosen day on.

Each scenario is data, not code paths scattered through the generator: the generator asks the active scenario
for the multipliers and mixes of the day it is generating. Before `start_day` every scenario is `none`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DayRegime:
    """What the world looks like on one simulated day."""

    amount_multiplier: float = 1.0
    new_merchant_share: float = 0.0
    fraud_shifted: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    after_start: DayRegime

    def regime(self, day_index: int, start_day: int) -> DayRegime:
        return self.after_start if day_index >= start_day else DayRegime()


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("none", "A stationary world: seasonality only.", DayRegime()),
        Scenario(
            "amount_inflation",
            "Every amount is 60% higher from the start day on (price shock or currency change).",
            DayRegime(amount_multiplier=1.6),
        ),
        Scenario(
            "new_merchant_mix",
            "New merchants in new categories (digital goods, crypto) take 40% of the volume.",
            DayRegime(new_merchant_share=0.4),
        ),
        Scenario(
            "fraud_pattern_shift",
            "Fraudsters move to daytime, card-present, small-ticket purchases at ordinary merchants.",
            DayRegime(fraud_shifted=True),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}") from None
