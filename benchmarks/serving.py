"""`make bench-serve`: real-time scoring under open-loop load, our service side by side with its floor and the
stock servers.

    python -m benchmarks.serving [--targets ours,floor,mlflow,feast] [--rates 100,500,1000] [--seconds 30]
                                 [--max-rate] [--soak-seconds 0] [--soak-rate 300] [--data-dir DIR] [--out PATH]

Targets, each a server in its own process group on 127.0.0.1 and a free port:

- `ours`: `python -m platform_assets.serving` (`POST /v1/score`, ready when `GET /readyz` answers 200);
- `floor`: benchmarks/serving_floor.py, a bare ASGI callable doing the same lookups and predict (`POST /v1/score`);
- `mlflow`: `mlflow models serve -m models:/<model>@champion --env-manager local --workers 1`, `POST /invocations`
  with one `dataframe_split` row of the champion's features taken from the newest training set (score only);
- `feast`: `feast serve` of feature_repo/ (`POST /get-online-features` of the champion's feature service: the
  features only, no model).

Requests come from real data: (customer, merchant, amount, channel) of transactions sampled with a fixed seed
from exports/fct_transactions.parquet, timed at the moment they are due; every request of a run is its own
(unique transaction id). For each server: start, wait until ready (bounded, the seconds are reported), check
one request answers 200 (else the target is skipped and the error recorded), ~2 s of load to warm up (not
recorded), then each rate for `--seconds` by the open-loop generator (benchmarks/loadgen.py) in a process of its
own, then stop (SIGTERM to the group, SIGKILL after a grace). With `--max-rate` the rates step up (10 s each) until
one is not sustained (achieved < 99% of offered, p99 >= 50 ms, or any error). `--soak-seconds` runs `--soak-rate`
against `ours` (`--soak-target`) and reports its RSS at start, end, peak and growth.

The server's process tree is sampled every 100 ms (psutil): CPU (user + sys of every process of the tree, summed;
a process that exits between two samples loses at most its last 100 ms) and RSS (the tree's sum; and the largest
process), taken over the generator's own load window; VmHWM of each process at the end of a run (since the
process started). With pinning (default, needs 2 CPUs) the servers run on the first CPU and the generator (and
this harness) on the second, and the generator polls instead of sleeping the last ~1.5 ms before a due request.

Results: `--out` (default benchmarks/results/serving/serving.json; not in benchmarks/results/ itself, whose *.json
`benchmarks.report` reads as stage records), rewritten after every target, and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks import loadgen
from benchmarks.processes import group_members

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "results" / "serving" / "serving.json"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
# ours_2w: the same service with two uvicorn workers on both CPUs (the throughput configuration; the generator
# shares them), where `ours` is one worker on the servers' CPU like every other target.
TARGETS = ("ours", "floor", "mlflow", "feast", "ours_2w")
MAX_RATE_STEPS = (1000, 1500, 2000, 2500, 3000)
VERSIONS = ("uvicorn", "uvloop", "httptools", "starlette", "fastapi", "orjson", "xgboost", "mlflow", "feast",
            "numpy", "pandas", "psutil", "gunicorn")
DISTRIBUTIONS = {"xgboost": ("xgboost", "xgboost-cpu")}  # the distribution a module may come from
OURS_KEYS = ("score", "decision", "model_version", "feature_service", "stale_features", "reasons")
SAMPLE_ROWS = 2000
SEED = 20261201
POOL_CAP = 60_000  # distinct prebuilt requests per run at most (cycled beyond)
# Pins the command's process (and so every process it starts) to the given CPUs, then becomes the command.
PIN_EXEC = "import os, sys; os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(',')}); " \
           "os.execvp(sys.argv[2], sys.argv[2:])"


class TargetError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------ the machine


def versions() -> dict:
    found = {"python": sys.version.split()[0]}
    for name in VERSIONS:
        found[name] = None
        for distribution in DISTRIBUTIONS.get(name, (name,)):
            try:
                found[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def git_state() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "platform_assets_modified": bool(git("status", "--porcelain", "--", "platform_assets"))}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pinning(enabled: bool) -> dict:
    """Servers on the first CPU this process may use, the generator (and the harness) on the second."""
    if not enabled:
        return {"enabled": False, "why": "--no-pin"}
    if not hasattr(os, "sched_getaffinity"):
        return {"enabled": False, "why": "no sched_setaffinity on this platform"}
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {"enabled": False, "why": f"only CPUs {cpus} available"}
    return {"enabled": True, "server_cpus": [cpus[0]], "generator_cpu": cpus[1], "available_cpus": cpus}


# ------------------------------------------------------------------------------------------------ the requests


def sample_transactions(data_dir: Path, n: int = SAMPLE_ROWS, seed: int = SEED) -> list[dict]:
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(data_dir / "exports" / "fct_transactions.parquet",
                          columns=["customer_id", "merchant_id", "amount", "channel"])
    rows = np.random.default_rng(seed).choice(table.num_rows, size=min(n, table.num_rows), replace=False)
    return table.take(rows).to_pylist()


def sample_feature_rows(data_dir: Path, n: int = SAMPLE_ROWS, seed: int = SEED) -> tuple[list[str], list[list]]:
    """Model inputs of real rows of the newest training set (NaN as None: JSON null)."""
    import numpy as np
    import pyarrow.parquet as pq

    from platform_assets.lib.training_sets import latest_manifest

    training_sets = data_dir / "training_sets"
    manifest = latest_manifest(training_sets)
    path = training_sets / f"{manifest.snapshot_id}.parquet"
    table = pq.read_table(path if path.exists() else manifest.path, columns=manifest.feature_columns)
    rows = np.random.default_rng(seed).choice(table.num_rows, size=min(n, table.num_rows), replace=False)
    picked = table.take(rows)
    columns = [picked.column(c).to_pylist() for c in manifest.feature_columns]
    data = [[None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in row]
            for row in zip(*columns)]
    return list(manifest.feature_columns), data


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(math.floor(epoch), UTC).isoformat()


def bodies(target: str, samples: dict, count: int, rate: float, start: float, tag: str) -> list[bytes]:
    """The bodies of a run's requests: request i is timed at start + i / rate (when it is due)."""
    import orjson

    rows = samples["transactions"]
    out = []
    for i in range(min(count, POOL_CAP)):
        row = rows[i % len(rows)]
        epoch = start + i / rate
        if target in ("ours", "ours_2w", "floor"):
            body = {"transaction_id": f"bench-{tag}-{i:07d}", "customer_id": row["customer_id"],
                    "merchant_id": row["merchant_id"], "amount": float(row["amount"]), "currency": "EUR",
                    "channel": row["channel"], "event_ts": iso(epoch)}
        elif target == "feast":
            body = {"feature_service": samples["feature_service"],
                    "entities": {"customer_id": [row["customer_id"]], "merchant_id": [row["merchant_id"]],
                                 "amount": [float(row["amount"])], "transaction_epoch": [math.floor(epoch)]}}
        elif target == "mlflow":
            columns, data = samples["features"]
            body = {"dataframe_split": {"columns": columns, "data": [data[i % len(data)]]}}
        else:
            raise ValueError(target)
        out.append(orjson.dumps(body))
    return out


