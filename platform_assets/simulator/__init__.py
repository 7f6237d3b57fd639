"""Source-system simulator: seeded, realistic payments data with named drift scenarios. Plain Python, no Dagster."""

from platform_assets.simulator.generator import SimulationConfig, build_world, simulate, simulate_day
from platform_assets.simulator.landing import LandingSummary, write_landing_zone
from platform_assets.simulator.scenarios import SCENARIOS, get_scenario

__all__ = [
    "SCENARIOS",
    "LandingSummary",
    "SimulationConfig",
    "build_world",
    "get_scenario",
    "simulate",
    "simulate_day",
    "write_landing_zone",
]
