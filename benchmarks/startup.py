"""`make bench-startup`: time to first step (issue 12, item 8), measured in whole processes as a person meets it.

    python -m benchmarks.startup [--runs 5] [--ui-runs 3] [--parts load,ui] [--out PATH]

(a) Definitions load: the webserver, the daemon, every run worker and every step process import the code location
    and build its Definitions before anything else. Timed as whole interpreter processes (startup and imports
    included, as those processes pay them): `import dagster, dagster_dbt` (the floor nothing of ours can go below)
    against `from platform_assets.definitions import defs; defs()` (`defs` is a LazyDefinitions: calling it builds
    the Definitions, as Dagster does). The two alternate, bare, ours, bare, ours..., so a burst of load from other
    work on the machine lands on both alike; the medians and their ratio are the figures (target: <= 1.3x).
    One untimed run of each first warms the file cache, and one more of ours under `-X importtime` says which
    packages the time goes to and whether a heavy library (pandas, pyarrow, Feast...) came along.
(b) One asset from the UI: `dagster dev` (what `make dev` runs: a code server, `dagster-webserver` and
    `dagster-daemon run`, with deploy/local/dagster.yaml in a fresh DAGSTER_HOME) on 127.0.0.1 and a free port,
    over a small landing zone written by the simulator. Once the code location is loaded, `raw_merchants` is
    launched with the GraphQL mutation the UI's "Materialize" button sends (`launchPipelineExecution` on the
    implicit asset job `__ASSET_JOB`, the asset and its checks selected, `runConfigData: {}`), and `runOrError`
    is polled until the run ends. The run's events (`logsForRun`) give the step's own time and where the rest went:
    queued -> launched by the daemon -> run worker up -> run started (Definitions loaded) -> step -> run end.
    Overhead = wall - step (target: <= 10 s). Repeated `--ui-runs` times on the same servers: the first run may
    pay a cold start, so every run is reported.

Everything runs on temporary PLATFORM_DATA_DIR / DAGSTER_HOME (removed afterwards, `--keep` keeps them); the servers
run in their own process group, which is stopped (SIGINT, as Ctrl-C in `make dev`, then SIGKILL) in a `finally`
and checked to be empty. Results go to `--out` (JSON, with the machine and `uptime` before and after each part).
It is not in benchmarks/results/ itself: `benchmarks.report` reads every *.json there as a size's stage records.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.processes import group_members
from benchmarks.run import RESULTS, ROOT, machine

OUT = RESULTS / "startup" / "startup.json"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
LOADS = {
    "bare": "import dagster, dagster_dbt",
    "ours": "from platform_assets.definitions import defs; defs()",
}
# What tests/test_definitions.py::test_loading_definitions_imports_no_heavy_library keeps out of the Definitions
HEAVY = ("feast", "xgboost", "mlflow", "evidently", "sklearn", "matplotlib", "pandas", "pyarrow", "numpy")
ASSET = "raw_merchants"
ASSET_JOB = "__ASSET_JOB"  # Dagster's implicit asset job: what the UI launches an asset selection in
# The simulator's smallest world that still has a merchants file (raw_merchants needs nothing upstream but it)
SIMULATE = ["--days", "3", "--customers", "200", "--merchants", "50", "--transactions-per-day", "50"]
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def load_average() -> dict:
    """The load average and the `uptime` line: on 2 shared cores the figures include waiting when it is near 2."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        uptime = ""
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "uptime": uptime,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}


