# RegionDesk — the commands a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test test-sqlite lint format migrate seed bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## Serve the demo region on SQLite at http://$(HOST):$(PORT) (docs at /docs).
run: install
	$(BIN)/python -m app migrate
	$(BIN)/python -m app seed-demo
	$(BIN)/python -m app serve --host $(HOST) --port $(PORT)

migrate: install
	$(BIN)/python -m app migrate

seed: install
	$(BIN)/python -m app seed-demo

## The whole suite, on SQLite and on PostgreSQL (REGIONDESK_TEST_DATABASE_URL, default local).
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check app tests migrations
	$(BIN)/ruff format --check app tests migrations
	$(BIN)/hadolint Dockerfile

format: install
	$(BIN)/ruff check --fix app tests migrations
	$(BIN)/ruff format app tests migrations

clean:
	rm -rf $(VENV) regiondesk.db regiondesk.db-* .pytest_cache .ruff_cache
