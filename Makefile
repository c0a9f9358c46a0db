# RegionDesk — the commands a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test test-sqlite lint format migrate seed bench bench-quick bench-tools soak clean

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
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench
	$(BIN)/hadolint Dockerfile

format: install
	$(BIN)/ruff check --fix app tests migrations bench
	$(BIN)/ruff format app tests migrations bench

## Benchmarks (bench/README.md): wrk against one uvicorn worker on PostgreSQL; writes
## docs/benchmarks.md. BENCH_ARGS passes options, e.g. BENCH_ARGS="--profile get,create".
BENCH_ARGS ?=

bench: bench-tools
	$(BIN)/python -m bench.run --cases 1000000 $(BENCH_ARGS)

bench-quick: bench-tools
	$(BIN)/python -m bench.run --cases 100000 --quick $(BENCH_ARGS)

## Soak (bench/soak.py): intake, actions and lists together on one worker; fails on any error or
## on memory growth. SOAK_ARGS passes options, e.g. SOAK_ARGS="--minutes 3".
SOAK_ARGS ?=

soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

bench-tools: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v valgrind >/dev/null || apt-get install -y -qq valgrind || echo "no valgrind: python -m bench.instructions will not run"
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'

clean:
	rm -rf $(VENV) regiondesk.db regiondesk.db-* .pytest_cache .ruff_cache
