# Every target sets itself up: a fresh machine needs nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV     := $(VENV)/.dev-installed
PIP     := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo needs only the runtime dependencies; tests, lint and benchmarks add the dev tools.
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(DEV): pyproject.toml $(RUNTIME)
	$(PIP) -e '.[dev]'
	touch $@

demo: $(RUNTIME)
	$(BIN)/tgspread demo --archive demo-data/demo.duckdb
	$(BIN)/tgspread status --archive demo-data/demo.duckdb

test: $(DEV)
	$(BIN)/python -m pytest -n 2 -q

lint: $(DEV)
	$(BIN)/ruff check collector analysis tests benchmarks notebooks
	$(BIN)/mypy

bench: $(DEV)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache .ruff_cache
