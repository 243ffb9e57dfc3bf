# loopml: the targets people expect. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed-stamp
# Most tests wait on servers and subprocesses: two pytest processes keep both cores busy.
TEST_WORKERS ?= 2
export PATH := $(BIN):$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: help install init run test test-fast lint format bench repro ui rollback serve up down stack-up stack-down demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# the Compose Specification's JSON schema, as Docker's compose 1.29.2 ships it (tests only)
	$(BIN)/python -m pip download --quiet --no-deps --dest $(VENV)/share/compose-spec docker-compose==1.29.2
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install loopml with its dev tools

init: install  ## initialize DVC (a local folder remote by default)
	loopml init

run: init  ## run the training flow on the bundled dataset (embedded Prefect, no server)
	loopml run

test: init  ## run the whole test suite (TEST_WORKERS processes, whole files per process)
	pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: init  ## the suite without slow tests
	pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

lint: install  ## ruff lint and format check
	ruff check .
	ruff format --check .

format: install  ## ruff format and autofix
	ruff format .
	ruff check --fix .

bench: install  ## benchmarks (bench/), results in docs/benchmarks.md
	python bench/bench_data.py
	python bench/bench_training.py
	python bench/bench_serving.py

ui: install  ## the MLflow UI on the project's store: http://127.0.0.1:5000
	loopml ui

rollback: install  ## move the champion alias back to the previous version
	loopml rollback

serve: install  ## serve the champion over REST on 127.0.0.1:8000
	loopml serve

up: init  ## start Prefect server+UI (:4200), MLflow UI (:5000), deployments, model server
	loopml up

down:  ## stop what `make up` started
	loopml down

stack-up: init  ## the team's server stack as native processes (secrets from .env)
	set -a; . ./.env; set +a; loopml stack up

stack-down:  ## stop what `make stack-up` started
	loopml stack down

demo: init  ## the whole loop: train, serve, drifted traffic, monitoring, retraining, new champion
	loopml run
	loopml up
	loopml demo; status=$$?; loopml down; exit $$status

repro: init  ## the same pipeline through DVC: dvc repro
	dvc repro

clean:  ## remove generated data, stores and caches (keeps .venv)
	rm -rf data/snapshots data/quarantine data/validation data/features data/current.json \
	       .prefect mlflow.db mlartifacts reports .pytest_cache .ruff_cache
