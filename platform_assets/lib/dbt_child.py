"""`platform-dbt`: dbt that dies with the process that started it (Linux), the command the platform's dbt resource
runs.

A step's `dbt build` is a child process holding the DuckDB warehouse. When the run worker (or the step process)
that started it is killed with `kill -9`, nothing stops dbt: Dagster marks the run failed and frees its pool slot,
and the next writer then meets the lock of an orphan that goes on writing. The kernel's parent-death signal
(`prctl(PR_SET_PDEATHSIG)`) set here, before dbt starts, kills it with its parent instead; DuckDB rolls back
what it had not committed. Elsewhere (macOS) this is plain dbt.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    return True


def main() -> None:
    die_with_parent()
    from dbt.cli.main import cli

    sys.exit(cli())


if __name__ == "__main__":
    main()
