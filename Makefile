# Lead Data Factory. `make demo` and `make test` are all a fresh machine needs (Python 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export LEADFACTORY_HOME ?= $(CURDIR)/data
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: venv prepare samples demo test dev lock clean-home

# The environment is rebuilt whenever the lock changes; uv installs exactly what the lock says.
$(VENV)/.installed: requirements.lock pyproject.toml pipelines/config/datadocs/package-lock.json
	# Data Docs' CSS/JS from the npm registry (GX links them from CDNs; the run has no network).
	npm ci --prefix pipelines/config/datadocs --no-audit --no-fund --ignore-scripts --loglevel=error
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	# Bytecode compiled once here: uv does not compile by default, and where PYTHONDONTWRITEBYTECODE is set
	# (as on our CI machines) every process would otherwise compile dagster, dbt and GX from source again,
	# seconds per command and per run the daemon starts.
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# dbt's manifest is what Dagster builds the dbt assets from.
prepare: venv
	$(BIN)/python -m compileall -q pipelines
	$(BIN)/python -c "from pipelines.lib.standardise.dbt_project import parse_dbt_project; parse_dbt_project(force=True)"

samples: prepare
	$(BIN)/leadfactory samples --if-absent

# The nightly run on the generated extracts and inbox file, then a specialist's Excel file imported the
# way `leadfactory ingest` does it: its receipt's path is printed.
demo: samples
	$(BIN)/leadfactory run
	$(BIN)/leadfactory ingest data/samples/inbox/展会线索.xlsx

test: prepare
	$(BIN)/python -m pytest -q

dev: prepare
	$(BIN)/leadfactory summary >/dev/null
	# The venv on PATH: dagster-dbt re-parses the project with `dbt` from PATH when code reloads.
	PATH=$(CURDIR)/$(BIN):$$PATH DAGSTER_HOME=$(LEADFACTORY_HOME)/dagster_home $(BIN)/dagster dev -w workspace.yaml

# Re-resolve the pinned dependencies (needs the registry); commit the new requirements.lock.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
