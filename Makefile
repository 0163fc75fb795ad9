# dampak: run `make help` for the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DAMPAK := $(VENV)/bin/dampak
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	@$(PY) -m pip install -q --no-deps -e . > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install dampak with pinned dependencies

# The benchmark's quix-streams peer pins an older pydantic: its own virtualenv, which also sees
# .venv's packages (chdb, clickhouse-connect) after its own.
PEER_STAMP := .venv-peer/.installed
$(PEER_STAMP): tests/bench/requirements-peer.lock $(STAMP)
	@test -x .venv-peer/bin/python || python3 -m venv .venv-peer
	.venv-peer/bin/python -m pip install -q --upgrade pip
	.venv-peer/bin/python -m pip install -q -r tests/bench/requirements-peer.lock
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
		"$$(.venv-peer/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/dampak-venv.pth"
	@touch $(PEER_STAMP)

peer: $(PEER_STAMP) ## The benchmark's quix-streams peer in .venv-peer (make bench and make test need it)

up: install ## Start the local Kafka broker (jars from Maven Central) and create topics
	$(DAMPAK) up

down: install ## Stop the local Kafka broker
	$(DAMPAK) down

demo: install ## Run the pipeline end to end on the local stack with the bundled Cianjur scenario
	$(DAMPAK) up
	$(DAMPAK) demo

lint: install ## ruff (lint + format check), mypy (strict on streams/ schemas/ sinks/), import-linter's layers
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

browser: ## Debian's chromium, for the command-center page's test (headless)
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null)

test: install peer browser ## Everything: lint, unit tests, and integration tests on the real broker and chDB
	$(MAKE) lint
	$(DAMPAK) up
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=15 tests

test-unit: install ## Unit tests only (no services)
	$(VENV)/bin/pytest -q tests/unit

schemas: install ## Re-export the topics' JSON Schemas into schemas/json
	$(DAMPAK) schemas

.PHONY: help install peer browser up down demo lint test test-unit schemas bench bench-quick bench-import fuzz faults

bench: install peer ## Full benchmark (1M households, 1M reports): writes docs/benchmarks.{json,md}
	$(DAMPAK) up
	$(PY) -m tests.bench.run --mode full

bench-quick: install peer ## Quick benchmark smoke (< 2 min): asserts exact totals, not speed
	$(DAMPAK) up
	$(PY) -m tests.bench.run --mode quick

bench-import: install ## Rate and peak RSS of dampak import-registry on a generated 1,000,000-row export
	$(DAMPAK) up
	$(PY) -m tests.bench.import_registry --rows 1000000 --parquet

fuzz: install ## Long fuzz (100,000 hostile messages among 100,000 reports, then the structural attacks): writes docs/reliability.md
	$(DAMPAK) up
	$(PY) -m tests.integration.fuzz --bad 100000 --households 20000 --reports 100000 --structural-rounds 5

faults: install ## Fault suite (brokers killed, disks full, slow consumer): writes docs/reliability.md (root)
	$(DAMPAK) up
	$(PY) -m tests.faults.run
