# Two commands on a fresh machine (Python >= 3.11 and make are all it needs):
#   make demo   install everything, simulate sample data, materialize the whole asset graph
#   make test   install everything, run the test suite (what CI runs)
# While editing: make test-fast (unit and integration lanes, slow tests left out; a few minutes).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
export PLATFORM_DATA_DIR ?= $(ROOT)/data
export DAGSTER_HOME ?= $(PLATFORM_DATA_DIR)/dagster
export DO_NOT_TRACK := 1
export MLFLOW_ENABLE_TELEMETRY := false
export DAGSTER_DISABLE_TELEMETRY := 1

HOST ?= 127.0.0.1
PORT ?= 3000
MLFLOW_PORT ?= 5000
UV_VERSION := 0.13.9
TOOLS := $(ROOT)/.tools
UV := $(TOOLS)/bin/uv
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes: the worlds of the suite are independent and mostly single-threaded Python that also waits on
# subprocesses (dbt, daemons, servers): with two workers two cores were 75% busy, with three the suite ran in
# 12 min 12 s instead of 14 min 6 s on the same 2-core machine. Tests sharing a world stay in one worker
# (tests/conftest.py); groups are handed out in collection order, so the heaviest worlds (tests/e2e) start first.
PYTEST_WORKERS ?= 3

.PHONY: help install prepare simulate demo test test-fast dev serve chargeback-api mlflow evidently feast-apply feast-ui relocate dbt-build validate lint doctor free-slots backup restore clean clean-data bench bench-startup bench-serve bench-sources velocity-consumer bench-velocity bench-training

help:
	@echo "make demo       install, simulate sample data and materialize the whole graph"
	@echo "make test       install and run the test suite (CI runs this)"
	@echo "make test-fast  unit and integration lanes without the slow tests: the edit loop"
	@echo "make dev        Dagster UI + daemon on http://$(HOST):$(PORT) (PORT=...); refuses a busy port or a second"
	@echo "                daemon on DAGSTER_HOME; Ctrl-C stops everything it started within 10 s"
	@echo "make serve      real-time scoring API on http://$(HOST):8000 (make serve PORT=...), docs at /docs"
	@echo "make chargeback-api  the simulated acquirer's chargeback API on http://127.0.0.1:8002 (FAULTS='429@2,500=0.05')"
	@echo "make mlflow     MLflow UI on http://$(HOST):$(MLFLOW_PORT)"
	@echo "make evidently  Evidently UI on http://127.0.0.1:8001: every day's drift reports, dashboards over days"
	@echo "make simulate   only write sample data into the landing zone (ARGS='--days 30 --scenario none')"
	@echo "make doctor     what is missing or in the way (manifest, sample data, DuckDB lock or corruption, stuck pool"
	@echo "                slots), and the fix; make doctor FREE=1 (or make free-slots) frees stuck slots"
	@echo "make backup     verified copy of the warehouse under data/backups (KEEP=n newest kept)"
	@echo "make restore    newest backup back in place, current file kept aside (BACKUP=<file name> for another)"
	@echo "make feast-ui   Feast's web UI over the registry on http://$(HOST):$(FEAST_UI_PORT)"
	@echo "make relocate   after moving the data directory: OLD=<where it was> rewrites what MLflow, Feast and DuckDB recorded"
	@echo "make velocity-consumer  the online velocity consumer (streams -> velocity state in the online store)"
	@echo "make bench-velocity     event -> visible online lag at 10/100/500 events/s vs the raw stream"
	@echo "make lint       ruff, then the pre-commit hooks (ruff, sqlfluff on dbt models, hadolint); what CI runs first"
	@echo "make feast-apply / dbt-build / validate / clean-data"
	@echo "make bench      benchmarks vs stock Feast and the raw engines (SIZE=100k|1m|10m) -> docs/benchmarks.md"
	@echo "make bench-velocity-offline  velocity features offline (state log, PIT join + UDF) vs DuckDB windows (SIZES=1m,10m)"
	@echo "make bench-training  fraud_model in-process vs xgboost.dask on a 2-worker LocalCluster (SIZES=1m,10m)"
	@echo "make bench-startup  time to first step: Definitions load vs bare dagster, one asset from the UI"
	@echo "make bench-serve    scoring service under open-loop load vs a raw floor, mlflow models serve, feast serve"
	@echo "make bench-sources  ingestion per source (system of record, chargeback API, stream) vs a plain DuckDB insert;"
	@echo "                    stream lag p50/p99 at the demo's rate and 10x (embedded log and Redis)"

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The lock file pins every package; --frozen refuses to run if pyproject.toml and uv.lock disagree.
# --compile-bytecode writes every module's .pyc at install time: where PYTHONDONTWRITEBYTECODE is set (as on our
# CI machines), Python otherwise recompiles the sources of dagster, dbt, Feast, MLflow and Evidently in every
# process it starts (each run worker, step, dbt call and test), seconds each time.
$(BIN)/dagster: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: $(BIN)/dagster

