# Every target creates .venv itself, so a fresh clone needs nothing but python3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench reliability venv clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,mysql]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/retailcrm-sync demo

test: $(STAMP)
	$(BIN)/pytest -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check sync jobs models tests alembic bench
	$(BIN)/ruff format --check sync jobs models tests alembic bench
	$(BIN)/mypy

# Figures, not tests: prints a table and writes bench/results.json (BENCH_N sets N).
# BENCH_ONLY runs some parts only, e.g. `make bench BENCH_ONLY=clicks` (builder backfill idle report clicks popups tenants).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ONLY)

# Kill -9, concurrent daemons, CRM outage, timeouts, database restart, tenant isolation, bad
# input, secrets (issue 7; docs/reliability.md). RELIABILITY_SIZE=ci: the reduced size CI runs.
reliability: $(STAMP)
	$(BIN)/pytest -m slow tests/reliability

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