# ------------------------------------------------------------------------------------------------ the servers


def server_specs(args, data_dir: Path, settings) -> dict[str, dict]:
    python = sys.executable
    ours = ([python, "-m", "platform_assets.serving", "--host", "{host}", "--port", "{port}"]
            if not args.server_cmd_ours else shlex.split(args.server_cmd_ours))
    mlflow_uri = f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
    return {
        "ours": {"command": ours, "cwd": ROOT, "env": {}, "ready": "/readyz", "path": "/v1/score"},
        "ours_2w": {"command": [*ours, "--workers", "2"], "cwd": ROOT, "env": {}, "ready": "/readyz",
                    "path": "/v1/score", "all_cpus": True},
        "floor": {"command": [python, "-m", "benchmarks.serving_floor", "--host", "{host}", "--port", "{port}"],
                  "cwd": ROOT, "env": {}, "ready": "/readyz", "path": "/v1/score"},
        "mlflow": {"command": [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{settings.model_name}@champion",
                               "--env-manager", "local", "-h", "{host}", "-p", "{port}", "--workers", "1"],
                   "cwd": ROOT, "env": {"MLFLOW_TRACKING_URI": mlflow_uri}, "ready": "/ping",
                   "path": "/invocations"},
        # --max-requests 0: stock `feast serve` restarts its gunicorn worker every ~1000 requests (its default),
        # which at these rates would be measured instead of the feature read; access log off like the others.
        "feast": {"command": [str(BIN / "feast"), "serve", "-h", "{host}", "-p", "{port}", "--no-access-log",
                              "--max-requests", "0"] if not args.feast_stock_defaults else
                  [str(BIN / "feast"), "serve", "-h", "{host}", "-p", "{port}"],
                  "cwd": ROOT / "feature_repo", "env": {}, "ready": "/health", "path": "/get-online-features"},
    }


