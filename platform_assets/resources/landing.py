"""The landing zone: the folder where source systems (or the simulator) drop their files."""

import dagster as dg
from pydantic import Field


class LandingZone(dg.ConfigurableResource):
    path: str = Field(description="Root folder of the landing zone (PLATFORM_LANDING_DIR, default data/landing)")
