"""The benchmark harness itself runs (tiny size, our stores and the raw engines): `make bench` cannot rot unseen.
The figures are not checked here: performance is judged by the benchmarks, never by timed tests."""

import json
from pathlib import Path

import pytest

from platform_assets.settings import PROJECT_ROOT


@pytest.mark.slow
def test_bench_harness_runs_the_feast_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WORK", str(tmp_path / "work"))
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from benchmarks.run import main

    # ~4 s of imports per process: materialize and read ours, the point-in-time join ours and raw
    main(["--size", "2k", "--stages", "materialize,online_read,training_set", "--variants", "ours",
          "--results", str(tmp_path / "results")])
    main(["--size", "2k", "--stages", "training_set", "--variants", "raw", "--results", str(tmp_path / "results")])
    records = json.loads(Path(tmp_path / "results" / "2k.json").read_text())
    assert {(r["stage"], r["variant"]) for r in records} == {
        ("materialize", "ours"), ("online_read", "ours"), ("training_set", "ours"), ("training_set", "raw")}
    for record in records:
        assert "error" not in record, record
        assert record["peak_rss_mb"] > 0 and record["seconds"] > 0
    by_key = {(r["stage"], r["variant"]): r for r in records}
    # both sides of the point-in-time comparison kept every entity row and found the same missing features
    assert by_key[("training_set", "ours")]["null_rows"] == by_key[("training_set", "raw")]["null_rows"]


@pytest.mark.slow
def test_startup_harness_runs(tmp_path, monkeypatch):
    """`make bench-startup`'s load part, one repetition, no warm-up, no servers: the harness still runs and writes
    both medians (part b, the UI run, needs `dagster dev` for minutes and is left to the benchmark)."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from benchmarks.startup import main

    out = tmp_path / "startup.json"
    main(["--parts", "load", "--runs", "1", "--warmup", "0", "--no-profile", "--out", str(out)])
    load = json.loads(out.read_text())["definitions_load"]
    assert load["bare"]["median"] > 0 and load["ours"]["median"] > 0
    assert load["ratio_of_medians"] > 0 and load["load_before"]["loadavg"]


@pytest.mark.slow
def test_training_dask_harness_runs(tmp_path, monkeypatch):
    """`make bench-training` at a tiny size: both variants run in their own processes (the Dask one on its own
    2-worker LocalCluster) and write their records and the summary."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from benchmarks.training_dask import main

    out = tmp_path / "dask.jsonl"
    main(["--sizes", "20k", "--work", str(tmp_path / "work"), "--out", str(out)])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    runs = {r["variant"]: r for r in records if "variant" in r}
    assert set(runs) == {"in_process", "dask"}
    for record in runs.values():
        assert "error" not in record, record
        assert record["seconds"] > 0 and record["rows"] == 20_000 and record["features"] == 38
        assert 0 < record["pr_auc"] <= 1
    assert runs["dask"]["trainer"]["dask_workers"] == 2
    assert set(runs["dask"]["peak_rss_mb"]) == {"driver", "worker_0", "worker_1"}
    assert next(r for r in records if r.get("summary"))["wall_ratio_dask_over_in_process"] > 0
