# Two commands on a fresh machine: `make run` (set up + whole flow on the bundled sample), `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)

DOCS_PORT ?= 8080

.PHONY: setup system-packages run run-postgres test test-fast lint conventions hooks validate docs clean bench

# pre-commit keeps its state inside the venv: nothing written to ~/.cache, nothing for git to track.
export PRE_COMMIT_HOME := $(abspath $(VENV))/pre-commit

# npm writes node_modules/.package-lock.json: its own target, so a deleted node_modules (git clean) comes back
DOCS_ASSETS := docs_assets/node_modules/.package-lock.json

setup: $(STAMP) $(DOCS_ASSETS)

$(STAMP): requirements.lock pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(DOCS_ASSETS): docs_assets/package-lock.json
	@# Front-end libraries for offline Data Docs (see flightdelay/quality/docs_assets.py); optional without npm.
	@if command -v npm >/dev/null; then npm ci --prefix docs_assets --no-audit --no-fund --ignore-scripts --silent; \
	 else echo "npm not found: Data Docs will load their styles from CDNs"; fi

run: setup
	$(BIN)/flightdelay run

# The same flow with a PostgreSQL server as the warehouse: a fresh throwaway server in PG_DIR (whatever an earlier
# one there held is dropped), left running for a look afterwards; `scripts/local_postgres.py stop $(PG_DIR)` ends it.
PG_DIR ?= /tmp/flightdelay-pg
run-postgres: setup
	$(BIN)/python scripts/local_postgres.py stop $(PG_DIR)
	PG_ENV="$$($(BIN)/python scripts/local_postgres.py start $(PG_DIR))" && eval "$$PG_ENV" && \
	FLIGHTDELAY_BACKEND=postgres $(BIN)/flightdelay run

# Run the Great Expectations checkpoints on what the last run built; Data Docs in artifacts/data_docs/.
validate: setup
	$(BIN)/flightdelay validate

# The Debian packages the tests need (Java, PostgreSQL, Chromium and its driver): installed when run as
# root, otherwise the exact apt-get command and a failure. .ci/run installs with the same script.
system-packages:
	@PYTHON=$(PYTHON) bash scripts/install_system_packages.sh test

# The git hooks of .pre-commit-config.yaml on every tracked file: ruff, SQLFluff (it compiles the project
# with dbt against an in-memory DuckDB, so it needs no built warehouse), yamllint, the GitHub workflow
# linters (jactionlint, zizmor; offline), dbt parse and the convention gate. New files count once `git add`ed.
lint: setup
	$(BIN)/pre-commit run --all-files --color never

# The convention gate alone: dbt-bouncer.yml's house rules on the manifest of `dbt parse`.
conventions: setup
	bash scripts/check_conventions.sh

# Run the same hooks on every `git commit`.
hooks: setup
	$(BIN)/pre-commit install

test: system-packages setup lint
	$(BIN)/pytest -q

# The unit tests alone (no Spark, dbt, subprocess or whole flow; the tiers are markers, see pyproject.toml):
# about two minutes on 2 cores, for the edit-test loop. `make test` runs everything.
test-fast: setup
	$(BIN)/pytest -q -m "not integration and not engine"

# Benchmark the whole flow at scale factor SF (1 = the bundled sample); results in bench/results/, BENCHMARKS.md.
# INCREMENT=1: the incremental scenario instead (bench/increment.py): the flow without the last month, with it
# added, rerun with nothing changed, and a full rebuild whose marts must equal the incremental ones.
SF ?= 1
INCREMENT ?=
bench: setup
	$(BIN)/python -m bench.run --sf $(SF) $(if $(filter-out 0,$(INCREMENT)),--increment)

# Generate the dbt docs site (needs a built warehouse: `make run` first) and serve it.
docs: setup
	DBT_PROFILES_DIR=$(CURDIR) $(BIN)/dbt docs generate --target prod
	DBT_PROFILES_DIR=$(CURDIR) $(BIN)/dbt docs serve --port $(DOCS_PORT) --host 127.0.0.1 --no-browser

clean:
	rm -rf lake warehouse artifacts target logs data/raw
