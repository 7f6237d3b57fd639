"""The Evidently workspace: every monitoring report of every day, served by `evidently ui` (`make evidently`).

Dagit links each report asset to its day's snapshot in the Evidently UI (an http URL: a browser will not follow a
file:// link from an http page, and a file path means nothing on another machine or outside a container), and the
UI's project dashboard plots the same figures across days. No Dagster here.

Layout, Evidently 0.7's local workspace (`evidently.ui.workspace.Workspace` reads it): one project,
`<dir>/<project id>/metadata.json`, `dashboard.json`, `snapshots/<snapshot id>.json`. The ids are derived from
names (uuid5), so

- re-materializing a day replaces that day's snapshot instead of adding another (idempotent), and its link stays;
- two runs creating the project at once write the same project, not two.

We write the files the way `Workspace` does (`ProjectModel`/`SnapshotModel`/`DashboardModel` `.dict()` as JSON)
rather than through `Workspace(path)`, because opening a `Workspace` parses every snapshot already stored
(measured here: 40 snapshots of 10 columns, 5.9 s), which would make each day's report slower than the last.
Each file is written to a temporary file outside the workspace and renamed into place: the UI's file watcher sees a
complete new file (a rename from outside its tree is a "created" event), and a run killed mid-write leaves no
truncated JSON, which would stop `evidently ui` from starting.

On the shared store (production with PLATFORM_SHARED_STORE_URL) the reports write the same files under
`<shared store>/evidently/` (whole objects), from whichever machine ran them. Evidently 0.7 reads its workspace
through fsspec, but it learns of new snapshots from a `watchdog` observer, which sees only a local folder: a UI over
s3:// would show what existed when it started and nothing after. So the workspace the UI serves stays local to the
UI host, and `make evidently` mirrors the shared copy into it (`sync`) before the UI starts and every
PLATFORM_EVIDENTLY_SYNC_SECONDS (30 s) while it runs: new and changed files are written as above (the watcher sees
them), files gone from the shared store (withdrawn, pruned) are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

from platform_assets.lib.files import write_atomic

PROJECT_NAME = "fraud_platform"
PROJECT_DESCRIPTION = "Monitoring of the fraud_detector champion: one snapshot per report per day (Dagster assets)."
# Fixed namespace of every id we derive: the same names give the same ids in every data dir and process.
_NAMESPACE = uuid.UUID("5b0c6d0e-9d7e-4c4e-9a43-2f6a3f1d7e10")
PROJECT_ID = uuid.uuid5(_NAMESPACE, f"project/{PROJECT_NAME}")

# The reports kept in the workspace (the snapshot's tag, so dashboard panels can pick one report's figures).
FEATURE_DRIFT = "feature_drift"
PREDICTION_DRIFT = "prediction_drift"
SERVED_TRAFFIC = "served_traffic"
DATA_QUALITY = "data_quality"
# How far back from a published day retention looks for snapshots to remove (two years of days).
RETENTION_SWEEP_DAYS = 731


def snapshot_id(report: str, day: date) -> uuid.UUID:
    """The id of `report`'s snapshot of `day`: the same on every re-materialization of that day."""
    return uuid.uuid5(_NAMESPACE, f"snapshot/{report}/{day.isoformat()}")


def report_url(ui_url: str, report: str, day: date) -> str:
    """The Evidently UI page of that snapshot (the UI's route `/projects/:projectId/reports/:snapshotId`)."""
    return f"{ui_url.rstrip('/')}/projects/{PROJECT_ID}/reports/{snapshot_id(report, day)}"


def dashboard_url(ui_url: str) -> str:
    return f"{ui_url.rstrip('/')}/projects/{PROJECT_ID}"


def _write_json(path: Path, payload: dict, staging: Path) -> None:
    """Write `payload` as `path` by renaming a complete temporary file from `staging` (outside the workspace)."""
    from evidently.legacy.utils import NumpyEncoder

    write_atomic(path, json.dumps(payload, cls=NumpyEncoder), staging=staging)


def _staging(workspace: Path) -> Path:
    return workspace.parent / f".{workspace.name}-incoming"


