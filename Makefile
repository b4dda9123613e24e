# SwarmSync: the two commands of the README, plus helpers.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test up lint bench clean

$(BIN)/swarmsync: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

## make demo: install, start the embedded stack, run a sample job, keep the stack up (Ctrl-C stops)
demo: $(BIN)/swarmsync
	$(BIN)/swarmsync demo

## make test: unit and integration tests on a real Docker engine, Prefect, PostgreSQL and Redis
test: $(BIN)/swarmsync
	$(BIN)/ruff check .
	$(BIN)/pytest -q tests

up: $(BIN)/swarmsync
	$(BIN)/swarmsync up

lint: $(BIN)/swarmsync
	$(BIN)/ruff check .

bench: $(BIN)/swarmsync
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
