"""Incremental online materialization measured in data time.

`FeatureStore.materialize_incremental` starts a never-materialized view at *wall-clock* now minus its TTL, so a
backfill of last spring's data would load nothing. Here each view starts where its last materialization ended
(or one TTL before the newest feature row) and ends just after the newest row: only new windows are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_FIRST_WINDOW = timedelta(days=365)


@dataclass(frozen=True)
class Window:
    view: str
    start: datetime
    end: datetime


def pending_windows(views, end: datetime) -> list[Window]:
    windows = []
    for view in views:
        # A view without TTL keeps values forever; Feast's own first window is then one year.
        start = view.most_recent_end_time or (end - (view.ttl or DEFAULT_FIRST_WINDOW))
        if start < end:
            windows.append(Window(view.name, start, end))
    return windows


def materialize_new_windows(store, end: datetime) -> list[Window]:
    windows = pending_windows(store.list_feature_views(), end)
    for window in windows:
        store.materialize(start_date=window.start, end_date=window.end, feature_views=[window.view])
    return windows