def environment(data_dir: Path) -> dict[str, str]:
    """The caller's environment without platform or MLflow settings of its own (a token or profile left in the
    shell would measure another deployment), pointed at the data directory."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PLATFORM_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "FEAST_"))}
    return {**env, "PLATFORM_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "DO_NOT_TRACK": "1",
            "MLFLOW_ENABLE_TELEMETRY": "false", "DAGSTER_DISABLE_TELEMETRY": "1"}


class TreeSampler:
    """Samples a process tree every `interval` s: summed CPU (monotone: an exited process keeps its last value)
    and RSS (the tree's sum and its largest process)."""

    def __init__(self, pid: int, interval: float = 0.1):
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.cpu: dict[tuple[int, float], float] = {}
        self.samples: list[tuple[float, float, float, float, int]] = []  # (wall, cpu s, rss MB, largest MB, n)
        self.live: list = []
        self._lock = threading.Lock()  # the sampler thread and the harness both sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def processes(self) -> list:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except self.psutil.Error:
            return []

    def sample(self) -> None:
        with self._lock:
            self._sample()

    def _sample(self) -> None:
        rss = largest = 0.0
        live = []
        for proc in self.processes():
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    memory = proc.memory_info().rss / 2**20
                    key = (proc.pid, proc.create_time())
            except self.psutil.Error:
                continue
            self.cpu[key] = times.user + times.system
            rss += memory
            largest = max(largest, memory)
            live.append(proc)
        self.live = live
        self.samples.append((time.time(), sum(self.cpu.values()), rss, largest, len(live)))

    def cpu_at(self, wall: float) -> float:
        """Summed CPU seconds at a wall-clock time, linearly between the samples around it."""
        samples = self.samples
        if not samples:
            return 0.0
        if wall <= samples[0][0]:
            return samples[0][1]
        for (t1, c1, *_), (t2, c2, *_) in itertools.pairwise(samples):
            if t1 <= wall <= t2:
                return c1 + (c2 - c1) * ((wall - t1) / (t2 - t1) if t2 > t1 else 1.0)
        return samples[-1][1]

    def window(self, start: float, end: float) -> dict:
        inside = [s for s in self.samples if start <= s[0] <= end] or self.samples[-1:]
        cpu = self.cpu_at(end) - self.cpu_at(start)
        return {"server_cpu_s": round(cpu, 3),
                "server_cpu_percent_of_core": round(100 * cpu / (end - start), 1) if end > start else None,
                "server_peak_rss_mb": round(max(s[2] for s in inside), 1),
                "server_peak_rss_largest_process_mb": round(max(s[3] for s in inside), 1),
                "server_rss_start_mb": round(inside[0][2], 1), "server_rss_end_mb": round(inside[-1][2], 1),
                "server_processes": max(s[4] for s in inside), "rss_samples": len(inside)}

    def rss_now(self) -> float:
        self.sample()
        return round(self.samples[-1][2], 1)

    def vmhwm(self) -> dict:
        """VmHWM (peak resident size since the process started) of each live process of the tree, in MB."""
        peaks = []
        for proc in self.live:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        if not peaks:
            return {"server_vmhwm_max_mb": None, "server_vmhwm_sum_mb": None}
        return {"server_vmhwm_max_mb": round(max(peaks), 1), "server_vmhwm_sum_mb": round(sum(peaks), 1)}

    def settle(self, idle_percent: float = 5.0, limit: float = 10.0) -> float:
        """Waits (bounded) until the tree is idle: a server still working off a backlog does not start the next
        run. Returns the seconds waited."""
        started = time.time()
        time.sleep(0.5)
        while time.time() - started < limit:
            before = (time.time(), self.cpu_at(time.time()))
            time.sleep(0.5)
            self.sample()
            now = time.time()
            if 100 * (self.cpu_at(now) - before[1]) / (now - before[0]) < idle_percent:
                break
        return round(time.time() - started, 2)


class Server:
    def __init__(self, name: str, spec: dict, env: dict, port: int, cpus: list[int] | None, work: Path):
        self.name, self.spec, self.port, self.cpus = name, spec, port, cpus
        self.command = [str(part).format(host=HOST, port=port, python=sys.executable) for part in spec["command"]]
        self.env = {**env, **spec["env"]}
        self.log_path = work / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.sampler: TreeSampler | None = None

    def start(self) -> None:
        command = self.command
        if self.cpus:
            command = [sys.executable, "-c", PIN_EXEC, ",".join(map(str, self.cpus)), *command]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, cwd=self.spec["cwd"], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.sampler = TreeSampler(self.process.pid).start()

    def wait_ready(self, timeout: float) -> float:
        started = time.perf_counter()
        deadline = started + timeout
        last = "no answer"
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise TargetError(f"{self.name} exited with {self.process.returncode} before it was ready")
            try:
                status, _ = http_request(self.port, "GET", self.spec["ready"], timeout=2)
                if status == 200:
                    return time.perf_counter() - started
                last = f"GET {self.spec['ready']} -> {status}"
            except (OSError, http.client.HTTPException) as error:
                last = f"{type(error).__name__}: {error}"
            time.sleep(0.1)
        raise TargetError(f"{self.name} not ready within {timeout:.0f} s ({last})")

    def cpus_of_tree(self) -> list[list[int]]:
        """The CPU sets of the tree's processes (one entry per distinct set): the pinning, checked."""
        import psutil

        found = set()
        for proc in self.sampler.processes() if self.sampler else []:
            try:
                found.add(tuple(sorted(proc.cpu_affinity())))
            except (psutil.Error, OSError, AttributeError):
                continue
        return [list(c) for c in sorted(found)]

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 10) -> list[int]:
        """SIGTERM to the group, SIGKILL to what is left after `grace`; the pids still there afterwards."""

        if self.sampler:
            self.sampler.stop()
        if self.process is None:
            return []
        pgid = self.process.pid

        def members() -> list[int]:
            return group_members(pgid)

        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self.process.poll() is None or members()):
            time.sleep(0.2)
        if members():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.5)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        return members()


