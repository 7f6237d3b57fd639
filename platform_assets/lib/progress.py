"""Progress lines for long loops: "rows done" in the run log every few seconds, not once per item.

A backfill of a year of daily files is hundreds of files; one log line per file floods Dagit's log view, and no
line at all leaves an operator guessing whether the run hangs. `ProgressLog` logs the first item, then at most one
line per `every_seconds`, and always the last one, each with items and rows done and the rate so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressLog:
    def __init__(self, log: Callable[[str], None], what: str, total: int, every_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self._log, self._what, self._total, self._every = log, what, total, every_seconds
        self._clock = clock
        self._started = clock()
        self._last_logged: float | None = None
        self.items_done = 0
        self.rows_done = 0

    def advance(self, rows: int, items: int = 1) -> None:
        self.items_done += items
        self.rows_done += rows
        now = self._clock()
        finished = self.items_done >= self._total
        if self._last_logged is None or finished or now - self._last_logged >= self._every:
            self._last_logged = now
            elapsed = max(now - self._started, 1e-9)
            self._log(
                f"{self._what}: {self.items_done}/{self._total} done, {self.rows_done:,} rows "
                f"({self.rows_done / elapsed:,.0f} rows/s)"
            )
