.DEFAULT_GOAL := help
PY := .venv/bin/python

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## Create .venv and install the app with test tools
	python3 -m venv .venv && .venv/bin/pip install -e '.[test]'

dev: ## Run the app on the embedded database with an in-process worker
	.venv/bin/psy-annotator serve

migrate: ## Apply migrations
	.venv/bin/psy-annotator migrate

fmt: ## Format the code
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

lint: ## Lint and check formatting
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

typecheck: ## mypy --strict on app/
	$(PY) -m mypy

test: ## The whole suite (what CI runs)
	$(PY) -m pytest

test-pg14: ## The suite but the browser tests, against PostgreSQL 14 (downloaded from npm)
	$(PY) -m tests.other_postgres 14 -- $(PY) -m pytest --ignore=tests/e2e --ignore=tests/test_serve.py

bench: ## Benchmarks (prints JSON, keeps a copy in bench/results/)
	$(PY) -m bench.run

messages: ## Update the Chinese catalog from the sources
	$(PY) -m app.i18n_catalog

.PHONY: help install dev migrate fmt lint typecheck test test-pg14 bench messages