def http_request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def probe(server: Server, target: str, samples: dict) -> dict:
    """One request of the target's kind: it must answer 200 before anything is measured."""
    body = bodies(target, samples, 1, 1.0, time.time(), "probe")[0]
    started = time.perf_counter()
    status, answer = http_request(server.port, "POST", server.spec["path"], body)
    result = {"status": status, "seconds": round(time.perf_counter() - started, 4),
              "request": body.decode()[:400], "response": answer.decode(errors="replace")[:600]}
    if status != 200:
        raise TargetError(f"{target}: POST {server.spec['path']} answered {status}: {result['response']}")
    try:
        parsed = json.loads(answer)
    except ValueError:
        parsed = None
    if target in ("ours", "ours_2w", "floor") and isinstance(parsed, dict):
        expected = OURS_KEYS if target.startswith("ours") else ("score",)
        result["missing_keys"] = [k for k in expected if k not in parsed]
    if target == "mlflow" and isinstance(parsed, dict):
        result["predictions"] = parsed.get("predictions")  # class labels or probabilities, as registered
    return result


# ------------------------------------------------------------------------------------------------ measuring


def load_spec(server: Server, target: str, samples: dict, rate: float, seconds: float, args, tag: str,
              pins: dict) -> loadgen.LoadSpec:
    count = loadgen.scheduled_count(rate, seconds)
    start = time.time() + 1.0  # ~ when the generator's t0 will be (its process starts first)
    requests = tuple(loadgen.build_request("POST", server.spec["path"], HOST, server.port, body)
                     for body in bodies(target, samples, count, rate, start, tag))
    return loadgen.LoadSpec(
        host=HOST, port=server.port, requests=requests, rate=rate, seconds=seconds, timeout=args.timeout,
        max_connections=args.max_connections, cpu=pins.get("generator_cpu") if pins["enabled"] else None,
        spin=args.spin == "on" or (args.spin == "auto" and pins["enabled"] and not target.endswith("_2w")),
        label=f"{target}@{rate:g}")


