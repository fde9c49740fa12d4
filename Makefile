# EvoTrack: `make run` runs the whole product, `make test` runs the tests.
# Both create .venv and install what they need by themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: run reset test lint bench bench-full migrate worker check-migrations clean

# The versions come from requirements.lock (constraints: the project itself is installed
# editable, which a lock cannot pin); a changed lock installs again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# Pins every dependency, runtime and dev, for every platform and Python >= 3.11 (uv's
# universal resolution), keeping the versions already locked when they still fit.
# `make lock LOCK_ARGS=--upgrade` moves everything to the newest versions,
# `LOCK_ARGS='--upgrade-package fastapi'` one package.
UV_VERSION := 0.13.10
LOCK_ARGS ?=

.PHONY: lock
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --quiet \
		--custom-compile-command 'make lock' $(LOCK_ARGS) -o requirements.lock

# `make run COMMAND_PORT=8100 QUERY_PORT=8101`; RUN_ARGS takes any other option of
# `evotrack run` (`--api-workers 2`, `--host 0.0.0.0`, `--data-dir DIR`).
COMMAND_PORT ?= 8000
QUERY_PORT ?= 8001
RUN_ARGS ?=

run: $(STAMP)
	$(BIN)/evotrack run --command-port $(COMMAND_PORT) --query-port $(QUERY_PORT) $(RUN_ARGS)

# Deletes the embedded PostgreSQL's and Redis' data in .evotrack/ (refused while `make run` runs).
reset: $(STAMP)
	$(BIN)/evotrack reset

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
