# o2o — two commands for a new machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCK_HASH := $(shell sha1sum requirements.lock | cut -c1-12)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
NPM_STAMP := node_modules/.installed-$(shell sha1sum package-lock.json | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install services migrate demo test bench faults down reset messages

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	@rm -f $(VENV)/.installed-* && touch $@

# htmx for the POS pages, from the npm lock file (served through Django's staticfiles).
$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(STAMP) $(NPM_STAMP)

# Starts the private PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set, and says which are in use.
services: install
	@$(BIN)/python -m o2o.embedded up

migrate: services
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(BIN)/python -m o2o.demo

# The slow fault-injection scenarios run under `make faults`; the fast ones are part of the suite.
test: services
	$(BIN)/python -m o2o.testrun -m "not faults" $(PYTEST_ARGS)

bench: migrate
	$(BIN)/python -m bench.run

faults: services
	$(BIN)/python -m o2o.testrun -m faults $(PYTEST_ARGS)

messages: install
	cd $(CURDIR) && $(BIN)/python manage.py makemessages -l zh_Hans -l en --ignore=.venv --ignore=node_modules \
	  && $(BIN)/python manage.py compilemessages --ignore=.venv

down:
	@$(BIN)/python -m o2o.embedded down

reset:
	@$(BIN)/python -m o2o.embedded reset
