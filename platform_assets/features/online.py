"""Incremental online materialization measured in data time, in bounded chunks.

`FeatureStore.materialize_incremental` starts a never-materialized view at *wall-clock* now minus its TTL, so a
backfill of last spring's data would load nothing. Here each view starts where its last materialization ended
(or one TTL before the newest feature row) and ends just after the newest row: only new windows are loaded.
A long window (a first load, or a month of catch-up) is cut into chunks of at most `chunk` so that one
`materialize` call never holds more than a chunk's rows in memory; Feast records each chunk's end, so an
interrupted run resumes after the last finished chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_FIRST_WINDOW = timedelta(days=365)
# One TTL of the daily views (31 days): a first load is then one call per view, not a month plus the last day
# written twice (every entity has a row on the newest day, so a second chunk rewrites them all).
DEFAULT_CHUNK = timedelta(days=31)


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


def chunked(window: Window, chunk: timedelta) -> list[Window]:
    """`window` cut into consecutive pieces of at most `chunk`, covering it exactly."""
    if chunk <= timedelta(0):
        raise ValueError(f"chunk must be positive, got {chunk}")
    pieces, start = [], window.start
    while start < window.end:
        end = min(start + chunk, window.end)
        pieces.append(Window(window.view, start, end))
        start = end
    return pieces


def materialize_new_windows(
    store, end: datetime, chunk: timedelta = DEFAULT_CHUNK, on_chunk: Callable[[Window], None] | None = None
) -> list[Window]:
    """Load every view's pending window, chunk by chunk; returns the chunks loaded, in order."""
    loaded = []
    for window in pending_windows(store.list_feature_views(), end):
        for piece in chunked(window, chunk):
            store.materialize(start_date=piece.start, end_date=piece.end, feature_views=[piece.view])
            loaded.append(piece)
            if on_chunk is not None:
                on_chunk(piece)
    return loaded
