# The single window: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
export PYTHONPATH := $(CURDIR)

.PHONY: install up down demo test test-unit test-e2e bench chaos status clean dead-letters

install:            ## Python dependencies (pinned by constraints.txt)
	$(PYTHON) -m pip install -q -c constraints.txt -e '.[test,bench]'

up:                 ## broker + every service in the background, SQLite files under .run/
	$(PYTHON) -m deploy.mesh up

down:               ## stop what `make up` started; data stays under .run/
	$(PYTHON) -m deploy.mesh down

status:
	$(PYTHON) -m deploy.mesh status

demo: up            ## a few hundred realistic orders through the gateway, then what every agency decided
	$(PYTHON) -m deploy.demo

test:               ## everything: unit tests, then integration and end-to-end on real Kafka and PostgreSQL
	$(PYTHON) -m pytest -q -ra

test-unit:
	$(PYTHON) -m pytest -q tests/unit

dead-letters:       ## dead letters per service and what became of them; make dead-letters ARGS="replay --service tax --all"
	$(PYTHON) -m shared.deadletters $(or $(ARGS),list)

bench:             ## its own broker, durable PostgreSQL and SQLite meshes, load generator and ceilings (docs/benchmarks.md)
	$(PYTHON) -m bench

chaos:             ## the fault suite on its own broker, durable PostgreSQL and mesh: nothing lost, nothing doubled (docs/chaos.md)
	$(PYTHON) -m chaos

clean: down
	rm -rf .run
