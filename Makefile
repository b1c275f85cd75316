# odum-live front door. `make run` serves the embedded default; `make test` runs the suite on the
# embedded default and then on PostgreSQL + Redis. See README.md.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
MANAGE := $(PY) manage.py
# Written after a successful install; older than a requirements file = install again.
STAMP  := $(VENV)/.requirements.stamp
PORT   ?= 8001

# The second test run's transports (README.md, "Tests"); DATABASE_URL / REDIS_URL override them.
TEST_DATABASE_URL := $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/odum)
# The Redis DB is flushed by tests/integration: DB 1, so a development Redis's DB 0 is left alone.
TEST_REDIS_URL    := $(or $(REDIS_URL),redis://127.0.0.1:6379/1)
PYTEST_ARGS ?=

.PHONY: help install run test bench check clean distclean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "odum-live needs Python 3.11, $(PYTHON) is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements/base.txt requirements/dev.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements/dev.txt
	@touch $@

install: $(STAMP)  ## Create .venv (Python 3.11) and install requirements/dev.txt when they changed.

run: install  ## Migrate, seed the demo data, check the paper venues' replay data, collect static files and serve on 127.0.0.1:$(PORT) (daphne).
	@set -euo pipefail; \
	if [ -z "$${DJANGO_DEBUG+set}" ] && [ -z "$${DATABASE_URL:-}" ]; then export DJANGO_DEBUG=1; fi; \
	if [ -z "$${REDIS_URL:-}" ]; then export ODUM_EMBEDDED_TRANSPORTS="$${ODUM_EMBEDDED_TRANSPORTS:-1}"; fi; \
	$(MANAGE) migrate --noinput; \
	$(MANAGE) seed_demo; \
	$(MANAGE) check_replay_data; \
	$(MANAGE) collectstatic --noinput -v 0; \
	echo "odum-live on http://127.0.0.1:$(PORT)/  (admin /admin/, API docs /api/docs/, metrics /metrics)"; \
	exec $(VENV)/bin/daphne -b 127.0.0.1 -p $(PORT) odum_live.asgi:application

# pytest exits 5 when it collected no tests: that fails the target like any other non-zero status.
test: install  ## Run pytest twice: embedded default (SQLite, in-memory), then PostgreSQL + Redis.
	@echo "== pytest on the embedded default (SQLite, in-memory channel layer, eager Celery)"
	@env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(PY) -m pytest $(PYTEST_ARGS) \
		|| { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests (exit 5): failing" >&2; exit $$rc; }
	@echo "== pytest on PostgreSQL ($(TEST_DATABASE_URL)) and Redis ($(TEST_REDIS_URL))"
	@env -u CELERY_BROKER_URL DATABASE_URL='$(TEST_DATABASE_URL)' REDIS_URL='$(TEST_REDIS_URL)' $(PY) -m pytest $(PYTEST_ARGS) \
		|| { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests (exit 5): failing" >&2; exit $$rc; }

bench: install  ## Run the benchmarks under bench/ (bench/run_all.py); they print their figures.
	$(PY) bench/run_all.py

check: install  ## check --deploy with production settings (DEBUG off, random secret key, PostgreSQL and Redis URLs).
	@DJANGO_DEBUG=0 \
	DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')}" \
	DATABASE_URL='$(TEST_DATABASE_URL)' REDIS_URL='$(TEST_REDIS_URL)' \
	$(MANAGE) check --deploy --fail-level WARNING

clean:  ## Remove generated files (collected static, caches, benchmark output); keeps .venv and db.sqlite3.
	rm -rf staticfiles .pytest_cache .hypothesis bench/out tests/e2e/screenshots
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean  ## Also remove .venv and the embedded default's database (db.sqlite3).
	rm -rf $(VENV) db.sqlite3