def environment(data_dir: Path, dagster_home: Path) -> dict[str, str]:
    """The caller's environment without any platform or Dagster setting of its own (a PLATFORM_PROFILE or
    DAGSTER_HOME left in the shell would measure another deployment), pointed at the temporary directories."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PLATFORM_", "DAGSTER_", "MLFLOW_TRACKING"))}
    return {**env, "PLATFORM_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(ROOT),
            "DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1", "MLFLOW_ENABLE_TELEMETRY": "false"}


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": [round(v, 3) for v in values]}


# ---------------------------------------------------------------------------------------------------- (a) load


def time_process(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False, timeout=600)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"`python -c {code!r}` failed:\n{proc.stderr[-3000:]}")
    return seconds


def import_profile(env: dict[str, str]) -> dict:
    """One more (untimed) load of ours under `-X importtime`: the heavy libraries that came along, and the
    top-level packages by their own import time (the sum of `self` over their modules, not wall time:
    -X importtime itself slows every import)."""
    code = LOADS["ours"] + f"; import json, sys; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True, timeout=600)
    by_package: dict[str, int] = {}
    modules = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        try:
            own, _cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
            package = name.split(".")[0]
            by_package[package] = by_package.get(package, 0) + int(own)
            modules += 1
        except ValueError:
            continue
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:12]
    return {"heavy_modules_loaded": json.loads(proc.stdout.strip().splitlines()[-1]), "modules_imported": modules,
            "top_packages_self_seconds": {k: round(v / 1e6, 3) for k, v in top}}


def measure_load(runs: int, warmup: int, profile: bool, work: Path) -> dict:
    env = environment(work / "load-data", work / "load-dagster-home")
    (work / "load-dagster-home").mkdir(parents=True, exist_ok=True)
    before = load_average()
    for _ in range(warmup):
        for code in LOADS.values():
            time_process(code, env)
    times: dict[str, list[float]] = {name: [] for name in LOADS}
    for i in range(runs):
        for name, code in LOADS.items():
            times[name].append(time_process(code, env))
        print(f"  load {i + 1}/{runs}: bare {times['bare'][-1]:.2f} s, ours {times['ours'][-1]:.2f} s", flush=True)
    result = {name: {"command": f"python -c {LOADS[name]!r}", **spread(values)} for name, values in times.items()}
    result["ratio_of_medians"] = result["ours"]["median"] / result["bare"]["median"]
    result["target_ratio"] = 1.3
    result["warmup_runs"] = warmup
    result["load_before"], result["load_after"] = before, load_average()
    if profile:
        result["profile"] = import_profile(env)
    return result


# ---------------------------------------------------------------------------------------------------- (b) UI run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class GraphQL:
    def __init__(self, port: int):
        self.url = f"http://{HOST}:{port}/graphql"

    def __call__(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]


WORKSPACE_QUERY = """
query StartupWorkspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

ASSET_QUERY = """
query StartupAsset($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      jobNames
      repository { name location { name } }
      assetChecksOrError { __typename ... on AssetChecks { checks { name jobNames } } }
    }
  }
}
"""

