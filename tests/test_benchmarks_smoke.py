"""The benchmark harness itself runs (tiny size, our stores and the raw engines): `make bench` cannot rot unseen.
The figures are not checked here: performance is judged by the benchmarks, never by timed tests."""

import json
from pathlib import Path

from platform_assets.settings import PROJECT_ROOT


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
