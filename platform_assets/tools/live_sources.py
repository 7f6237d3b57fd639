"""The simulated source systems of `make demo` (and of the tests that run it), fed as time passes.

Files arrive as a day's batch; the live sources do not. The system of record changes row by row, the chargeback
API serves what has been reported so far, the stream carries each transaction when it happens. So the demo feeds
them as time passes: the system of record is brought to the end of a day and that day's transactions are sent to
the stream. The system of record is read (by its `updated_at` cursor) a few times along the window, so the dbt
snapshots hold the versions a daily capture would have kept; the stream and the API, which keep their backlog,
are then read once over the whole window, the platform's first load. History loaded in one first load counts as
known on time for the features (dbt_project/macros/knowable_at.sql), exactly as a first backfill of files does;
the incremental reads that follow a first load (the schedule, the stream sensor) are the tests' to show.

Each demo creates its source systems anew, so what an earlier demo's loads remembered about older ones (the raw
tables, the cursors, the received records) goes with them: the warehouse file is started afresh.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from platform_assets.settings import Settings, sources_dir, write_sources_file
from platform_assets.simulator import SimulationConfig

LIVE_MODES = {"master_data": "database", "chargebacks": "api", "transactions": "stream"}


def create_live_sources(data_dir, config: SimulationConfig) -> None:
    """Start from empty source systems and record that the platform reads them (data/sources/sources.json,
    with the first simulated day, where the daily partitions start). Call before the settings are loaded."""
    from pathlib import Path

    data_dir = Path(data_dir)
    shutil.rmtree(sources_dir(data_dir), ignore_errors=True)
    warehouse = data_dir / "warehouse" / "warehouse.duckdb"
    for leftover in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        leftover.unlink(missing_ok=True)
    write_sources_file(data_dir, LIVE_MODES, config.start_date)


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, UTC) - timedelta(microseconds=1)


@dataclass
class LiveSources:
    """The three simulated source systems of `settings` (local profile: a SQLite system of record, the chargeback
    API service on settings.chargeback_api_port, the embedded stream log), fed up to `fed_through`."""

    settings: Settings
    config: SimulationConfig
    api_faults: str = ""
    fed_through: date | None = None
    events_sent: int = 0
    _api: subprocess.Popen | None = field(default=None, repr=False)

    @contextmanager
    def running(self) -> Iterator[LiveSources]:
        """The chargeback API service runs (through its own command) while the block runs."""
        from platform_assets.simulator.chargeback_api import (
            start_service,
            stop_service,
            write_chargeback_api_data,
        )

        data = write_chargeback_api_data(self.config, self.settings.sources_dir)
        self._api = start_service(self.settings.chargeback_api_port, data, faults=self.api_faults)
        try:
            yield self
        finally:
            stop_service(self._api)
            self._api = None

    def feed_through(self, day: date) -> None:
        """The system of record as of the end of `day`; the stream carries every transaction up to then."""
        from platform_assets.lib.transaction_stream import open_stream
        from platform_assets.simulator.stream import replay_days
        from platform_assets.simulator.system_of_record import apply_system_of_record

        apply_system_of_record(self.config, self.settings.source_database_url, end_of(day))
        first = self.fed_through + timedelta(days=1) if self.fed_through else self.config.start_date
        indices = [(first + timedelta(days=i) - self.config.start_date).days for i in range((day - first).days + 1)]
        if indices:
            stream = open_stream(self.settings.stream_backend, self.settings.stream_name,
                                 log_path=self.settings.stream_log_path)
            try:
                self.events_sent += replay_days(self.config, indices, stream=stream).events
            finally:
                stream.close()
        self.fed_through = day


def chunks(first: date, last: date, count: int) -> list[tuple[date, date]]:
    """first..last cut into `count` consecutive ranges of (nearly) equal length."""
    days = (last - first).days + 1
    count = max(1, min(count, days))
    bounds = [first + timedelta(days=round(i * days / count)) for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - timedelta(days=1)) for i in range(count)]
