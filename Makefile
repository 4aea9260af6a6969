# The single window: two commands on a fresh machine — `make demo` and `make test`.
# Every target runs in the project's virtual environment (.venv). deploy/setup.sh makes it, with the Debian
# packages and downloads each purpose needs, on first use; the stamps below make that a no-op the next time,
# until one of SETUP_INPUTS changes.
PYTHON := .venv/bin/python
export PYTHONPATH := $(CURDIR)
SETUP_INPUTS := deploy/setup.sh pyproject.toml constraints.txt deploy/kafka/pom.xml
DEMO_READY := .venv/.setup-demo
TEST_READY := .venv/.setup-test

.PHONY: install up down demo test test-unit test-e2e bench chaos status clean dead-letters

$(DEMO_READY): $(SETUP_INPUTS)
	deploy/setup.sh demo

$(TEST_READY): $(SETUP_INPUTS)
	deploy/setup.sh test

install:            ## set everything up again, whatever the stamps say (deploy/setup.sh)
	deploy/setup.sh test

up: $(DEMO_READY)   ## broker + every service in the background, SQLite files under .run/
	$(PYTHON) -m deploy.mesh up

down: $(DEMO_READY) ## stop what `make up` started; data stays under .run/
	$(PYTHON) -m deploy.mesh down

status: $(DEMO_READY)
	$(PYTHON) -m deploy.mesh status

demo: up            ## a few hundred realistic orders through the gateway, then what every agency decided
	$(PYTHON) -m deploy.demo

test: $(TEST_READY) ## everything: unit tests, then integration and end-to-end on real Kafka and PostgreSQL
	$(PYTHON) -m pytest -q -ra

test-unit: $(TEST_READY)
	$(PYTHON) -m pytest -q tests/unit

dead-letters: $(DEMO_READY) ## dead letters per service and what became of them; make dead-letters ARGS="replay --service tax --all"
	$(PYTHON) -m shared.deadletters $(or $(ARGS),list)

bench: $(TEST_READY) ## its own broker, durable PostgreSQL and SQLite meshes, load generator and ceilings (docs/benchmarks.md)
	$(PYTHON) -m bench

chaos: $(TEST_READY) ## the fault suite on its own broker, durable PostgreSQL and mesh: nothing lost, nothing doubled (docs/chaos.md)
	$(PYTHON) -m chaos

clean: down
	rm -rf .run
