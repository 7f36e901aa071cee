# The two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false

.PHONY: run test install migrate worker clean demo bench-upload bench

run: $(STAMP)  ## Start the whole platform (embedded Redis + SQLite unless REDIS_URL/DATABASE_URL are set)
	$(PY) -m mlplatform.runner

test: $(STAMP)  ## Run the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
	$(PY) -m tests.browser_prereqs
	$(PY) -m pytest -n 2 --ignore=tests/ui $(PYTEST_ARGS)
	$(PY) -m pytest tests/ui $(PYTEST_ARGS)  # one process: one live server for every browser test

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)  ## Train five small models on scikit-learn's data sets and upload them to a running platform
	$(PY) scripts/demo.py

bench-upload: $(STAMP)  ## Measure upload-to-ready time (1 MB and 50 MB models) and model-host memory; updates bench/RESULTS.md
	$(PY) bench/upload_bench.py --write

BENCH_VENV := bench/.venv
BENCH_STAMP := $(BENCH_VENV)/.requirements-installed
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

bench: $(STAMP) $(BENCH_STAMP)  ## Predictions: floors, MLflow and the platform (cache miss / hit) under wrk, ~10 min; updates bench/RESULTS.md
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (Debian)"; $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	$(BENCH_VENV)/bin/python bench/predict_bench.py --platform-python $(CURDIR)/$(PY) --write $(BENCH_ARGS)

$(BENCH_STAMP): bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

migrate: $(STAMP)  ## Apply database migrations
	$(VENV)/bin/alembic upgrade head

clean:  ## Remove local state (database, embedded Redis, build output)
	rm -rf var .web .states