def measure(server: Server, target: str, samples: dict, rate: float, seconds: float, args, pins: dict,
            kind: str, window_seconds: float | None = None) -> dict:
    spec = load_spec(server, target, samples, rate, seconds, args, f"{kind}{rate:g}", pins)
    before = load_average()
    raw = loadgen.run_in_process(spec)
    if "error" in raw:
        return {"target": target, "kind": kind, "rate": rate, "seconds": seconds, "load_before": before,
                "error": raw["error"]}
    summary = loadgen.summarize(raw, window_seconds)
    server.sampler.sample()
    record = {"target": target, "kind": kind, "rate": rate, "seconds": seconds, "load_before": before,
              "load_after": load_average(), **summary,
              **server.sampler.window(raw["t0_wall"], raw["t0_wall"] + raw["elapsed_s"]),
              **server.sampler.vmhwm()}
    ok, why = loadgen.sustained(summary, args.p99_bound_ms)
    record["sustained"], record["not_sustained_because"] = ok, why
    record["settle_s"] = server.sampler.settle()
    return record


def run_target(target: str, spec: dict, env: dict, samples: dict, args, pins: dict, work: Path,
               records: list) -> dict:
    info: dict = {"target": target, "started": datetime.now(UTC).isoformat(timespec="seconds")}
    cpus = (pins.get("available_cpus") if spec.get("all_cpus") else pins.get("server_cpus")) if pins["enabled"] \
        else None
    server = Server(target, spec, env, free_port(), cpus, work)
    info.update({"command": " ".join(shlex.quote(c) for c in server.command), "cwd": str(spec["cwd"]),
                 "port": server.port, "load_before": load_average()})
    try:
        server.start()
        info["startup_s"] = round(server.wait_ready(args.startup_timeout), 3)
        info["rss_ready_mb"] = server.sampler.rss_now()
        info["tree_cpus"] = server.cpus_of_tree()
        print(f"{target}: ready in {info['startup_s']:.1f} s ({info['rss_ready_mb']:.0f} MB), port {server.port}",
              flush=True)
        info["probe"] = probe(server, target, samples)
        warm = min(args.rates) if args.rates else args.soak_rate
        if args.warmup_seconds > 0:
            spec_ = load_spec(server, target, samples, warm, args.warmup_seconds, args, "warmup", pins)
            summary = loadgen.summarize(loadgen.run_in_process(spec_))
            info["warmup"] = {k: summary.get(k) for k in ("offered_rps", "achieved_rps", "p50_ms", "p99_ms",
                                                            "errors", "errors_by_kind", "error")}
            server.sampler.settle()
        info["rss_after_warmup_mb"] = server.sampler.rss_now()
        for rate in args.rates:
            record = measure(server, target, samples, rate, args.seconds, args, pins, "rate")
            records.append(record)
            print_line(record)
        if args.max_rate:
            steps = []
            for rate in args.max_rate_steps:
                record = measure(server, target, samples, rate, args.max_rate_seconds, args, pins, "max_rate")
                records.append(record)
                steps.append(record)
                print_line(record)
                if not record.get("sustained"):
                    break
            passed = [r["rate"] for r in steps if r.get("sustained")]
            info["max_rate_sustained_rps"] = max(passed) if passed else None
        passing = [r["rate"] for r in records if r["target"] == target and r.get("sustained")]
        info["highest_sustained_rps"] = max(passing) if passing else None
        if args.soak_seconds > 0 and target == args.soak_target:
            info["soak"] = soak(server, target, samples, args, pins, records)
    except Exception as error:  # noqa: BLE001 - a target that fails is recorded and skipped, the others run
        info["error"] = f"{type(error).__name__}: {error}"
        info["log_tail"] = server.log_tail()
        print(f"{target}: SKIPPED - {info['error']}", flush=True)
    finally:
        info["processes_left_behind"] = server.stop()
        if info["processes_left_behind"]:
            print(f"{target}: WARNING processes left behind {info['processes_left_behind']}", flush=True)
    return info


