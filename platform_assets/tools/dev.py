"""`make dev` (python -m platform_assets.tools.dev): `dagster dev` that refuses to start twice and stops when asked.

    python -m platform_assets.tools.dev [--host 127.0.0.1] [--port 3000] [--workspace workspace.yaml]

Plain `dagster dev` has two habits that bite on a laptop, both measured here:

* Started from a script or in the background (`make dev &`, a test harness, nohup), it ignores SIGTERM and SIGINT
  for good: a non-interactive shell starts background jobs with SIGINT ignored, Python then installs no
  KeyboardInterrupt handler, and Dagster maps SIGTERM onto that (ignored) SIGINT handler. The webserver, the
  daemon and the code servers inherit the same. Only SIGKILL stops it, which orphans the webserver and the daemon:
  they go on running and writing to DAGSTER_HOME. Even delivered, a graceful stop of the whole tree took 8-13 s
  on a busy 2-core machine, and `dagster dev` itself exits before its code servers do.
* A second `dagster dev` on a busy port starts a second daemon on the same DAGSTER_HOME before its webserver
  fails: two daemons launching the same sensor runs and schedules.

So this launcher first refuses (one line on stderr, exit code 3 or 4) when the port is taken or a daemon already
runs on DAGSTER_HOME, then starts `dagster dev` in a process group of its own with the default signal dispositions
(the handlers installed here are reset by exec). On SIGTERM, SIGINT or SIGHUP it sends SIGTERM to that whole group
(webserver, daemon, code servers, the run workers and step processes they launched) and to any descendant that
left it, and SIGKILL to whatever still lives after `--grace-seconds`: everything is gone within 10 s. A run killed
that way is marked failed by run monitoring (deploy/local/dagster.yaml) and its pool slot freed.

"A daemon already runs" is known two ways, neither of which a killed process can leave stuck:
* an exclusive `flock` on DAGSTER_HOME/dev.lock, held by this launcher and inherited by its `dagster dev` (the
  kernel drops it when the last holder dies, `kill -9` included). If the launcher itself is killed with SIGKILL,
  `dagster dev` gets SIGTERM from the kernel (Linux's parent-death signal) and shuts its services down;
* a daemon heartbeat in the instance younger than Dagster's heartbeat interval plus a margin, for a daemon started
  some other way (`dagster-daemon run`, a plain `dagster dev`). A launcher that stopped its own daemon notes when
  in the lock file, and the next one skips the heartbeats written before that, so a restart right after a stop is
  not refused; after a `kill -9` of everything a restart is refused for at most that long, and the message says
  so.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from platform_assets.settings import PROJECT_ROOT, load_settings

EXIT_PORT_IN_USE = 3
EXIT_ALREADY_RUNNING = 4
LOCK_NAME = "dev.lock"
# Dagster's daemon writes a heartbeat every 30 s (dagster._daemon.controller.DEFAULT_HEARTBEAT_INTERVAL_SECONDS);
# younger than this, its daemon is taken to be alive.
HEARTBEAT_ALIVE_SECONDS = 30 + 15
DEFAULT_GRACE_SECONDS = 6.0
KILL_WAIT_SECONDS = 3.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1
SHIM = "from platform_assets.tools.dev import exec_dying_with_parent; exec_dying_with_parent()"


class Refused(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def port_in_use(host: str, port: int) -> bool:
    """Whether the webserver could not bind host:port, tested by binding it the way uvicorn does (SO_REUSEADDR,
    so a port in TIME_WAIT counts as free, a listening one as taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def acquire_lock(dagster_home: Path, host: str, port: int) -> tuple[int, float | None]:
    """The exclusive lock of one `make dev` per DAGSTER_HOME: its file descriptor (kept open, and passed to
    `dagster dev`, for as long as they run) and when the previous launcher stopped its services cleanly, if it
    did. The file's text is only that: who holds it (for the refusal message), or `stopped <unix time>`."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = path.read_text().strip() or "unknown pid"
        os.close(fd)
        raise Refused(f"make dev: another `make dev` ({holder}) already runs on DAGSTER_HOME={dagster_home}: stop "
                      "it first (Ctrl-C in its terminal), or give this one its own DAGSTER_HOME",
                      EXIT_ALREADY_RUNNING) from None
    previous = os.pread(fd, 200, 0).decode(errors="replace").split()
    stopped_at = float(previous[1]) if len(previous) == 2 and previous[0] == "stopped" else None
    _write(fd, f"pid {os.getpid()}, http://{host}:{port}\n")
    return fd, stopped_at


def live_daemon_heartbeat(dagster_home: Path, after: float | None = None) -> float | None:
    """Age in seconds of the newest daemon heartbeat in the instance, if younger than HEARTBEAT_ALIVE_SECONDS and
    written after `after` (when the previous launcher had stopped its own daemon: what that daemon wrote then is
    no sign of life)."""
    if not (dagster_home / "history").is_dir():  # no instance storage yet: no daemon ever ran here
        return None
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        stamps = [h.timestamp for h in instance.get_daemon_heartbeats().values()
                  if after is None or h.timestamp > after]
    if not stamps:
        return None
    age = time.time() - max(stamps)
    return age if age < HEARTBEAT_ALIVE_SECONDS else None


def check_can_start(host: str, port: int, dagster_home: Path) -> int:
    """Refuse (Refused) a busy port or a daemon already running on dagster_home; else return the lock's fd."""
    if port_in_use(host, port):
        raise Refused(f"make dev: {host}:{port} is already in use (another `make dev`?): stop it, or choose "
                      f"another port: make dev PORT={port + 1}", EXIT_PORT_IN_USE)
    fd, stopped_at = acquire_lock(dagster_home, host, port)
    try:
        age = live_daemon_heartbeat(dagster_home, after=stopped_at)
    except BaseException:
        os.close(fd)
        raise
    if age is not None:
        os.close(fd)
        raise Refused(f"make dev: a Dagster daemon already runs on DAGSTER_HOME={dagster_home} (last heartbeat "
                      f"{age:.0f} s ago): stop it first; a daemon that was killed stops counting "
                      f"{HEARTBEAT_ALIVE_SECONDS} s after its last heartbeat", EXIT_ALREADY_RUNNING)
    return fd


# ------------------------------------------------------------------------------------------------- processes


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process, from /proc (Linux)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                data = stat.read().decode(errors="replace")
        except OSError:
            continue
        # the command name (field 2) is in parentheses and may hold spaces: the fields after its last ")"
        fields = data[data.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def members(pgid: int, root: int) -> set[int]:
    """The live (not zombie) processes of group `pgid` and every descendant of `root`, wherever its group."""
    if not Path("/proc/self/stat").exists():  # not Linux: the group alone, known alive or not by signal 0
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return set()
        return {pgid}
    table = _proc_table()
    found = {pid for pid, (_, group, state) in table.items() if group == pgid and state != "Z"}
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if table[child][2] != "Z" and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal_all(pgid: int, pids: set[int], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_tree(proc, grace: float, kill_wait: float = KILL_WAIT_SECONDS) -> set[int]:
    """SIGTERM the group of `proc` and its descendants, SIGKILL what lives after `grace` s; return what is left
    after `kill_wait` more (nothing, unless a process is stuck in the kernel)."""
    pgid = proc.pid
    left = members(pgid, proc.pid)
    _signal_all(pgid, left, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        proc.poll()  # reap `dagster dev` itself, or it stays a member as a zombie
        left = members(pgid, proc.pid) | left_alive(left)
    if left:
        print(f"make dev: {len(left)} process(es) still running after {grace:.0f} s: SIGKILL", file=sys.stderr,
              flush=True)
        _signal_all(pgid, left, signal.SIGKILL)
        deadline = time.monotonic() + kill_wait
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            proc.poll()
            left = members(pgid, proc.pid) | left_alive(left)
    proc.poll()
    return left


def left_alive(pids: set[int]) -> set[int]:
    """Which of `pids` still live (descendants that were reparented when their parent died)."""
    if not Path("/proc/self/stat").exists():
        return set()
    table = _proc_table()
    return {pid for pid in pids if pid in table and table[pid][2] != "Z"}


def exec_dying_with_parent(argv: list[str] | None = None) -> None:
    """`python -c '...exec_dying_with_parent()' PARENT_PID COMMAND...`: exec COMMAND with SIGTERM as its parent-death
    signal (Linux's prctl, kept across exec), so `dagster dev` shuts its services down when the launcher is
    killed with SIGKILL. A shim rather than Popen's preexec_fn, which is unsafe once Dagster has started threads."""
    argv = sys.argv[1:] if argv is None else argv
    parent, command = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the launcher died before the signal was armed
            os._exit(1)
    os.execv(command[0], command)


def _start_simulated_chargeback_api(settings):
    """The demo's chargeback API, when the platform reads chargebacks from it and nothing listens there yet: the
    daily ingestion schedule needs it as much as the demo did. Another URL, or a service already started
    (`make chargeback-api`), is left alone."""
    if (settings.sources.chargebacks != "api" or not settings.chargeback_api_data_path.is_file()
            or settings.chargeback_api_url != f"http://127.0.0.1:{settings.chargeback_api_port}"
            or port_in_use("127.0.0.1", settings.chargeback_api_port)):
        return None
    from platform_assets.simulator.chargeback_api import start_service

    try:
        process = start_service(settings.chargeback_api_port, settings.chargeback_api_data_path,
                                faults=settings.chargeback_api_faults)
    except (RuntimeError, TimeoutError) as exc:  # the UI still starts; raw_chargebacks runs will say why
        print(f"make dev: the simulated chargeback API did not start ({exc}): `make chargeback-api` starts it",
              file=sys.stderr, flush=True)
        return None
    print(f"make dev: the simulated chargeback API on {settings.chargeback_api_url} (docs/sources.md)", flush=True)
    return process


def _start_velocity_consumer(settings):
    """The online velocity consumer (features/velocity_online.py) beside the UI, unless PLATFORM_VELOCITY_CONSUMER=off
    or one already runs on this data dir (its heartbeat is fresh and its pid alive). It dies with the launcher
    (the same parent-death shim as `dagster dev`) and is stopped with SIGTERM (it finishes its batch) before."""
    if not settings.velocity_consumer_in_dev:
        return None
    from platform_assets.lib.velocity_consumer import read_heartbeat

    beat = read_heartbeat(settings) or {}
    if beat.get("state") != "stopped" and beat.get("pid") and time.time() - beat.get("heartbeat_at", 0) < 30:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(beat["pid"], 0)
            print(f"make dev: the velocity consumer already runs (pid {beat['pid']})", flush=True)
            return None
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "velocity-consumer.log", "ab") as out:
        process = subprocess.Popen([sys.executable, "-c", SHIM, str(os.getpid()), sys.executable, "-m",
                                    "platform_assets.features.velocity_online"], cwd=PROJECT_ROOT,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    print(f"make dev: the online velocity consumer (pid {process.pid}, log {log_dir / 'velocity-consumer.log'})",
          flush=True)
    return process


def _stop_process(process, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=KILL_WAIT_SECONDS)


def run(host: str, port: int, workspace: Path, grace: float) -> int:
    settings = load_settings()
    home = settings.dagster_home or settings.data_dir / "dagster"
    try:
        lock_fd = check_can_start(host, port, home)
    except Refused as refused:
        print(refused, file=sys.stderr, flush=True)
        return refused.code
    if not (home / "dagster.yaml").exists():  # as `make dev` and the container do: the local instance config
        shutil.copy(PROJECT_ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")

    received: list[int] = []

    def _on_signal(signum, _frame):
        received.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)
    api = _start_simulated_chargeback_api(settings)
    consumer = _start_velocity_consumer(settings)
    command = [sys.executable, "-c", SHIM, str(os.getpid()),
               sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    print(f"make dev: Dagster UI and daemon on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops "
          "the webserver, the daemon, the code servers and their runs", flush=True)
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, "DAGSTER_HOME": str(home)},
                            start_new_session=True, pass_fds=(lock_fd,))
    try:
        while not received and proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
    finally:
        started = time.monotonic()
        if consumer is not None:
            consumer.terminate()  # first: it finishes its batch while the rest stops
        left = stop_tree(proc, grace)
        if consumer is not None:
            _stop_process(consumer, max(0.5, grace - (time.monotonic() - started)))
        if received:
            print(f"make dev: {signal.Signals(received[0]).name} received: stopped in "
                  f"{time.monotonic() - started:.1f} s" + (f", {sorted(left)} left" if left else ""),
                  file=sys.stderr, flush=True)
        if not left:  # the daemon's last heartbeats are no sign of life now: the next launcher skips them
            _write(lock_fd, f"stopped {time.time()}\n")
        os.close(lock_fd)
        if api is not None:
            from platform_assets.simulator.chargeback_api import stop_service

            stop_service(api)
    if received:
        return 0 if not left else 1
    print(f"make dev: dagster dev exited with {proc.returncode}", file=sys.stderr, flush=True)
    return proc.returncode or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform_assets.tools.dev", description=__doc__.split("\n")[0],
                                     epilog=f"exit codes: {EXIT_PORT_IN_USE} port in use, {EXIT_ALREADY_RUNNING} a "
                                     "daemon already runs on DAGSTER_HOME, 0 stopped by a signal")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--workspace", type=Path, default=PROJECT_ROOT / "workspace.yaml")
    parser.add_argument("--grace-seconds", type=float, default=DEFAULT_GRACE_SECONDS,
                        help="after SIGTERM, how long the services get before SIGKILL (default %(default)s)")
    args = parser.parse_args(argv)
    return run(args.host, args.port, args.workspace.resolve(), args.grace_seconds)


if __name__ == "__main__":
    sys.exit(main())
