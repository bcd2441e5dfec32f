# o2o — two commands for a new machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCK_HASH := $(shell sha1sum requirements.lock | cut -c1-12)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
NPM_STAMP := node_modules/.installed-$(shell sha1sum package-lock.json | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install browser services migrate demo test screenshots bench faults down reset messages

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

# Chromium for the browser tests: installed from the OS packages when run as root with apt-get,
# otherwise one line saying what to run, and `make test` stops before running anything.
browser:
	@scripts/provision-browser

# Starts the private PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set, and says which are in use.
services: install
	@$(BIN)/python -m o2o.embedded up

migrate: services
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(BIN)/python -m o2o.demo

# The slow fault-injection scenarios run under `make faults`; the fast ones are part of the suite.
# Screenshots the tests take go to build/screenshots/ (ignored); `make screenshots` refreshes the
# ones in docs/screenshots/.
test: browser services
	$(BIN)/python -m o2o.testrun -m "not faults" $(PYTEST_ARGS)

screenshots: browser services
	O2O_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m o2o.testrun -m browser \
	  pos/tests/test_browser.py reporting/tests/test_browser.py $(PYTEST_ARGS)

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
