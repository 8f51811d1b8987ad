# Grid Hub. `make run` starts the hub on embedded defaults with demo data;
# `make test` installs, starts any of PostgreSQL/Redis/Mosquitto that is down, installs the
# Chromium the end-to-end tests drive if it is missing, runs the suite.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEV    := $(VENV)/.installed-dev-stamp

.PHONY: install install-dev run test lint typecheck unit e2e services browser media bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(STAMP)

$(DEV): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(DEV)

install: $(STAMP)

install-dev: $(DEV)

# The demo driver (simulated grid phones, cases, notices; `hub demo`) runs inside the hub once
# it is up; `make run DEMO=0` serves without it.
DEMO ?= 1
run: install
	$(BIN)/hub db upgrade
	$(BIN)/hub serve $(if $(filter 1,$(DEMO)),--demo)

services:
	@bash .ci/ensure-services

browser:
	@bash .ci/ensure-chromium

media:
	@bash .ci/ensure-media

lint: install-dev
	$(BIN)/ruff check hub protocols adapters streams tests
	$(BIN)/ruff format --check hub protocols adapters streams tests

typecheck: install-dev
	$(BIN)/mypy

test: install-dev services browser media lint typecheck
	$(BIN)/pytest

unit: install-dev
	$(BIN)/pytest tests/unit

e2e: install-dev browser media
	$(BIN)/pytest tests/e2e

bench: install-dev services media
	$(BIN)/python -m tests.bench.fanout
	$(BIN)/python -m tests.bench.ingest --repeat 3
	$(BIN)/python -m tests.bench.track
	$(BIN)/python -m tests.bench.notices
	$(BIN)/python -m tests.bench.cases
	$(BIN)/python -m tests.bench.cameras
	$(BIN)/python -m tests.bench.consultations
	$(BIN)/python -m tests.bench.gb28181
	$(BIN)/python -m tests.bench.videonet_calls

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
