# cloudsec.guardduty: `make demo` and `make test` work on a fresh clone (Python 3.11, PyPI reachable).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := .build/collections/ansible_collections/cloudsec/guardduty
PYTEST_WORKERS ?= 2
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help bootstrap demo lab test sanity units lab-tests integration molecule lint changelog-lint bench bench-inventory lock clean

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

# ansible-test in a built tree (.build/ansible-test/ansible_collections/...): see tests/tooling/ansible_test.sh,
# which also lists the sanity tests that are skipped and why. ARGS passes options to ansible-test.
units: bootstrap
	bash tests/tooling/ansible_test.sh units $(ARGS)

sanity: bootstrap
	bash tests/tooling/ansible_test.sh sanity $(ARGS)

# Every scenario in extensions/molecule/ against one lab started and stopped by the script
# (extensions/molecule/README.md: how to add one). MOLECULE_ARGS="-s NAME" runs one scenario.
molecule: bootstrap
	bash tests/tooling/molecule.sh $(MOLECULE_ARGS)

# ansible-lint (production profile, offline: .ansible-lint), the changelog fragments, all YAML (.yamllint)
lint: bootstrap
	$(BIN)/yamllint --strict .
	$(BIN)/antsibull-changelog lint
	$(BIN)/ansible-lint

bench: bootstrap bench-inventory

# The GuardDuty inventory beside amazon.aws.aws_ec2 on a generated lab (10,000 findings, 2 accounts x 4 regions):
# printed as a ratio, written to .build/bench/inventory.json. BENCH_ARGS="--findings 2000 --rounds 1" for a quick one.
bench-inventory: bootstrap
	$(BIN)/python -m tests.bench.bench_inventory $(BENCH_ARGS)

lock: $(BIN)/.installed
	{ echo "# pip constraints: the full set resolved from requirements.txt on Python 3.11 (regenerate: make lock)"; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock

clean:
	rm -rf .build