# dbt's manifest: the Definitions need it, and it is never built at import time.
# Parsed with the vars PlatformDbtResource passes (resources/dbt.py), so a run on this data dir can reuse dbt's
# partial parse instead of re-parsing the whole project (dbt re-parses when the vars differ).
PLATFORM_DUCKDB_MEMORY_LIMIT ?= 4GB
DBT_PLATFORM_VARS := {"platform_data_dir": "$(PLATFORM_DATA_DIR)", "platform_duckdb_memory_limit": "$(PLATFORM_DUCKDB_MEMORY_LIMIT)"}
dbt_project/target/manifest.json: $(BIN)/dagster $(shell find dbt_project/models dbt_project/tests -type f) dbt_project/dbt_project.yml
	cd dbt_project && $(BIN)/dbt parse --profiles-dir . --quiet --vars '$(DBT_PLATFORM_VARS)'

prepare: dbt_project/target/manifest.json

simulate: install
	$(BIN)/python -m platform_assets.simulator $(ARGS)

$(DAGSTER_HOME)/dagster.yaml: deploy/local/dagster.yaml
	install -D -m 644 $< $@

demo: prepare $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m platform_assets.tools.demo $(ARGS)

test: lint prepare $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: lint prepare
	$(BIN)/python -m pytest tests/unit tests/integration -m "not slow" -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# `dagster dev` through our launcher (platform_assets/tools/dev.py): it refuses a busy port or a second daemon on
# DAGSTER_HOME (exit 3 or 4, one line), and Ctrl-C or SIGTERM stops the webserver, the daemon, the code servers and
# their runs within 10 s. `exec`: the launcher is make's own child, so the SIGTERM make forwards reaches it. GNU make
# passes SIGTERM on to its child but not a SIGINT sent to make's pid alone (it waits for the child): from a script,
# stop it with SIGTERM to make, or SIGINT to its whole process group as Ctrl-C does.
dev: prepare $(DAGSTER_HOME)/dagster.yaml
	exec $(BIN)/python -m platform_assets.tools.dev --host $(HOST) --port $(PORT) --workspace workspace.yaml

# The scoring service on the data `make demo` built: 127.0.0.1:8000, or `make serve PORT=9000` (PORT on the
# command line; the 3000 default of `make dev` does not apply here).
# WORKERS=2 runs two processes (each loads the model and writes its own log file): the throughput configuration.
SERVE_PORT := $(if $(filter command line,$(origin PORT)),$(PORT),8000)
WORKERS ?= 1
serve: install
	$(BIN)/python -m platform_assets.serving --host $(HOST) --port $(SERVE_PORT) --workers $(WORKERS)

# The simulated chargeback API (docs/sources.md) over data/sources/chargeback_api, bound to 127.0.0.1:8002
# (PLATFORM_CHARGEBACK_API_HOST/PORT); FAULTS injects failures (a fault plan, e.g. FAULTS='429@2,500=0.05,seed=7').
chargeback-api: install
	$(BIN)/python -m platform_assets.simulator.chargeback_api $(if $(FAULTS),--faults '$(FAULTS)')

mlflow: install
	mkdir -p $(PLATFORM_DATA_DIR)/mlflow
	$(BIN)/mlflow ui --host $(HOST) --port $(MLFLOW_PORT) --workers 1 \
		--backend-store-uri sqlite:///$(PLATFORM_DATA_DIR)/mlflow/mlflow.db \
		--default-artifact-root file://$(PLATFORM_DATA_DIR)/mlflow/artifacts

# The Evidently UI over data/evidently, the workspace the monitoring assets write (platform_assets/monitoring/
# workspace.py); host and port from PLATFORM_EVIDENTLY_HOST/PORT (127.0.0.1:8001), the links in Dagit from
# PLATFORM_EVIDENTLY_URL.
evidently: install
	$(BIN)/python -m platform_assets.monitoring.workspace $(ARGS)

feast-apply: install
	cd feature_repo && $(BIN)/feast apply

# Feast's web UI over the registry of PLATFORM_DATA_DIR, bound to HOST (Feast's own default is 0.0.0.0).
FEAST_UI_PORT ?= 8888
feast-ui: install
	cd feature_repo && $(BIN)/feast ui --host $(HOST) --port $(FEAST_UI_PORT)

# After moving the data directory (docs/how-to.md#move-the-data-directory): make relocate OLD=/where/it/was
relocate: install
	$(BIN)/python -m platform_assets.tools.relocate "$(OLD)"

dbt-build: prepare
	cd dbt_project && $(BIN)/dbt build --profiles-dir .

validate: prepare $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate -w workspace.yaml

doctor: install
	$(BIN)/python -m platform_assets.tools.doctor $(if $(FREE),--free-stuck-slots)

free-slots: install
	$(BIN)/python -m platform_assets.tools.doctor --free-stuck-slots