def soak(server: Server, target: str, samples: dict, args, pins: dict, records: list) -> dict:
    rss_start = server.sampler.rss_now()
    start = time.time()
    record = measure(server, target, samples, args.soak_rate, args.soak_seconds, args, pins, "soak",
                     window_seconds=max(10.0, args.soak_seconds / 10))
    rss_end = server.sampler.rss_now()
    timeline = [(round(t - start, 1), round(rss, 1)) for t, _, rss, _, _ in server.sampler.samples if t >= start]
    step = max(1, math.ceil(len(timeline) / 60))
    result = {"rss_start_mb": rss_start, "rss_end_mb": rss_end,
              "rss_max_mb": record.get("server_peak_rss_mb"),
              "rss_growth_percent": round(100 * (rss_end - rss_start) / rss_start, 2) if rss_start else None,
              "rss_timeline": timeline[::step]}
    record.update({"soak_" + k: v for k, v in result.items() if k != "rss_timeline"})
    records.append(record)
    print_line(record)
    return result


# ------------------------------------------------------------------------------------------------ reporting

COLUMNS = ("target", "kind", "offered", "achieved", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "CPU s",
           "CPU %", "peak RSS MB", "gen lag p99 ms", "conns")


def _row(r: dict) -> list[str]:
    def f(v, digits=2):
        return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))

    if "error" in r:
        return [r["target"], r["kind"], f(r["rate"]), "error: " + r["error"][:60], *["-"] * 10]
    errors = r["errors"]
    if errors:
        kinds = "/".join(str(r["errors_by_kind"][k]) for k in loadgen.ERROR_KINDS)
        errors = f"{errors} ({kinds})"
    return [r["target"], r["kind"], f(float(r["offered_rps"]), 0), f(r["achieved_rps"], 1), f(r["p50_ms"]),
            f(r["p95_ms"]), f(r["p99_ms"]), f(r["max_ms"]), str(errors), f(r["server_cpu_s"]),
            f(r["server_cpu_percent_of_core"], 1), f(r["server_peak_rss_mb"], 0), f(r["gen_lag_p99_ms"], 3),
            str(r["max_connections_open"])]


def print_line(record: dict) -> None:
    print("  " + " | ".join(_row(record)), flush=True)


def markdown(results: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results["records"]]
    lines.append("")
    lines.append("errors: total (non-2xx/timeout/connect/connection); CPU: the server's process tree, user+sys, "
                 "% of one core; peak RSS: the tree's sum")
    for info in results["targets"]:
        if "error" in info:
            lines.append(f"- {info['target']}: skipped, {info['error']}")
        else:
            lines.append(f"- {info['target']}: ready in {info.get('startup_s')} s, RSS ready "
                         f"{info.get('rss_ready_mb')} MB, highest sustained {info.get('highest_sustained_rps')} "
                         f"req/s" + (f"; soak RSS {info['soak']['rss_start_mb']} -> {info['soak']['rss_end_mb']} MB "
                                     f"({info['soak']['rss_growth_percent']}%)" if "soak" in info else ""))
    return "\n".join(lines)


def write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str))
    tmp.replace(out)


