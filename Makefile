# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv and make sure a PostgreSQL server is reachable first
# (`test` also makes sure a PgBouncer binary is installed, for the pooler tests).
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-matrix lint format venv clean docs bench bench-fleet chaos psql-fuzz

$(STAMP): pyproject.toml scripts/bootstrap-venv.sh
	scripts/bootstrap-venv.sh $(VENV)
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	scripts/demo.sh

lint: venv
	$(VENV)/bin/ruff format --check src tests scripts bench
	$(VENV)/bin/ruff check src tests scripts bench
	$(VENV)/bin/mypy

test: lint
	DATABASE_URL="$$(scripts/ensure-postgres.sh)" PGBOUNCER="$$(scripts/ensure-pgbouncer.sh)" \
		$(VENV)/bin/pytest

# The database, CLI and agent-store tests on each PostgreSQL major version, each
# on a private server started and removed by the script (README: Supported
# PostgreSQL versions). make test-matrix PG_VERSIONS="14 18" PYTEST_ARGS="-x"
PG_VERSIONS ?= 14 15 16 17 18
test-matrix: venv
	PGBOUNCER="$$(scripts/ensure-pgbouncer.sh)" \
		$(VENV)/bin/python scripts/test_matrix.py $(PG_VERSIONS) $(if $(PYTEST_ARGS),-- $(PYTEST_ARGS))

format: venv
	$(VENV)/bin/ruff format src tests scripts bench
	$(VENV)/bin/ruff check --fix src tests scripts bench

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis

docs: venv
	$(VENV)/bin/python scripts/schema_doc.py "$$(scripts/ensure-postgres.sh)"

bench: venv
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(VENV)/bin/python bench/bench.py "$$(scripts/ensure-postgres.sh)" $(BENCH_ARGS)
	$(VENV)/bin/python bench/fleet.py "$$(scripts/ensure-postgres.sh)" $(FLEET_ARGS)

# Only the fleet benchmark (200 databases, --jobs 1, 4 and 16).
bench-fleet: venv
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(VENV)/bin/python bench/fleet.py "$$(scripts/ensure-postgres.sh)" $(FLEET_ARGS)

chaos: venv
	$(VENV)/bin/python bench/chaos.py "$$(scripts/ensure-postgres.sh)" $(CHAOS_ARGS)

psql-fuzz: venv
	$(VENV)/bin/python bench/psql_fuzz.py "$$(scripts/ensure-postgres.sh)" $(FUZZ_ARGS)
