"""The online velocity consumer in Dagster: an observable source asset that reports how far behind it is.

The consumer (features/velocity_online.py) is a long-running process of its own (`make velocity-consumer`,
started by `make dev`), not a run. Each observation reads what it left behind, never the process and never
DuckDB: its heartbeat file (state, counts, refusals by reason, the last batch's timings) and its committed
positions (its own SQLite file), and asks the streams how many events lie after those positions (the
consumer's own Redis group, or the embedded log by position). A heartbeat older than `STALE_HEARTBEAT_SECONDS`
while events wait means the consumer is down.
"""

from __future__ import annotations

import sqlite3
import time

import dagster as dg

from platform_assets.lib import names
from platform_assets.lib.velocity_consumer import OFFSETS_FILE, read_heartbeat
from platform_assets.resources.transaction_stream import TransactionStreamResource
from platform_assets.settings import Settings

STALE_HEARTBEAT_SECONDS = 30.0


def committed_positions(settings: Settings) -> dict[str, str]:
    """The consumer's committed position per stream, read-only ({} before its first commit)."""
    path = settings.velocity_dir / OFFSETS_FILE
    if not path.is_file():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return dict(con.execute("SELECT stream, position FROM offsets").fetchall())
    except sqlite3.OperationalError:  # created, no table yet
        return {}
    finally:
        con.close()


def consumer_streams(settings: Settings) -> dict[str, str]:
    """label -> stream name, as the consumer reads them in this mode."""
    streams = {}
    if settings.sources.transactions == "stream":
        streams["transactions"] = settings.stream_name
    if settings.scored_stream_enabled:
        streams["scored"] = settings.scored_stream_name
    return streams


def build_defs(settings: Settings) -> dg.Definitions:
    from platform_assets.resources.transaction_stream import transaction_stream_resource

    resource = transaction_stream_resource(settings)
    streams = consumer_streams(settings)

    @dg.observable_source_asset(
        key=names.VELOCITY_CONSUMER_ASSET,
        group_name=names.FEATURES,
        kinds={resource.kind, "feast"},
        description="The online velocity consumer (make velocity-consumer): reads "
                    f"{', '.join(repr(s) for s in streams.values()) or 'no stream'} ({settings.stream_backend}) "
                    f"and writes {names.CUSTOMER_RECENT_TRANSACTIONS_VIEW} through the push source "
                    f"{names.CUSTOMER_TRANSACTIONS_PUSH}. Each observation reports its backlog (events after its "
                    "committed positions), the age of the oldest, and its last heartbeat. Never opens DuckDB.",
    )
    def velocity_online_consumer(velocity_streams: TransactionStreamResource) -> dg.ObserveResult:
        from platform_assets.lib.transaction_stream import open_stream

        beat = read_heartbeat(settings) or {}
        positions = committed_positions(settings)
        metadata: dict = {}
        backlog_total, oldest_age = 0, 0.0
        for label, name in streams.items():
            log_path = velocity_streams.log_path if label == "transactions" else str(settings.scored_stream_log_path)
            stream = open_stream(velocity_streams.backend, name, log_path=log_path,
                                 redis_url=velocity_streams.redis_url, group=names.VELOCITY_CONSUMER_GROUP,
                                 consumer=names.VELOCITY_CONSUMER)
            try:
                backlog = stream.backlog(positions.get(name))
            finally:
                stream.close()
            age = max(0.0, time.time() - backlog.oldest_written_at) if backlog.oldest_written_at else 0.0
            backlog_total += backlog.events
            oldest_age = max(oldest_age, age)
            metadata[f"{label}_events_not_consumed"] = backlog.events
            metadata[f"{label}_committed_position"] = positions.get(name, "")
        heartbeat_age = time.time() - beat["heartbeat_at"] if beat.get("heartbeat_at") else None
        alive = heartbeat_age is not None and heartbeat_age < STALE_HEARTBEAT_SECONDS and beat.get("state") != "stopped"
        metadata.update({
            "consumer_state": (beat.get("state", "never ran") if alive or not beat else
                               f"down ({beat.get('state')}, last heartbeat {heartbeat_age:.0f} s ago)"),
            "heartbeat_age_seconds": float(round(heartbeat_age, 3)) if heartbeat_age is not None else -1.0,
            "events_not_consumed": backlog_total,
            "oldest_not_consumed_age_seconds": float(round(oldest_age, 3)),
            "events_read": int(beat.get("events_read", 0)),
            "events_applied": int(beat.get("events_applied", 0)),
            "duplicates": int(beat.get("duplicates", 0)),
            "refused_total": int(beat.get("refused_total", 0)),
            "refused_by_reason": dg.MetadataValue.json(beat.get("refused", {})),
            "last_batch": dg.MetadataValue.json(beat.get("last_batch", {})),
            "write_mode": beat.get("write_mode", ""),
            "peak_rss_mb": float(beat.get("peak_rss_mb", 0.0)),
        })
        version = ",".join(f"{n}={positions.get(n, '')}" for n in streams.values()) or "none"
        return dg.ObserveResult(data_version=dg.DataVersion(version), metadata=metadata)

    return dg.Definitions(assets=[velocity_online_consumer],
                          resources={"velocity_streams": resource})
