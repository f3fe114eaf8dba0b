# webCRM ↔ Uniconta sync. `make help` lists the targets.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (Python 3.11 is required; set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev tools

run: $(STAMP) ## start everything on the embedded default (Redis, sandboxes, receiver, worker, beat, Flower)
	$(BIN)/python -m syncctl.run

test: $(STAMP) ## run the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: $(STAMP) ## run the tests that start no Celery worker (the "slow" ones do)
	$(BIN)/python -m pytest -n 2 -m "not slow"

lint: $(STAMP) ## ruff, mypy and the layer contracts (lint-imports; setup.cfg [importlinter])
	$(BIN)/ruff check sync syncctl webhooks tasks sandbox tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) ## run the benchmarks (prints ratios against baselines measured in the same run)
	$(BIN)/python -m bench

clean: ## remove the virtualenv, caches and run data (.run/)
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
