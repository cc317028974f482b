# salesmgmt — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
ADDR ?= 127.0.0.1:$(PORT)
# Debian packages of the browser tests: chromium, and a CJK font (without one every Chinese string is boxes);
# and gettext, whose xgettext the translation tests run (every string of the sources is in the catalogue).
BROWSER_DEBS := chromium fonts-noto-cjk gettext
export DJANGO_SETTINGS_MODULE := salesmgmt.settings

.DEFAULT_GOAL := help
.PHONY: help install browser-deps run run-maven migrate demo demo-maven serve test test-fast test-postgres lint format messages bench bench-load bench-compare worker beat clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

# Installs the Debian packages named in $(1) that are missing (apt-get update + install, non-interactive):
# as root, else through sudo; without either it prints what to install and fails.
define apt_install
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
  missing=$$(echo $$missing); \
  if ! command -v apt-get >/dev/null; then echo "Install these (Debian names): $$missing" >&2; exit 1; \
  elif [ "$$(id -u)" = 0 ]; then sudo=; \
  elif command -v sudo >/dev/null; then sudo=sudo; \
  else echo "Missing Debian packages; as root run: apt-get update && apt-get install -y $$missing" >&2; exit 1; fi; \
  echo "Installing Debian packages: $$missing"; \
  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
fi
endef

$(BIN)/python:
	@$(PY) -c "import ensurepip, venv" 2>/dev/null || { $(call apt_install,$(PY) $(PY)-venv); }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## Create .venv and install the pinned requirements

browser-deps: ## Install Debian's chromium and a CJK font for the browser tests, and gettext, when missing
	@$(call apt_install,$(BROWSER_DEBS))

migrate: install ## Apply database migrations
	$(BIN)/python manage.py migrate --noinput

demo: migrate ## Load the built-in demo company (idempotent)
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_demo_targets
	$(BIN)/python manage.py seed_demo_coaching

demo-maven: demo ## Load the public Maven CRM dataset as demo data (idempotent)
	$(BIN)/python manage.py import_maven ../shared/datasets/maven-crm-sales-opportunities

run-maven: demo-maven ## Like `make run`, with the public Maven CRM dataset loaded beside the built-in demo
	@$(BIN)/python manage.py demo_logins --addr $(ADDR)
	DEBUG=1 $(BIN)/python manage.py runserver $(ADDR)

run: demo ## Set everything up and serve the app with demo data on http://127.0.0.1:8000 (or PORT=...)
	@$(BIN)/python manage.py demo_logins --addr $(ADDR)
	DEBUG=1 $(BIN)/python manage.py runserver $(ADDR)

test: install browser-deps ## Run the whole suite (SQLite; browser tests on Debian's chromium, installed if missing)
	TESTING=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: install ## The suite without browser tests
	TESTING=1 $(BIN)/python -m pytest -q -m "not browser"

test-postgres: install browser-deps ## The suite against PostgreSQL on 127.0.0.1:5432 (throwaway database)
	TESTING=1 DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/salesmgmt_ci} $(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: install ## ruff lint + format check, mypy (django-stubs) over salesmgmt/lib and the apps' services and selectors, import contracts (pyproject.toml), migrations in step with models
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: install ## Extract and compile translations (needs gettext)
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete -i ".venv/*"
	$(BIN)/python manage.py compilemessages -i ".venv"

bench: install ## Benchmarks at the sizes the issues name (PostgreSQL)
	$(BIN)/python -m bench

bench-load: install ## The load benchmark alone: gunicorn + locust on the big company, paced then saturated (BENCH_LOAD_SCALE=1, BENCH_LOAD_SECONDS=60, BENCH_LOAD_WARMUP=30, BENCH_LOAD_PACE=0.95)
	$(BIN)/python -m bench load

bench-compare: install ## Benchmarks of BASE=<rev> against the working tree, in turns (ROUNDS=4, TOPICS=all)
	$(BIN)/python -m bench.compare $(BASE) $(TOPICS) --rounds $${ROUNDS:-4}

# The production stack on this machine: PostgreSQL and Redis (defaults below), DEBUG=0, a secret key made once
# into .serve/secret_key (or SECRET_KEY=...), static files collected (served by whitenoise), then gunicorn, a Celery
# worker and beat from the Procfile (honcho). DEMO=0 skips the demo company.
SERVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/salesmgmt
SERVE_REDIS_URL ?= redis://127.0.0.1:6379/0
SERVE_ENV = DEBUG=0 DATABASE_URL=$(SERVE_DATABASE_URL) REDIS_URL=$(SERVE_REDIS_URL) \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(SERVE_REDIS_URL)} SECRET_KEY=$${SECRET_KEY:-$$(cat .serve/secret_key)} \
	ALLOWED_HOSTS=$${ALLOWED_HOSTS:-127.0.0.1,localhost} SERVE_ADDR=$(ADDR) PATH=$(CURDIR)/$(BIN):$$PATH
DEMO ?= 1

serve: install ## The production stack: gunicorn + Celery worker + beat on PostgreSQL and Redis, DEBUG=0 (SERVE_DATABASE_URL, SERVE_REDIS_URL, PORT, DEMO=0)
	@mkdir -p .serve && chmod 700 .serve
	@[ -s .serve/secret_key ] || (umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))' > .serve/secret_key)
	$(SERVE_ENV) $(BIN)/python manage.py ensure_database
	$(SERVE_ENV) $(BIN)/python manage.py migrate --noinput
	$(SERVE_ENV) $(BIN)/python manage.py collectstatic --noinput -v 0
	@if [ "$(DEMO)" != 0 ]; then $(SERVE_ENV) $(BIN)/python manage.py seed_demo && \
	  $(SERVE_ENV) $(BIN)/python manage.py seed_demo_targets && $(SERVE_ENV) $(BIN)/python manage.py seed_demo_coaching && \
	  $(SERVE_ENV) $(BIN)/python manage.py demo_logins --addr $(ADDR); fi
	$(SERVE_ENV) $(BIN)/honcho start -f Procfile

worker: install ## A Celery worker (needs CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0)
	$(BIN)/celery -A salesmgmt worker -l info

beat: install ## The Celery beat scheduler (needs CELERY_BROKER_URL)
	$(BIN)/celery -A salesmgmt beat -l info

clean: ## Remove the venv and the local database
	rm -rf $(VENV) db.sqlite3
