"""Process-group helpers the benchmark harnesses share."""

from __future__ import annotations

import os


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`: what a server left behind, or still runs."""
    import psutil

    pids = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                pids.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return pids


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
