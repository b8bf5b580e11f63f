# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# openapi-typescript and tsc, pinned by package-lock.json, for the generated-clients test.
TS_CLIENT := clients/typescript
export UV_PROJECT_ENVIRONMENT := $(VENV)

.DEFAULT_GOAL := help
.PHONY: help install run migrate test test-unit lint format openapi bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/uv:
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on the CI machine) every
# process would otherwise compile its imports from source (~3 s of CPU per server or CLI start).
$(VENV)/.installed: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --quiet --compile-bytecode
	@touch $@

$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed $(TS_CLIENT)/node_modules/.installed ## Create ./.venv and install the locked dependencies (and the TypeScript tools: npm ci)

migrate: install ## Apply the database migrations (ESCROW_DATABASE_URL, default ./var/escrow.db)
	$(BIN)/escrow migrate

run: install ## Install, migrate and serve API + worker on HOST:PORT (SQLite by default)
	@mkdir -p var
	$(BIN)/escrow migrate
	$(BIN)/escrow serve --host $(HOST) --port $(PORT)

test: install ## Run the whole suite against SQLite and PostgreSQL
	$(BIN)/python -m compileall -q -j 0 libs services tests migrations > /dev/null
	$(BIN)/pytest -n 2 --durations=25

lint: install ## ruff (lint + format check), mypy strict, and the import contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

format: install ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

openapi: install ## Regenerate openapi/openapi.json from the app
	$(BIN)/python -m escrow_api.openapi_export openapi/openapi.json

bench: install ## Run the benchmarks on PostgreSQL (not part of make test)
	$(BIN)/python -m bench.run

clean: ## Remove the virtualenv, caches and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache $(TS_CLIENT)/node_modules