def _dashboard():
    """Panels over days: the drift share and drifted-column count of the feature drift report, the score drift of
    the prediction drift and served traffic reports. Fixed ids, so writing the dashboard twice writes the same file."""
    from evidently.sdk.models import DashboardModel, DashboardTabModel, PanelMetric
    from evidently.sdk.panels import line_plot_panel

    from platform_assets.lib.predictions import SCORE

    def panel(key: str, title: str, values: list, description: str):
        made = line_plot_panel(title=title, values=values, description=description, size="half")
        return made.copy(update={"id": uuid.uuid5(_NAMESPACE, f"panel/{key}")})

    panels = [
        panel("drift_share", "Share of drifted model inputs", [
            PanelMetric(legend="drift share", tags=[FEATURE_DRIFT], metric="DriftedColumnsCount",
                        metric_labels={"value_type": "share"}),
        ], "feature_drift_report: drifted columns / columns tested; drift at the policy's share threshold"),
        panel("drifted_count", "Drifted model inputs", [
            PanelMetric(legend="drifted columns", tags=[FEATURE_DRIFT], metric="DriftedColumnsCount",
                        metric_labels={"value_type": "count"}),
        ], "feature_drift_report: columns beyond their calibrated threshold"),
        panel("score_drift", "Score drift", [
            PanelMetric(legend="batch scores", tags=[PREDICTION_DRIFT], metric="ValueDrift",
                        metric_labels={"column": SCORE}),
            PanelMetric(legend="served scores", tags=[SERVED_TRAFFIC], metric="ValueDrift",
                        metric_labels={"column": SCORE}),
        ], "prediction_drift_report and served_traffic_report: distance of the champion's scores from its holdout"),
    ]
    tab = DashboardTabModel(id=uuid.uuid5(_NAMESPACE, "tab/drift"), title="Drift", panels=[p.id for p in panels])
    return DashboardModel(tabs=[tab], panels=panels)


def ensure_project(workspace: Path) -> uuid.UUID:
    """The platform's project in `workspace`, created with its dashboard if missing. An existing dashboard is
    left alone (a person may have edited it in the UI)."""
    project_dir = workspace / str(PROJECT_ID)
    (project_dir / "snapshots").mkdir(parents=True, exist_ok=True)
    if not (project_dir / "dashboard.json").exists():
        _write_json(project_dir / "dashboard.json", _dashboard().dict(), _staging(workspace))
    if not (project_dir / "metadata.json").exists():
        from evidently.sdk.models import ProjectModel

        project = ProjectModel(id=PROJECT_ID, name=PROJECT_NAME, description=PROJECT_DESCRIPTION)
        _write_json(project_dir / "metadata.json", project.dict(), _staging(workspace))
    return PROJECT_ID


def publish(workspace: Path, ui_url: str, report: str, day: date, snapshot, metadata: dict | None = None,
            keep_days: int = 0) -> str:
    """Store `snapshot` (an evidently Snapshot) as `report`'s snapshot of `day`, replacing an earlier one of the
    same day, and return its URL in the Evidently UI. The snapshot is stamped with the day (the dashboard's time
    axis), tagged with `report`, and carries `metadata` (e.g. our verdict), which the UI lists with it. With
    `keep_days`, `report`'s snapshots of days `keep_days` or more before `day` are removed (their HTML files stay
    under reports/): the UI loads every snapshot into memory when it starts."""
    ensure_project(workspace)
    model = snapshot.to_snapshot_model()
    model.name = f"{report} {day.isoformat()}"
    model.timestamp = datetime(day.year, day.month, day.day)
    model.tags = [report]
    model.metadata = {**model.metadata, "report": report, "day": day.isoformat(),
                      **{k: str(v) for k, v in (metadata or {}).items()}}
    path = workspace / str(PROJECT_ID) / "snapshots" / f"{snapshot_id(report, day)}.json"
    _write_json(path, model.dict(), _staging(workspace))
    if keep_days:
        # Ids follow from (report, day), so the old days' files are found without reading any snapshot.
        for back in range(keep_days, keep_days + RETENTION_SWEEP_DAYS):
            (path.parent / f"{snapshot_id(report, day - timedelta(days=back))}.json").unlink(missing_ok=True)
    return report_url(ui_url, report, day)


