# kiku: `make run` installs everything and starts the platform; `make test` runs the suite.
DATA_DIR ?= .kiku
API_PORT ?= 5100
ROUTER_PORT ?= 8080
DOMAIN ?= localhost
VENV := .venv/bin

.PHONY: install run test lint unit integration bench bench-router clean

LANE := src/kiku/router/_lane.so

install: .venv/.installed $(LANE)

.venv/.installed: pyproject.toml uv.lock scripts/setup.sh
	scripts/setup.sh
	touch $@

# The router's fast lane, compiled for the venv's Python (router/fastlane.py).
$(LANE): src/kiku/router/_lane.c scripts/build-lane.sh .venv/.installed
	scripts/build-lane.sh

run: install
	$(VENV)/kiku server --data-dir $(DATA_DIR) --api-port $(API_PORT) --router-port $(ROUTER_PORT) --domain $(DOMAIN)

lint: install
	$(VENV)/ruff check src tests bench
	$(VENV)/ruff format --check src tests bench
	$(VENV)/mypy

test: lint
	$(VENV)/pytest

unit: install
	$(VENV)/pytest --ignore=tests/integration

integration: install
	$(VENV)/pytest tests/integration

bench: install
	scripts/setup-bench.sh
	$(VENV)/python bench/api_requests.py
	$(VENV)/python bench/router.py

bench-router: install
	scripts/setup-bench.sh
	$(VENV)/python bench/router.py

clean:
	rm -rf .venv .cache .pytest_cache .mypy_cache .ruff_cache $(LANE)
