# salesmgmt — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := salesmgmt.settings

.DEFAULT_GOAL := help
.PHONY: help install run run-maven migrate demo demo-maven serve test test-fast test-postgres lint format messages bench worker beat clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## Create .venv and install the pinned requirements

migrate: install ## Apply database migrations
	$(BIN)/python manage.py migrate --noinput

demo: migrate ## Load the built-in demo company (idempotent)
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_demo_targets

demo-maven: demo ## Load the public Maven CRM dataset as demo data (idempotent)
	$(BIN)/python manage.py import_maven ../shared/datasets/maven-crm-sales-opportunities

run-maven: demo-maven ## Like `make run`, with the public Maven CRM dataset loaded beside the built-in demo
	@$(BIN)/python manage.py demo_logins
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

run: demo ## Set everything up and serve the app with demo data on http://127.0.0.1:8000
	@$(BIN)/python manage.py demo_logins
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install ## Run the whole suite (SQLite; browser tests on /usr/bin/chromium)
	TESTING=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: install ## The suite without browser tests
	TESTING=1 $(BIN)/python -m pytest -q -m "not browser"

test-postgres: install ## The suite against PostgreSQL on 127.0.0.1:5432 (throwaway database)
	TESTING=1 DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/salesmgmt_ci} $(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: install ## ruff lint + format check, migrations in step with models
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: install ## Extract and compile translations (needs gettext)
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete -i ".venv/*"
	$(BIN)/python manage.py compilemessages -i ".venv"

bench: install ## Benchmarks at the sizes the issues name (PostgreSQL)
	$(BIN)/python -m bench

worker: install ## A Celery worker (needs CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0)
	$(BIN)/celery -A salesmgmt worker -l info

beat: install ## The Celery beat scheduler (needs CELERY_BROKER_URL)
	$(BIN)/celery -A salesmgmt beat -l info

clean: ## Remove the venv and the local database
	rm -rf $(VENV) db.sqlite3