def rate_list(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()] if text else []


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--rates", type=rate_list, default=[100.0, 500.0, 1000.0], help="req/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30, help="per rate")
    parser.add_argument("--max-rate", action="store_true", help="step the rate up until one is not sustained")
    parser.add_argument("--max-rate-steps", type=rate_list, default=list(map(float, MAX_RATE_STEPS)))
    parser.add_argument("--max-rate-seconds", type=float, default=10)
    parser.add_argument("--p99-bound-ms", type=float, default=50, help="sustained: p99 below this")
    parser.add_argument("--soak-seconds", type=float, default=0)
    parser.add_argument("--soak-rate", type=float, default=300)
    parser.add_argument("--soak-target", default="ours")
    parser.add_argument("--warmup-seconds", type=float, default=2)
    parser.add_argument("--timeout", type=float, default=2.0, help="a request with no answer after this is an error")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--startup-timeout", type=float, default=180)
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and generator to CPUs")
    parser.add_argument("--spin", choices=("auto", "on", "off"), default="auto",
                        help="the generator polls before due requests (auto: when pinned to a core of its own)")
    parser.add_argument("--server-cmd-ours", default="",
                        help="command of `ours` instead of python -m platform_assets.serving ({host} {port} {python})")
    parser.add_argument("--feast-stock-defaults", action="store_true",
                        help="plain `feast serve` (its worker restarts every ~1000 requests, access log on)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $PLATFORM_DATA_DIR or ./data")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"--targets: unknown {unknown}; known: {', '.join(TARGETS)}")
    data_dir = (args.data_dir or Path(os.environ.get("PLATFORM_DATA_DIR") or ROOT / "data")).resolve()

    from benchmarks.run import machine
    from platform_assets.settings import load_settings

    settings = load_settings({"PLATFORM_DATA_DIR": str(data_dir)})
    pins = pinning(not args.no_pin)
    if pins["enabled"]:
        os.sched_setaffinity(0, {pins["generator_cpu"]})  # this harness (its sampler) beside the generator
    samples = {"transactions": sample_transactions(data_dir), "feature_service": "fraud_detector_v2"}
    if "mlflow" in targets:
        samples["features"] = sample_feature_rows(data_dir)
    try:
        from platform_assets.lib.training_sets import latest_manifest

        samples["feature_service"] = latest_manifest(data_dir / "training_sets").feature_service
    except (OSError, ValueError, TypeError):
        pass
    results: dict = {
        "machine": {**machine(), "cpu_count": os.cpu_count(), "loadavg_before": load_average()},
        "versions": versions(), **git_state(), "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir), "pinning": pins,
        "config": {"targets": targets, "rates": args.rates, "seconds": args.seconds, "max_rate": args.max_rate,
                   "max_rate_steps": args.max_rate_steps, "max_rate_seconds": args.max_rate_seconds,
                   "p99_bound_ms": args.p99_bound_ms, "sustained_min_ratio": 0.99,
                   "soak_seconds": args.soak_seconds, "soak_rate": args.soak_rate, "soak_target": args.soak_target,
                   "warmup_seconds": args.warmup_seconds, "timeout_s": args.timeout,
                   "max_connections": args.max_connections, "spin": args.spin, "sample_rows": SAMPLE_ROWS,
                   "seed": SEED, "host": HOST, "feature_service": samples["feature_service"]},
        "targets": [], "records": [],
    }
    work = Path(tempfile.mkdtemp(prefix="platform-bench-serve-"))
    env = environment(data_dir)
    specs = server_specs(args, data_dir, settings)
    print(f"serving benchmark: {', '.join(targets)} at {args.rates} req/s x {args.seconds:g} s, pinning "
          f"{pins}, load {results['machine']['loadavg_before']}, work {work}", flush=True)
    print("  " + " | ".join(COLUMNS), flush=True)
    try:
        for target in targets:
            results["targets"].append(run_target(target, specs[target], env, samples, args, pins, work,
                                                 results["records"]))
            write(results, args.out)
    finally:
        results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["loadavg_after"] = load_average()
        write(results, args.out)
        if not args.keep:
            for path in work.iterdir():
                path.unlink()
            work.rmdir()
    print()
    print(markdown(results))
    print(f"\nwritten {args.out}")
    return results


if __name__ == "__main__":
    main()
