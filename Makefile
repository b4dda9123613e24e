# SwarmSync: the two commands of the README, plus helpers.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test setup-demo setup-test up lint bench clean

$(BIN)/swarmsync: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

## host set-up first (infra/host-setup.sh: as root on Debian/Ubuntu it installs and starts what
## is missing; otherwise it says what is missing and how to set it up, and stops). Fast when done.
setup-demo:
	@bash infra/host-setup.sh demo

setup-test:
	@bash infra/host-setup.sh test

## make demo: Docker engine, install, start the embedded stack, run a sample job, keep the stack up (Ctrl-C stops)
demo: setup-demo
	@$(MAKE) --no-print-directory $(BIN)/swarmsync
	$(BIN)/swarmsync demo

## make test: Docker, PostgreSQL, Redis, chromium; then unit and integration tests on them
test: setup-test
	@$(MAKE) --no-print-directory $(BIN)/swarmsync
	$(BIN)/ruff check .
	$(BIN)/pytest -q --durations=30 tests

up: $(BIN)/swarmsync
	$(BIN)/swarmsync up

lint: $(BIN)/swarmsync
	$(BIN)/ruff check .

bench: $(BIN)/swarmsync
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
