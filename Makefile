# EvoTrack: `make run` runs the whole product, `make test` runs the tests.
# Both create .venv and install what they need by themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: run test lint bench bench-full migrate worker check-migrations clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/evotrack run

migrate: $(STAMP)
	$(BIN)/evotrack migrate

worker: $(STAMP)
	$(BIN)/evotrack worker

test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# `alembic check`: the models and the migrations agree (needs DATABASE_URL).
check-migrations: $(STAMP)
	$(BIN)/alembic upgrade head
	$(BIN)/alembic check

bench: $(STAMP)
	$(BIN)/python -m bench --profile quick

bench-full: $(STAMP)
	$(BIN)/python -m bench --profile full

clean:
	rm -rf $(VENV) .evotrack .pytest_cache .mypy_cache .ruff_cache
