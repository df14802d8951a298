# Two commands: `make up` runs the whole runbook locally, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test bench bench-sftp bench-load clean

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

clean:
	rm -rf $(VENV) .prefect .sandbox *.egg-info

bench: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.run --rows 1000000

bench-sftp: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.sftp_watch

# N concurrent setup-guides runs on SQLite and on PostgreSQL (needs postgresql + redis-server); N=10 for a quick run.
bench-load: $(BIN)/hris-runbook
	$(BIN)/python -m benchmarks.load $(if $(N),--n $(N))
