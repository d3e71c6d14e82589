# The two commands a newcomer needs:
#   make up ARGS=--simulate   set up everything, run the embedded stack (offline, simulated Polymarket)
#   make test                 set up everything, run lint, types and all tests
# `make up` without ARGS captures the real Polymarket APIs.

.PHONY: up test lint typecheck pytest dashboard-test bootstrap clean

bootstrap:
	@./scripts/bootstrap.sh

up: bootstrap
	.venv/bin/pmpipe up $(ARGS)

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	./scripts/hadolint.sh
	./scripts/compose-lint.sh

typecheck: bootstrap
	.venv/bin/mypy

pytest: bootstrap
	.venv/bin/pytest -q $(PYTEST_ARGS)

dashboard-test: bootstrap
	./scripts/dashboard-test.sh

# the dashboard is built before pytest: tests/integration/test_compose_services.py runs its
# standalone build as the compose service would
test: lint typecheck dashboard-test pytest

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
