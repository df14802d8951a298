# Two commands: `make up` runs the whole runbook locally, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test bench bench-large bench-whatif bench-sftp bench-load bench-clicks bench-resume clean clean-all

$(BIN)/hris-runbook: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hris-runbook needs Python >= 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

up: $(BIN)/hris-runbook
	$(BIN)/hris-runbook up

test: $(BIN)/hris-runbook
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	NO_PROXY=127.0.0.1,localhost $(BIN)/pytest

# Keeps the state: .prefect/ (database with Blocks, Variables and waiting runs; once-only records; files)
# and .sandbox/. `make clean-all` deletes them too, after a warning (YES=1 skips the 10-second wait).
clean:
	rm -rf $(VENV) *.egg-info
	@echo "kept .prefect/ and .sandbox/ (blocks, variables, waiting runs, once-only records): make clean-all deletes them"

clean-all:
	@echo "WARNING: deleting .prefect/ and .sandbox/: every Block, Variable (SFTP registrations), waiting run and"
	@echo "once-only record (emails would be sent again). Ctrl-C within 10 seconds to keep them."
	@[ "$(YES)" = 1 ] || sleep 10
	rm -rf $(VENV) .prefect .sandbox *.egg-info

# The engine beside the plain-Python baseline and the bare-join anchors (polars, DuckDB, pandas: the `bench` extra).
bench: $(BIN)/hris-runbook
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run --rows 1000000

# The same at 5,000,000 rows, messy upload only; pandas and the plain-Python baseline are left out
# (minutes each, several GiB): the goal there is the engine against polars (docs/performance.md).
bench-large: $(BIN)/hris-runbook
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run --rows 5000000 --case messy --no-baseline --anchors polars,duckdb

# update-mapping's what-if beside one generate-files run, 1M rows, whole processes (issue 23 §3).
bench-whatif: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.whatif --rows 1000000

bench-sftp: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.sftp_watch

# N concurrent setup-guides runs on SQLite and on PostgreSQL (needs postgresql + redis-server); N=10 for a quick run.
bench-load: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.load $(if $(N),--n $(N))

# A CSM's Submit and Resume on the SQLite server of `make up` while other writers keep it busy: 503s counted.
bench-clicks: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.sqlite_clicks


# A CSM's Resume to the run's next gate, from Prefect's state history, on a `make up`-style stack:
# 1 run (5 rounds) and 20 at once on SQLite, 20 on PostgreSQL (skipped without it); ~5 minutes.
bench-resume: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.resume