# The UI's LAUNCH_PIPELINE_EXECUTION_MUTATION (ui-core/src/runs/RunUtils.tsx), the answers it distinguishes
LAUNCH_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id runId pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on ConflictingExecutionParamsError { message }
  }
}
"""

RUN_QUERY = """
query StartupRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status creationTime startTime endTime }
  }
}
"""

LOGS_QUERY = """
query StartupRunLogs($runId: ID!, $afterCursor: String) {
  logsForRun(runId: $runId, afterCursor: $afterCursor) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { timestamp message stepKey }
      }
    }
    ... on PythonError { message }
  }
}
"""


def wait_until_loaded(gql: GraphQL, server: subprocess.Popen, timeout: float) -> dict:
    """Polls the workspace until the code location is LOADED (the UI's spinner): a load error fails at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.returncode} before the code location loaded")
        try:
            workspace = gql(WORKSPACE_QUERY, timeout=10)["workspaceOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError):
            time.sleep(0.5)
            continue
        for entry in workspace.get("locationEntries", []):
            location = entry.get("locationOrLoadError") or {}
            if location.get("__typename") == "PythonError":
                raise RuntimeError(f"code location {entry['name']} failed to load: {location['message']}")
            if entry["loadStatus"] == "LOADED" and location.get("__typename") == "RepositoryLocation":
                return entry
        time.sleep(0.5)
    raise TimeoutError(f"the code location did not load within {timeout:.0f} s")


def execution_params(gql: GraphQL) -> dict:
    """What the UI's LaunchAssetExecutionButton builds for one asset (executionParamsForAssetJob): the asset job,
    the asset, its checks that run with it in that job, no run config, no tags."""
    node = gql(ASSET_QUERY, {"assetKey": {"path": [ASSET]}})["assetNodeOrError"]
    if node["__typename"] != "AssetNode":
        raise RuntimeError(f"{ASSET} not found: {node}")
    if ASSET_JOB not in node["jobNames"]:
        raise RuntimeError(f"{ASSET} is not in {ASSET_JOB} (jobs: {node['jobNames']})")
    checks = node["assetChecksOrError"].get("checks", [])
    return {
        "executionMetadata": {"tags": []},
        "runConfigData": {},
        "selector": {
            "repositoryLocationName": node["repository"]["location"]["name"],
            "repositoryName": node["repository"]["name"],
            "pipelineName": ASSET_JOB,
            "assetSelection": [{"path": [ASSET]}],
            "assetCheckSelection": [{"assetKey": {"path": [ASSET]}, "name": c["name"]} for c in checks
                                    if not c["jobNames"] or ASSET_JOB in c["jobNames"]],
        },
    }


def run_events(gql: GraphQL, run_id: str) -> list[dict]:
    events, cursor = [], None
    while True:
        page = gql(LOGS_QUERY, {"runId": run_id, "afterCursor": cursor})["logsForRun"]
        if page["__typename"] != "EventConnection":
            raise RuntimeError(f"logsForRun: {page}")
        events += page["events"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events


def timeline(events: list[dict], launched_at: float) -> dict:
    """Seconds after the launch request of each milestone of the run, first occurrence (event timestamps are
    milliseconds of the same machine's clock). `launched` is RUN_STARTING, written when the daemon takes the run
    off the queue and hands it to the run launcher (this Dagster writes no RUN_DEQUEUED for it); `worker_started`
    is the run worker's "Started process for run" (Python and Dagster imported), `run_started` its RUN_START
    (the Definitions loaded in the worker and the plan built)."""
    marks = {
        "enqueued": lambda e: e["__typename"] == "RunEnqueuedEvent",
        "launched": lambda e: e["__typename"] == "RunStartingEvent",
        "worker_started": lambda e: e["__typename"] == "EngineEvent" and "Started process for run" in e["message"],
        "run_started": lambda e: e["__typename"] == "RunStartEvent",
        "step_started": lambda e: e["__typename"] == "ExecutionStepStartEvent",
        "step_succeeded": lambda e: e["__typename"] in ("ExecutionStepSuccessEvent", "ExecutionStepFailureEvent"),
        "run_ended": lambda e: e["__typename"] in ("RunSuccessEvent", "RunFailureEvent", "RunCanceledEvent"),
    }
    found = {}
    for name, match in marks.items():
        stamp = next((float(e["timestamp"]) / 1000 for e in events if match(e)), None)
        found[name] = None if stamp is None else round(stamp - launched_at, 3)
    return found


def launch_once(gql: GraphQL, params: dict, timeout: float) -> dict:
    launched_at = time.time()
    answer = gql(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launch refused: {answer}")
    run_id = answer["run"]["runId"]
    accepted = time.time() - launched_at
    deadline = time.monotonic() + timeout
    while True:
        run = gql(RUN_QUERY, {"runId": run_id})["runOrError"]
        if run.get("status") in TERMINAL:
            wall = time.time() - launched_at
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} not finished after {timeout:.0f} s (status {run.get('status')})")
        time.sleep(0.2)
    marks = timeline(run_events(gql, run_id), launched_at)
    step = (marks["step_succeeded"] - marks["step_started"]
            if marks["step_started"] is not None and marks["step_succeeded"] is not None else None)
    return {"run_id": run_id, "status": run["status"], "launch_request_seconds": round(accepted, 3),
            "wall_seconds": round(wall, 3), "step_seconds": None if step is None else round(step, 3),
            "overhead_seconds": None if step is None else round(wall - step, 3), "timeline": marks}


def stop_group(server: subprocess.Popen, grace: float = 30) -> list[int]:
    """Ctrl-C for the whole group (what stopping `make dev` in a terminal does: dagster dev then shuts its
    webserver, daemon and code server down), SIGKILL for whatever is left after `grace` seconds; returns the pids
    still in the group after that (none, or the harness says so)."""

    pgid = server.pid  # start_new_session: the group's id is the leader's pid
    try:
        os.killpg(pgid, signal.SIGINT)
    except ProcessLookupError:
        return []
    try:
        server.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass

    def members() -> list[int]:
        return group_members(pgid)

    deadline = time.monotonic() + grace
    while members() and time.monotonic() < deadline:
        time.sleep(0.5)
    if members():
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(1)
    if server.poll() is None:
        server.kill()
        server.wait(timeout=10)
    return members()


def measure_ui(runs: int, work: Path, timeout: float, result: dict) -> dict:
    """Fills `result` as it goes, so a failure still leaves what was measured and the server log's tail."""
    data_dir, dagster_home = work / "ui-data", work / "ui-dagster-home"
    dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = environment(data_dir, dagster_home)
    subprocess.run([sys.executable, "-m", "platform_assets.simulator", *SIMULATE], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=600)
    port = free_port()
    log_path = work / "dagster-dev.log"
    before = load_average()
    result.update({"command": f"dagster dev -w workspace.yaml -h {HOST} -p {port}", "asset": ASSET,
                   "job": ASSET_JOB, "simulator": " ".join(SIMULATE), "load_before": before, "runs": []})
    started = time.perf_counter()
    with log_path.open("w") as log:
        server = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", HOST, "-p", str(port)],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        gql = GraphQL(port)
        entry = wait_until_loaded(gql, server, timeout)
        result["location_loaded_seconds"] = round(time.perf_counter() - started, 3)
        result["location"] = entry["name"]
        print(f"  code location {entry['name']} loaded {result['location_loaded_seconds']:.1f} s after "
              f"`dagster dev` started", flush=True)
        params = execution_params(gql)
        result["execution_params"] = params
        for i in range(runs):
            record = launch_once(gql, params, timeout)
            result["runs"].append(record)
            print(f"  run {i + 1}/{runs}: {record['status']} wall {record['wall_seconds']:.1f} s, step "
                  f"{record['step_seconds']} s, overhead {record['overhead_seconds']} s", flush=True)
    except Exception:
        result["server_log_tail"] = log_path.read_text()[-4000:] if log_path.exists() else ""
        raise
    finally:
        left = stop_group(server)
        result["processes_left_behind"] = left
        if left:
            print(f"  WARNING: processes left in the server group: {left}", flush=True)
    result["load_after"] = load_average()
    done = [r for r in result["runs"] if r["overhead_seconds"] is not None]
    if done:
        result["overhead"] = spread([r["overhead_seconds"] for r in done])
        result["wall"] = spread([r["wall_seconds"] for r in done])
        result["step"] = spread([r["step_seconds"] for r in done])
    result["target_overhead_seconds"] = 10
    return result


# ---------------------------------------------------------------------------------------------------- report


def print_table(results: dict) -> None:
    load = results.get("definitions_load")
    if load:
        print("\nDefinitions load (whole process)      median    min    max")
        for name in ("bare", "ours"):
            r = load[name]
            print(f"  {r['command']:<62s} {r['median']:6.2f} s {r['min']:6.2f} {r['max']:6.2f}")
        print(f"  ours / bare: {load['ratio_of_medians']:.2f}x (target <= {load['target_ratio']}x); load average "
              f"{load['load_before']['loadavg']} -> {load['load_after']['loadavg']}")
        if "profile" in load:
            print(f"  heavy libraries loaded with the Definitions: {load['profile']['heavy_modules_loaded'] or 'none'}")
    ui = results.get("ui_run")
    if ui and ui.get("runs"):
        print(f"\nOne asset from the UI ({ui['asset']}), seconds after the launch request")
        print("  run  status   wall   step  overhead | enqueued launched   worker run_start step_start "
              "step_end  run_end")
        for i, r in enumerate(ui["runs"], 1):
            t = r["timeline"]
            marks = " ".join(f"{'-' if t[k] is None else f'{t[k]:.2f}':>8s}" for k in (
                "enqueued", "launched", "worker_started", "run_started", "step_started",
                "step_succeeded", "run_ended"))
            print(f"  {i:3d}  {r['status']:7s} {r['wall_seconds']:6.2f} {r['step_seconds'] or 0:6.2f} "
                  f"{r['overhead_seconds'] or 0:8.2f} | {marks}")
        print(f"  code location loaded after {ui['location_loaded_seconds']:.1f} s; target overhead <= "
              f"{ui['target_overhead_seconds']} s; load average {ui['load_before']['loadavg']} -> "
              f"{ui['load_after']['loadavg']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed loads of each command (part a)")
    parser.add_argument("--ui-runs", type=int, default=3, help="launches of the one-asset run (part b)")
    parser.add_argument("--parts", default="load,ui", help="load (a), ui (b) or both")
    parser.add_argument("--warmup", type=int, default=1, help="untimed loads of each command first")
    parser.add_argument("--no-profile", action="store_true", help="skip the -X importtime load")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the location to load / a run")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (and the server log)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts <= {"load", "ui"}:
        parser.error(f"--parts: load and/or ui, not {args.parts}")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=False).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "platform_assets"], cwd=ROOT,
                                capture_output=True, text=True, check=False).stdout.strip())
    results: dict = {"machine": machine(), "started": datetime.now(UTC).isoformat(timespec="seconds"),
                     "commit": git, "platform_assets_modified": dirty, "python": sys.executable}
    work = Path(tempfile.mkdtemp(prefix="platform-startup-"))
    print(f"time to first step on {results['machine']} (commit {git}{', modified' if dirty else ''}), work {work}",
          flush=True)
    try:
        if "load" in parts:
            results["definitions_load"] = measure_load(args.runs, args.warmup, not args.no_profile, work)
        if "ui" in parts:
            results["ui_run"] = {}
            measure_ui(args.ui_runs, work, args.timeout, results["ui_run"])
    finally:
        results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