def withdraw(workspace: Path, report: str, day: date) -> None:
    """Remove `report`'s snapshot of `day`: a re-run that has no verdict for the day must not leave the old one."""
    (workspace / str(PROJECT_ID) / "snapshots" / f"{snapshot_id(report, day)}.json").unlink(missing_ok=True)


def sync(shared, local: Path) -> dict[str, int]:
    """Mirror the shared store's workspace `shared` (a UPath) into the local folder `local` the UI serves. A file is
    copied when it is missing or its size differs (snapshots are replaced whole, never edited in place; a replaced
    snapshot of the same size is rare and caught at the next change of size or by a fresh mirror), and a local JSON
    file the shared copy no longer has is removed. Returns the counts."""
    from upath import UPath

    shared, local = UPath(shared), Path(local)
    if hasattr(shared, "fs"):
        shared.fs.invalidate_cache()  # a long-lived process must see the uploads since its last listing
    remote = {}
    base = str(shared).rstrip("/")
    for path in shared.rglob("*.json"):
        remote[str(path)[len(base) + 1:]] = path
    copied = removed = 0
    for relative, path in remote.items():
        target = local / relative
        size = path.stat().st_size
        if target.exists() and target.stat().st_size == size:
            continue
        write_atomic(target, path.read_bytes(), staging=_staging(local))
        copied += 1
    for target in local.rglob("*.json"):
        if target.relative_to(local).as_posix() not in remote:
            target.unlink(missing_ok=True)
            removed += 1
    return {"files": len(remote), "copied": copied, "removed": removed}


def ui_command(workspace: Path, host: str, port: int) -> list[str]:
    """`evidently ui` over `workspace` (the CLI of the installed evidently, run by this interpreter)."""
    return [sys.executable, "-m", "evidently.cli", "ui", "--workspace", str(workspace), "--host", host,
            "--port", str(port)]


def main(argv: list[str] | None = None) -> None:
    """`make evidently`: the Evidently UI over the platform's workspace, where the settings say (host, port)."""
    from platform_assets.settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m platform_assets.monitoring.workspace", description=main.__doc__)
    parser.add_argument("--host", default=settings.evidently_host)
    parser.add_argument("--port", type=int, default=settings.evidently_port)
    parser.add_argument("--list", action="store_true", help="print the stored snapshots (report, day, url) and exit")
    args = parser.parse_args(argv)
    workspace = settings.evidently_workspace_dir
    ensure_project(workspace)
    if args.list:
        rows = []
        for path in (workspace / str(PROJECT_ID) / "snapshots").glob("*.json"):
            meta = json.loads(path.read_text()).get("metadata", {})
            rows.append((meta.get("day", "?"), meta.get("report", "?"), meta.get("verdict", "-"),
                         f"{settings.evidently_url}/projects/{PROJECT_ID}/reports/{path.stem}"))
        for row in sorted(rows):
            print(*row)
        return
    print(f"Evidently UI on http://{args.host}:{args.port} (project {PROJECT_NAME}: "
          f"{dashboard_url(settings.evidently_url)}), workspace {workspace}", flush=True)
    command = ui_command(workspace, args.host, args.port)
    env = {**os.environ, "DO_NOT_TRACK": "1"}  # Evidently's UI reports usage unless told not to
    if not settings.shared_store_url:
        os.execve(command[0], command, env)
    _serve_mirrored(settings, workspace, command, env)


def _serve_mirrored(settings, workspace: Path, command: list[str], env: dict[str, str]) -> None:
    """The UI over a local mirror of the shared store's workspace, refreshed while it runs (see the module)."""
    import subprocess
    import time

    from platform_assets.lib import object_store

    shared = object_store.join(settings.shared_root, "evidently")
    every = float(os.environ.get("PLATFORM_EVIDENTLY_SYNC_SECONDS", "30"))
    print(f"mirroring {shared} into {workspace}: {sync(shared, workspace)}", flush=True)
    ui = subprocess.Popen(command, env=env)
    try:
        while ui.poll() is None:
            time.sleep(every)
            try:
                sync(shared, workspace)
            except Exception as exc:  # noqa: BLE001 - the store is down: the UI keeps what it has
                print(f"mirroring {shared} failed: {exc}", file=sys.stderr, flush=True)
    finally:
        if ui.poll() is None:
            ui.terminate()
            ui.wait(30)


if __name__ == "__main__":
    main()
