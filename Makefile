# noslate-workers: set-up, run, test, bench.
#   make run    set up, start the daemon (embedded default config), deploy examples/
#   make test   set up, then the whole test suite and ruff
# `make setup` is idempotent: stamps under .venv/ skip steps whose inputs did not change.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The first python3.x on PATH that is >= 3.11 (override: make setup PYTHON=/path/to/python3.12).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
PLUGIN_EXAMPLE := docs/examples/noslate-plugin-example
PYTEST_ARGS ?=

.PHONY: help setup venv debian python npm build-js worker-user run test lint format bench bench-quick clean-state

help:
	@echo "make setup       create $(VENV), install Debian (as root), Python and npm dependencies"
	@echo "make run         setup, then start the daemon and deploy every example in examples/"
	@echo "make test        setup, then pytest (whole suite) and ruff check"
	@echo "make lint        ruff check + ruff format --check"
	@echo "make bench       full benchmark (bench/run.py); make bench-quick: a short run"

setup: debian python npm build-js worker-user
	@test -x $(VENV)/bin/noslate && echo "setup: ok ($(VENV)/bin/noslate)"

debian:
	@bash scripts/install-debian.sh scripts/debian-packages.txt

$(PY):
	@if [ -z "$(PYTHON)" ]; then echo "setup: need Python >= 3.11 on PATH (or make setup PYTHON=...)" >&2; exit 2; fi
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(PY)

# Re-run pip only when the packaging inputs change.
$(VENV)/.stamp-python: $(PY) pyproject.toml $(PLUGIN_EXAMPLE)/pyproject.toml
	$(PIP) install --quiet -e '.[test,bench]' -e $(PLUGIN_EXAMPLE)
	@touch $@

python: $(VENV)/.stamp-python

npm:
	@bash scripts/install-npm.sh

# Build steps plugins need (e.g. runtime_v8's JS bundle): scripts/build-js.sh, when present.
build-js: npm
	@if [ -f scripts/build-js.sh ]; then PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/build-js.sh; fi

# The unprivileged user worker processes run as (isolation_seccomp), when root.
worker-user:
	@if [ "$$(id -u)" -eq 0 ] && [ -f scripts/create-worker-user.sh ]; then sh scripts/create-worker-user.sh; fi
	@sh scripts/stpyv8-icu.sh $(PY)

run: setup
	@bash scripts/run.sh

test: setup
	@status=0; \
	$(VENV)/bin/pytest -q -rs --durations=20 $(PYTEST_ARGS) || status=$$?; \
	$(VENV)/bin/ruff check . || status=$$?; \
	exit $$status

lint: python
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: python
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	@if [ -f bench/run.py ]; then $(PY) bench/run.py; else echo "bench/run.py does not exist yet" >&2; exit 1; fi

bench-quick: setup
	@if [ -f bench/run.py ]; then $(PY) bench/run.py --quick; else echo "bench/run.py does not exist yet" >&2; exit 1; fi

# Remove the state `make run` keeps (the function registry of the example daemon).
clean-state:
	rm -rf state/
