# cloudsec.guardduty: `make demo` and `make test` work on a fresh clone (Python 3.11, PyPI reachable).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := .build/collections/ansible_collections/cloudsec/guardduty
PYTEST_WORKERS ?= 2
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help bootstrap browser demo lab test sanity units lab-tests integration molecule lint changelog-lint bench bench-inventory bench-isolate bench-conversion bench-rulebook bench-slicing bench-org bench-overhead docs lock clean

help:
	@echo "make demo   - start the lab (demo scenario), run the main job against it, show what it did"
	@echo "make test   - every test suite: sanity, units, lab, integration, molecule, lint, reference docs"
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

# Debian's Chromium for the report's browser test (apt-get, as root)
browser:
	bash tests/tooling/install_chromium.sh

SCENARIO ?= demo
PORT ?= 4566
lab: bootstrap
	$(BIN)/python -m tests.lab --port $(PORT) --scenario $(SCENARIO)

demo: bootstrap
	$(BIN)/python -m tests.lab.demo

test: bootstrap browser
	@echo "== sanity";      $(MAKE) --no-print-directory sanity
	@echo "== units";       $(MAKE) --no-print-directory units
	@echo "== lab";         $(MAKE) --no-print-directory lab-tests
	@echo "== integration"; $(MAKE) --no-print-directory integration
	@echo "== molecule";    $(MAKE) --no-print-directory molecule
	@echo "== lint";        $(MAKE) --no-print-directory lint

lab-tests: bootstrap
	$(BIN)/python -m pytest -p tests.lab.pytest_plugin -n $(PYTEST_WORKERS) tests/lab_tests

# --dist loadfile: a file's module-scoped fixtures (a whole playbook run sequence) run once, on one worker
integration: bootstrap browser
	$(BIN)/python -m pytest -p tests.lab.pytest_plugin -n $(PYTEST_WORKERS) --dist loadfile --durations=15 tests/integration_lab

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
	$(BIN)/python -m tests.tooling.reference_docs --check

# docs/reference/: one page per module, plugin and role, generated from their documentation (ansible-doc)
docs: bootstrap
	$(BIN)/python -m tests.tooling.reference_docs

bench: bootstrap bench-inventory bench-isolate bench-overhead bench-conversion bench-rulebook bench-slicing bench-org

# The GuardDuty inventory beside amazon.aws.aws_ec2 on a generated lab (10,000 findings, 2 accounts x 4 regions):
# printed as a ratio, written to .build/bench/inventory.json. BENCH_ARGS="--findings 2000 --rounds 1" for a quick one.
bench-inventory: bootstrap
	$(BIN)/python -m tests.bench.bench_inventory $(BENCH_ARGS)

# Cloud Custodian pins its own boto3: it lives in its own venv, from the exact versions tested.
BENCH_VENV := .build/bench-venv
$(BENCH_VENV)/.installed: tests/bench/requirements-c7n.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV) || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r tests/bench/requirements-c7n.txt
	touch $@

# Network containment of N instances (1-3 ENIs, 2 accounts x 2 regions): the isolate playbook (evidence off
# and on), ec2_isolation per batch, Cloud Custodian and a naive amazon.aws.ec2_eni playbook on the same lab,
# then ours under EC2's token buckets beside their floor; CPU/RSS of the controller. Printed as ratios,
# written to .build/bench/isolate.json (docs/benchmarks.md). BENCH_ISOLATE_ARGS="--sizes 50 --quick" is short.
BENCH_ISOLATE_ARGS ?= $(BENCH_ARGS)
bench-isolate: bootstrap $(BENCH_VENV)/.installed
	$(BIN)/python -m tests.bench.bench_isolate $(BENCH_ISOLATE_ARGS)

# The run's own overhead, the lab answering at once: N = 200 (396 ENIs), the isolate playbook, ec2_isolation per
# batch and per account (module_accounts: one process per account, as Custodian's) and Custodian, five interleaved rounds; each ratio per round and as the median of the rounds, with their
# range (one round on a shared 2-core machine moves by 20%): .build/bench/overhead.json (docs/benchmarks.md).
BENCH_OVERHEAD_ARGS ?= --repeat 5
bench-overhead: bootstrap $(BENCH_VENV)/.installed
	$(BIN)/python -m tests.bench.bench_isolate --sizes 200 --contenders playbook_network,module,module_accounts,c7n \
	  --out .build/bench/overhead.json $(BENCH_OVERHEAD_ARGS)

# Time each ENI spends on the all-traffic conversion group (median, p99, max) under 10% throttling + 2% 5xx,
# with and without AWS-like answer times: .build/bench/conversion.json (docs/benchmarks.md).
BENCH_CONVERSION_ARGS ?= $(BENCH_ARGS)
bench-conversion: bootstrap
	$(BIN)/python -m tests.bench.bench_conversion $(BENCH_CONVERSION_ARGS)

# Seconds from a GuardDuty finding on the SQS queue to its instance contained, through the real ansible-rulebook
# (Java 17) on the lab; printed, written to .build/bench/rulebook.json. BENCH_RULEBOOK_ARGS="--rounds 1" is short.
bench-rulebook: bootstrap
	$(BIN)/python -m tests.bench.bench_rulebook $(BENCH_RULEBOOK_ARGS)

# AWX job slicing on one machine: the isolate playbook as K = 1, 2, 4 slices (K ansible-playbook at once, AWX's
# slices of the same N = 200 instances, one S3 incident store), the lab answering at AWS-like times; wall times
# and speed-ups printed side by side, written to .build/bench/slicing.json (docs/awx.md). BENCH_SLICING_ARGS="--size 50".
BENCH_SLICING_ARGS ?= $(BENCH_ARGS)
bench-slicing: bootstrap
	$(BIN)/python -m tests.bench.bench_slicing $(BENCH_SLICING_ARGS)

# An organization: 5,000 compromised instances over 20 accounts x 4 regions under EC2's buckets (per account and
# region) and AWS-like answer times; our inventory + isolate playbook beside Custodian run as c7n-org runs it, with
# the buckets' floor, controller memory and Ansible's per-host cost: .build/bench/org.json (docs/benchmarks.md).
# BENCH_ORG_ARGS="--instances 500 --accounts 4 --regions 2" is a development size.
BENCH_ORG_ARGS ?=
bench-org: bootstrap $(BENCH_VENV)/.installed
	$(BIN)/python -m tests.bench.bench_org $(BENCH_ORG_ARGS)

lock: $(BIN)/.installed
	{ echo "# pip constraints: the full set resolved from requirements.txt on Python 3.11 (regenerate: make lock)"; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock

clean:
	rm -rf .build