# The warehouse's backups (docs/how-to.md#corrupt-warehouse): `make backup` waits for a running writer, never copies
# under one; `make restore` keeps the file it replaces as <name>.corrupt-<time>.
backup: install
	$(BIN)/python -m platform_assets.tools.warehouse_backup backup $(if $(KEEP),--keep $(KEEP))

restore: install
	$(BIN)/python -m platform_assets.tools.warehouse_backup restore $(BACKUP)

# ruff on the Python trees (untracked files included), then the pre-commit hooks on every tracked file
# (.pre-commit-config.yaml: ruff, sqlfluff on the dbt models, hadolint on the Dockerfile; all from the venv, offline).
# Outside a git checkout (an unpacked archive) pre-commit cannot list files: the two other linters run directly.
lint: install
	$(BIN)/ruff check platform_assets tests feature_repo benchmarks notebooks
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		echo "$(BIN)/pre-commit run --all-files"; $(BIN)/pre-commit run --all-files; \
	else \
		echo "not a git checkout: sqlfluff and hadolint without pre-commit"; \
		$(BIN)/sqlfluff lint dbt_project/models && $(BIN)/hadolint Dockerfile; \
	fi

# Not part of `make test`: minutes at 1m, and the figures need a quiet machine (docs/benchmarks.md).
SIZE ?= 100k
bench: prepare
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.run --size $(SIZE) $(BENCH_ARGS)
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.report

# Time to first step (docs/benchmarks.md, last section): ~3 minutes; starts its own `dagster dev` on a free port
# and temporary PLATFORM_DATA_DIR / DAGSTER_HOME, so it neither needs nor touches data/ or a running `make dev`.
bench-startup: prepare
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.startup $(BENCH_ARGS)

clean-data:
	rm -rf $(PLATFORM_DATA_DIR)

clean: clean-data
	rm -rf $(VENV) $(TOOLS) dbt_project/target dbt_project/logs

# The scoring service under open-loop load (benchmarks/serving.py), side by side with a raw floor, `mlflow models
# serve` and `feast serve`, on the data `make demo` built; ~20 minutes with the soak. Needs a quiet machine.
bench-serve: install
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.serving $(BENCH_ARGS)
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.report

# Ingestion per source system (docs/benchmarks.md, "Sources"): a few minutes; Redis at 127.0.0.1:6379 for the
# stream's production backend. One JSON line per measurement in benchmarks/results/sources/.
SOURCES_RESULTS := benchmarks/results/sources
# The online velocity consumer (features/velocity_online.py): the transaction stream and the scoring service's
# traffic into the velocity state in the online store; `make dev` starts one too (PLATFORM_VELOCITY_CONSUMER=off).
velocity-consumer: install
	$(BIN)/python -m platform_assets.features.velocity_online $(ARGS)

# Event -> visible online (the velocity state) at fixed rates, vs the raw stream underneath (docs/benchmarks.md).
VELOCITY_RESULTS := benchmarks/results/velocity
bench-velocity: prepare
	mkdir -p $(VELOCITY_RESULTS)
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.velocity_freshness --out $(VELOCITY_RESULTS)/freshness.jsonl $(ARGS)

bench-sources: prepare
	mkdir -p $(SOURCES_RESULTS)
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.sources_system_of_record --out $(SOURCES_RESULTS)/system_of_record.jsonl
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.sources_chargeback_api --out $(SOURCES_RESULTS)/chargeback_api.jsonl
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.sources_transaction_stream --out $(SOURCES_RESULTS)/transaction_stream.jsonl
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.sources_transaction_stream --backend redis --out $(SOURCES_RESULTS)/transaction_stream.jsonl

# Offline cost of the velocity features (docs/benchmarks.md, "Velocity features: offline cost"): the state log (dbt
# model SQL on DuckDB) and the point-in-time join + UDF through Feast vs DuckDB window aggregates, at simulated 1M
# and 10M transactions (SIZES=1m,10m; WORK=dir keeps the generated data). ~5 min at 1m, ~40 min at 10m (2 cores).
.PHONY: bench-velocity-offline
SIZES ?= 1m,10m
bench-velocity-offline: prepare
	mkdir -p benchmarks/results/velocity
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.velocity_offline --sizes $(SIZES) $(if $(WORK),--work $(WORK)) \
		--out benchmarks/results/velocity/offline.jsonl $(BENCH_ARGS)

# Distributed training (docs/benchmarks.md, "Distributed training"): fraud_model's fit in-process vs xgboost.dask on
# a LocalCluster of 2 worker processes, on synthetic snapshots with the model's real columns (SIZES=1m,10m;
# WORK=dir keeps them). Each variant in its own process; one JSON line per run in benchmarks/results/training/.
bench-training: prepare
	mkdir -p benchmarks/results/training
	PYTHONPATH=$(ROOT) $(BIN)/python -m benchmarks.training_dask --sizes $(SIZES) $(if $(WORK),--work $(WORK)) \
		--out benchmarks/results/training/dask.jsonl $(BENCH_ARGS)
