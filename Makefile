# fixledger: `make run` serves the embedded default; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
# The second test configuration: the production kind of database and broker. Names derive from
# the checkout's path, so two checkouts on one host test at once without sharing a database or
# broker keys (Redis has only 16 databases; the checkouts share one, each with its key prefix).
CHECKOUT_ID := $(shell printf %s "$(CURDIR)" | sha1sum | cut -c1-8)
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/fixledger_$(CHECKOUT_ID)
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
TEST_BROKER_KEY_PREFIX ?= fixledger-test-$(CHECKOUT_ID):
PYTEST_ARGS ?=

.PHONY: run test test-embedded test-services browser sandbox wrk bench-http lint format clean

$(VENV)/.installed: pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# The CI command, `$(VENV)/bin/fixledger`: a package of its own, standard library only.
	$(PY) -m pip install --quiet -e ./client
	touch $@

run: $(VENV)/.installed sandbox
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py bootstrap --demo --url http://$(HOST):$(PORT)
	exec $(PY) manage.py serve --host $(HOST) --port $(PORT)

# Debian's chromium drives the browser tests; nothing downloads a browser of its own.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# Debian's bubblewrap sandboxes every command a worker runs at a revision; a worker without it
# refuses to measure (unless FIXLEDGER_ALLOW_UNSANDBOXED=true).
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "workers need Debian's bubblewrap: sudo apt-get install bubblewrap" >&2; exit 1; fi; }

# Debian's wrk is the reference the HTTP probe's benchmark measures itself against.
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "the HTTP probe benchmark needs Debian's wrk: sudo apt-get install wrk" >&2; exit 1; fi; }

bench-http: $(VENV)/.installed wrk
	$(PY) tests/benchmarks/http_probe.py

test: $(VENV)/.installed browser sandbox
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(MAKE) test-embedded
	$(MAKE) test-services

test-embedded: $(VENV)/.installed
	@echo "== tests on the embedded default: SQLite + filesystem broker"
	env -u DATABASE_URL -u CELERY_BROKER_URL FIXLEDGER_DATA_DIR=$(CURDIR)/var/test-embedded \
	  $(PY) -m pytest $(PYTEST_ARGS)

test-services: $(VENV)/.installed
	@if $(PY) -m tests.services $(TEST_DATABASE_URL) $(TEST_BROKER_URL); then \
	  echo "== tests on PostgreSQL + Redis"; \
	  DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  CELERY_BROKER_KEY_PREFIX=$(TEST_BROKER_KEY_PREFIX) \
	  FIXLEDGER_DATA_DIR=$(CURDIR)/var/test-services \
	  $(PY) -m pytest -m "not config_independent" $(PYTEST_ARGS); \
	elif [ "$$CI" = "true" ]; then \
	  echo "PostgreSQL or Redis is unreachable: CI must test against both" >&2; exit 1; \
	else echo "== PostgreSQL or Redis unreachable here: skipped that configuration"; fi

lint: $(VENV)/.installed
	$(PY) -m ruff format --check . && $(PY) -m ruff check . && $(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) var
