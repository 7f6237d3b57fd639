"""The landing sensor: a file that lands, or changes, in the landing zone loads its day, once per content.

Source systems drop files at any time: late (a day's file arrives days later), twice (a retry of the same
upload), or corrected (the same day again with other bytes). The sensor keeps, in its cursor, the size, mtime
and SHA-256 of every landing file it has seen. A file whose size or mtime moved is hashed; if its bytes are new,
its day is requested from `daily_ingestion` with a run key made of the day and the bytes' hashes, so the same
content never starts a second run (Dagster creates at most one run per key), and the loader's manifest makes a
repeated load a no-op anyway. A changed snapshot (customers, merchants) reloads with the newest landed day.

Only days within `landing_lookback_days` of the newest landed day are requested: an old day changing is
reported in the tick, and is a decision for a person (a backfill from the UI), not for a sensor. On its first
tick the sensor records what is there without requesting anything: the files already present are what the
schedule, `make demo` or a backfill loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from platform_assets.lib import landing

# Cursor entries: relative path -> [size, mtime_ns, sha256].
State = dict[str, list]


@dataclass
class Plan:
    state: State
    days: dict[date, list[str]] = field(default_factory=dict)  # day -> "path:sha" of its new contents
    too_old: list[str] = field(default_factory=list)
    before_partitions: list[str] = field(default_factory=list)  # days the loaded Definitions have no partition for
    first_tick: bool = False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def plan(previous: State | None, landing_dir: Path, lookback_days: int,
         hasher: Callable[[Path], str] = _sha256, first_partition: date | None = None,
         sources: tuple[str, ...] = landing.SOURCES) -> Plan:
    """What changed since `previous` and which days to load, among the files of `sources` (those that arrive as
    files: a source read from its own system ignores files left in its folder). Pure but for reading the landing
    zone."""
    files = {rel: found for rel, found in landing.landed_files(landing_dir).items() if found[0] in sources}
    state: State = {}
    changed: list[tuple[str, str | None, date | None, str]] = []
    for rel, (source, day) in files.items():
        path = Path(landing_dir) / rel
        stat = path.stat()
        old = (previous or {}).get(rel)
        if old and old[0] == stat.st_size and old[1] == stat.st_mtime_ns:
            state[rel] = old
            continue
        sha = hasher(path)
        state[rel] = [stat.st_size, stat.st_mtime_ns, sha]
        if previous is not None and (not old or old[2] != sha):
            changed.append((rel, source, day, sha))
    result = Plan(state=state, first_tick=previous is None)
    days = [day for _, day in files.values() if day is not None]
    if not changed or not days:
        return result
    newest = max(days)
    oldest_allowed = newest - timedelta(days=lookback_days)
    for rel, _, day, sha in changed:
        target = newest if day is None else day
        if target < oldest_allowed:
            result.too_old.append(rel)
            continue
        if first_partition is not None and target < first_partition:
            result.before_partitions.append(rel)
            continue
        result.days.setdefault(target, []).append(f"{rel}:{sha}")
    return result


def run_key(day: date, contents: list[str]) -> str:
    return f"landed:{day.isoformat()}:" + hashlib.sha256("\n".join(sorted(contents)).encode()).hexdigest()[:16]


def landing_sensor(daily_ingestion_job, landing_dir: Path, lookback_days: int,
                   first_partition: date | None = None,
                   sources: tuple[str, ...] = landing.SOURCES) -> dg.SensorDefinition:
    """`first_partition`: the partitions' first day when the Definitions loaded. Unpinned it is the landing zone's
    first day (settings.py), so a file for an earlier day lands outside them until the code location reloads."""

    @dg.sensor(
        name="landing_files_sensor",
        job=daily_ingestion_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Load a day when one of its landing files arrives or changes (once per content; days within "
                    f"{lookback_days} days of the newest landed day).",
    )
    def landing_files_sensor(context: dg.SensorEvaluationContext):
        previous = json.loads(context.cursor) if context.cursor else None
        result = plan(previous, landing_dir, lookback_days, first_partition=first_partition, sources=sources)
        context.update_cursor(json.dumps(result.state))
        if result.too_old:
            context.log.warning(f"{len(result.too_old)} changed file(s) older than the {lookback_days}-day lookback, "
                                f"not loaded by the sensor (backfill them from the UI): {result.too_old[:5]}")
        if result.before_partitions:
            context.log.warning(f"{len(result.before_partitions)} changed file(s) of days before the first partition "
                                f"{first_partition}, not loaded: reload the code location (the partitions then start "
                                f"on the landing zone's first day) or set PLATFORM_PARTITION_START: "
                                f"{result.before_partitions[:5]}")
        if result.first_tick:
            return dg.SkipReason(f"watching {len(result.state)} landing files from now on")
        if not result.days:
            return dg.SkipReason("no new or changed landing files"
                                 + (f" within the lookback ({len(result.too_old)} older)" if result.too_old else ""))
        return [dg.RunRequest(run_key=run_key(day, contents), partition_key=day.isoformat(),
                              tags={"trigger": "landing", "landed_files": str(len(contents))})
                for day, contents in sorted(result.days.items())]

    return landing_files_sensor
