"""Incremental online materialization measured in data time, in bounded chunks.

`FeatureStore.materialize_incremental` starts a never-materialized view at *wall-clock* now minus its TTL, so a
backfill of last spring's data would load nothing. Here each view starts where its last materialization ended
(or one TTL before the newest feature row) and ends just after the newest row: only new windows are loaded.
A long window (a first load, or a month of catch-up) is cut into chunks of at most `chunk` so that one
`materialize` call never holds more than a chunk's rows in memory; Feast records each chunk's end, so an
interrupted run resumes after the last finished chunk.

Incremental loading trusts the online store to still hold what earlier runs wrote. `diagnose` checks that first:
a missing, corrupt, emptied or short store (fewer entity keys per view than the offline source holds in the range
the store covers) is rebuilt over that whole range (`rebuild_windows`), as a first load would, instead of
loading the new window only. The range a view covers is one TTL back from the end (every entity the daily marts
have seen has a row in that TTL, dbt's feature calendar; older values would be served as stale nulls anyway), or
Feast's first window of a year for a view without TTL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from platform_assets.lib import online_store_health as health

DEFAULT_FIRST_WINDOW = timedelta(days=365)
# One TTL of the daily views (31 days): a first load is then one call per view, not a month plus the last day
# written twice (every entity has a row on the newest day, so a second chunk rewrites them all).
DEFAULT_CHUNK = timedelta(days=31)


@dataclass(frozen=True)
class Window:
    view: str
    start: datetime
    end: datetime


def covered_since(view, end: datetime) -> datetime:
    """Where the online values of `view` valid at `end` start: one TTL back (a view without TTL keeps values
    forever; Feast's own first window is then one year)."""
    return end - (view.ttl or DEFAULT_FIRST_WINDOW)


def pending_windows(views, end: datetime) -> list[Window]:
    windows = []
    for view in views:
        start = view.most_recent_end_time or covered_since(view, end)
        if start < end:
            windows.append(Window(view.name, start, end))
    return windows


def rebuild_windows(views, end: datetime) -> list[Window]:
    """Every view's whole covered range, whatever the registry says was loaded: a first load."""
    return [Window(v.name, covered_since(v, end), end) for v in views]


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
    return materialize_windows(store, pending_windows(store.list_feature_views(), end), chunk, on_chunk)


def materialize_windows(
    store, windows: list[Window], chunk: timedelta = DEFAULT_CHUNK, on_chunk: Callable[[Window], None] | None = None
) -> list[Window]:
    loaded = []
    for window in windows:
        for piece in chunked(window, chunk):
            store.materialize(start_date=piece.start, end_date=piece.end, feature_views=[piece.view])
            loaded.append(piece)
            if on_chunk is not None:
                on_chunk(piece)
    return loaded


# Counts distinct entities of a view in the offline source with an event time in [start, end].
OfflineEntities = Callable[[object, datetime, datetime], int]


@dataclass
class Diagnosis:
    """What the online store holds before a materialization, and whether it must be rebuilt."""

    problem: health.Problem | None
    online: dict[str, int] = field(default_factory=dict)  # entity keys per view (views loaded before)
    expected: dict[str, int] = field(default_factory=dict)  # offline entities those views should hold
    location: str = ""

    @property
    def rebuild(self) -> bool:
        return self.problem is not None and self.problem.status != health.UNREACHABLE


def diagnose(store, views, offline_entities: OfflineEntities) -> Diagnosis:
    """Missing, corrupt, empty or short, judged against what the registry says was loaded.

    A store never loaded (no view has a materialization) is a first load, not a fault; an unreachable one
    (Redis down) is reported and left to fail the load: rebuilding cannot help it."""
    online_config = store.config.online_store
    loaded = [v for v in views if v.most_recent_end_time is not None]
    location = str(getattr(online_config, "path", "") or getattr(online_config, "connection_string", "") or "")
    if health.is_sqlite(online_config):
        location = online_config.path
        problem = health.file_problem(location)
        if problem is None:
            problem = health.integrity_problem(location)
        if problem is not None and problem.status == health.CORRUPT:
            return Diagnosis(problem, location=location)
        if not loaded:
            return Diagnosis(None, location=location)
        if problem is not None and problem.status == health.MISSING:
            return Diagnosis(problem, {v.name: 0 for v in loaded},
                             {v.name: offline_entities(v, covered_since(v, v.most_recent_end_time),
                                                       v.most_recent_end_time) for v in loaded}, location)
    elif not loaded:
        return Diagnosis(None, location=location)
    try:
        online = health.entity_counts(store, loaded)
    except Exception as exc:  # noqa: BLE001 (a store that cannot be counted cannot be trusted or rebuilt)
        return Diagnosis(health.Problem(health.UNREACHABLE, f"{location}: {exc}"), location=location)
    expected = {v.name: offline_entities(v, covered_since(v, v.most_recent_end_time), v.most_recent_end_time)
                for v in loaded}
    short = {name: (online[name], want) for name, want in expected.items() if online[name] < want}
    if not short:
        return Diagnosis(None, online, expected, location)
    detail = ", ".join(f"{name} {have:,} of {want:,}" for name, (have, want) in sorted(short.items()))
    status = health.EMPTY if not any(online.values()) else health.INCOMPLETE
    return Diagnosis(health.Problem(status, f"online entity keys below the offline source: {detail}"),
                     online, expected, location)
