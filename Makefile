# webCRM ↔ Uniconta sync. `make help` lists the targets.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install lock run demo test test-fast lint bench soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

# The pinned, hashed dependencies (`make lock` writes them from setup.cfg): requirements.txt is what
# the image installs, requirements-dev.txt adds the dev tools at the same versions.
LOCK_DEV := requirements-dev.txt
LOCK     := requirements.txt
COMPILE  := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
            --strip-extras --no-emit-index-url --no-emit-find-links

$(STAMP): setup.cfg pyproject.toml $(LOCK_DEV)
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (Python 3.11 is required; set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK_DEV)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv: the locked dependencies (requirements-dev.txt), then the package itself

lock: $(STAMP) ## re-pin requirements*.txt to the newest versions setup.cfg allows (hashed); review, then make test
	$(COMPILE) --upgrade --extra dev --all-build-deps -o $(LOCK_DEV) setup.cfg
	$(COMPILE) --build-deps-for wheel -c $(LOCK_DEV) -o $(LOCK) setup.cfg

run: $(STAMP) ## start everything on the embedded default (Redis, sandboxes, receiver, worker, beat, Flower)
	$(BIN)/python -m syncctl.run

# Only the built-in demo: with SYNC_CONFIG or REDIS_URL the run directory may hold a real Redis's data.
demo: $(STAMP) ## make run from scratch: forget the demo's run directory (sandboxes, Redis), seed and sync afresh
	@test -z "$$SYNC_CONFIG$$REDIS_URL" || { echo "make demo: only for the built-in demo (unset SYNC_CONFIG and REDIS_URL)"; exit 2; }
	rm -rf "$${SYNC_RUN_DIR:-.run}"
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

# The convergence soak (docs/benchmarks.md, "Convergence soak"): SOAK_SEED and SOAK_OPS pick another walk,
# SOAK_ARGS adds options (e.g. --keep --json soak.json).
SOAK_SEED ?= 14
SOAK_OPS  ?= 5000
SOAK_ARGS ?=
soak: $(STAMP) ## the convergence soak: 5,000 edits on both sides with faults, then reconcile, loop check, checker (~15 min)
	$(BIN)/python -m bench.soak --seed $(SOAK_SEED) --ops $(SOAK_OPS) --faults $(SOAK_ARGS)

clean: ## remove the virtualenv, caches and run data (.run/)
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
