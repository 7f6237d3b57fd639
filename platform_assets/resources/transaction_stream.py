"""The transaction event stream as a resource: the embedded log's file, or Redis, whose URL may hold a password
and so arrives as dg.EnvVar, resolved at run time (lib/transaction_stream.py has the backends)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from platform_assets.lib.transaction_stream import TransactionStream, open_stream


class TransactionStreamResource(dg.ConfigurableResource):
    backend: str = Field(description="embedded (a SQLite log file) or redis (Redis Streams)")
    name: str = Field(description="The stream's name (the Redis key; a stream inside the embedded log)")
    log_path: str = Field(default="", description="The embedded log's SQLite file")
    redis_url: str = Field(default="", description="Redis URL of the stream (redis backend)")
    lookback_days: int = Field(default=35, description="An event_ts this many days before its sent_at, or older, "
                                                       "goes to the day it was sent (lib.transaction_stream)")
    batch_events: int = Field(default=50_000, description="Most events one micro-batch loads")

    @property
    def kind(self) -> str:
        return "sqlite" if self.backend == "embedded" else "redis"

    @contextmanager
    def open(self) -> Iterator[TransactionStream]:
        stream = open_stream(self.backend, self.name, log_path=self.log_path, redis_url=self.redis_url)
        try:
            yield stream
        finally:
            stream.close()


def transaction_stream_resource(settings) -> TransactionStreamResource:
    """The resource of the active settings; a Redis URL from the environment stays there (dg.EnvVar)."""
    redis_url = (dg.EnvVar("PLATFORM_STREAM_REDIS_URL") if settings.stream_redis_url_from_env
                 else settings.stream_redis_url)
    return TransactionStreamResource(
        backend=settings.stream_backend, name=settings.stream_name, log_path=str(settings.stream_log_path),
        redis_url=redis_url if settings.stream_backend == "redis" else "",
        lookback_days=settings.landing_lookback_days, batch_events=settings.stream_batch_events)
