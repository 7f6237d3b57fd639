"""What the online velocity consumer (features/velocity_online.py) shares with the rest of the platform: its
files under data/features/velocity (the heartbeat Dagster, `make doctor` and `make dev` read, the offsets file
the observable asset reads) and its time bounds (the serving side and tests use the same ones). Ground floor: no
stage imports another stage's consumer module for these.
"""

from __future__ import annotations

import json
from pathlib import Path

from platform_assets.settings import Settings

HEARTBEAT_FILE = "heartbeat.json"
OFFSETS_FILE = "offsets.sqlite"

# The velocity features' longest window (feature_repo/fraud_features.RECENT_HORIZON_SECONDS; a unit test keeps
# them equal).
RECENT_HORIZON_SECONDS = 86_400
# An event dated more than this after the consumer's wall clock is refused (`event_ts_in_future`): one event a
# year ahead would otherwise make the trim to the horizon of the newest drop every real event of the customer.
MAX_FUTURE_SECONDS = 300
FUTURE_REFUSAL = "event_ts_in_future"
# Online states keep RECENT_HORIZON + MAX_FUTURE of the newest event: the newest may be up to MAX_FUTURE ahead of
# a request's instant t, and a request at any t >= newest - MAX_FUTURE still finds every event of [t - 24 h, t).
# The UDF windows by time, so the extra events never change a feature.
ONLINE_HORIZON_US = (RECENT_HORIZON_SECONDS + MAX_FUTURE_SECONDS) * 1_000_000


def heartbeat_path(settings: Settings) -> Path:
    return settings.velocity_dir / HEARTBEAT_FILE


def offsets_path(settings: Settings) -> Path:
    return settings.velocity_dir / OFFSETS_FILE


def read_heartbeat(settings: Settings) -> dict | None:
    """The consumer's last heartbeat (None: it never ran on this data dir)."""
    try:
        return json.loads(heartbeat_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
