"""`make demo` talks like a tool, not a debug log: one line per stage with its time and figures on the console,
Dagster's full event log (and every library's output) in a file under data/logs/."""

from __future__ import annotations

import re
from pathlib import Path

STAGES = ("simulate", "ingestion", "warehouse", "features", "training", "serving", "scoring", "monitoring")


def test_one_line_per_stage_with_its_time_and_figures(demo_platform):
    lines = demo_platform.demo_output.splitlines()
    for stage in STAGES:
        found = [line for line in lines if re.match(rf"\s+{stage}\s+\d+\.\ds\s+\S", line)]
        assert len(found) == 1, (stage, demo_platform.demo_output)
    ingestion = next(line for line in lines if line.split()[0] == "ingestion")
    assert re.search(r"[\d,]+ transactions, [\d,]+ chargebacks, [\d,]+ rows quarantined( in \d+ runs)?; \d+/\d+ checks passed",
                     ingestion)
    monitoring = next(line for line in lines if line.split()[0] == "monitoring")
    assert "3 days monitored" in monitoring
    assert len(lines) < 20, demo_platform.demo_output


def test_nothing_but_the_stage_lines_reaches_the_console(demo_platform):
    out = demo_platform.demo_output
    for noise in ("DEBUG", "Warning", "STEP_START", "Materialized value", "dagster - "):
        assert noise not in out, (noise, out)


def test_the_full_event_log_is_in_the_file_it_names(demo_platform):
    named = re.search(r"full log\s+(\S+\.log)", demo_platform.demo_output)
    assert named, demo_platform.demo_output
    log = named.group(1)
    assert log.startswith(str(demo_platform.data_dir / "logs"))
    text = Path(log).read_text()
    for event in ("STEP_START", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION", "RUN_SUCCESS"):
        assert event in text, event
    # dbt's own lines reach the log through dagster-dbt's events
    assert "dbt" in text
