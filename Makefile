# Every target creates .venv itself, so a fresh clone needs nothing but python3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench venv clean

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
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
