# The two commands a user needs:  make demo  (run the product on the simulator)  and  make test.
SHELL := /bin/bash
# Python 3.12: Django 5.2 LTS supports it, and pyenv's 3.12 build parses floats ~3x faster than
# its 3.11/3.13 builds on these machines (order-book replay is float-parsing bound).
PYTHON ?= $(shell for p in $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3.12 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= config.settings

.PHONY: venv services migrate setup demo test test-fast test-slow bench clean-venv

$(VENV)/.installed: requirements.txt
	@test -n "$(PYTHON)" || { echo "No Python 3.11+ found: install Python 3.12 (or set PYTHON=/path/to/python3.12)." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# The order book's C extension (collectors/_book.c), rebuilt when its source changes.
venv: $(VENV)/.installed
	@$(PY) scripts/build_ext.py

services: venv
	@PY=$(PY) bash scripts/ensure_services.sh

migrate: services
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0

setup: migrate

demo: setup
	$(PY) scripts/run_all.py

test: services
	@bash scripts/ensure_system_packages.sh
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-fast: services
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
	@echo "Results: docs/benchmarks.md"

clean-venv:
	rm -rf $(VENV)

test-slow: services
	@bash scripts/ensure_system_packages.sh
	$(PY) -m pytest -m slow $(PYTEST_ARGS)
