#!/usr/bin/env bash
# `make sanity` / `make units`: ansible-test from the pinned ansible-core in .venv, offline apart from PyPI.
#   tests/tooling/ansible_test.sh sanity [extra ansible-test args]
#   tests/tooling/ansible_test.sh units  [extra ansible-test args]
#
# ansible-test needs the collection at .../ansible_collections/cloudsec/guardduty with its
# dependencies in the same ansible_collections root: build_tree.sh lays that out under
# .build/ansible-test/. Each sanity test with requirements (and the units venv) is a venv that
# ansible-test creates and fills from its own exact pins (ansible_test/_data/requirements/sanity.*.txt,
# fixed by the ansible-core pin in requirements.lock; units: tests/unit/constraints.txt). Those
# venvs are cached (~/.ansible/test/venv/ for sanity, the built tree's tests/output/.tmp/ for units),
# so only the first run on a machine downloads from PyPI. Bootstrapping pip in them would download
# get-pip.py from a host this project cannot reach: install_get_pip_shim.sh puts a local stand-in
# in ansible-test's cache instead.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv="$repo/.venv"
export PATH="$venv/bin:$PATH"
command=${1:?usage: ansible_test.sh sanity|units [ansible-test args]}
shift

# One run at a time per checkout: the tree is rebuilt in place, and a second run rebuilding it would
# pull files from under the first (ansible-test inherits the lock and holds it until it exits)
mkdir -p "$repo/.build"
exec 9>"$repo/.build/ansible-test.lock"
flock 9

bash "$repo/tests/tooling/install_get_pip_shim.sh" "$venv/bin/python"
collection=$(bash "$repo/tests/tooling/build_tree.sh" "$venv")
cd "$collection"

case $command in
sanity)
    # Every sanity test ansible-test has for a collection, on the one Python the collection
    # supports here (3.11: compile and import would otherwise be tried, and skipped, on every
    # Python ansible-core supports), except:
    #   pslint     - PowerShell; the collection has no PowerShell, and pwsh is not installed.
    #   shellcheck - needs the shellcheck binary, which neither requirements.txt nor the machine
    #                provides; the only shell is this tooling, and it is not shipped content.
    exec ansible-test sanity --python 3.11 --skip-test pslint --skip-test shellcheck "$@"
    ;;
units)
    # --venv: a venv managed by ansible-test with ansible-test's units requirements plus
    # tests/unit/requirements.txt, pinned by tests/unit/constraints.txt (not the shared .venv).
    exec ansible-test units --venv --python 3.11 "$@"
    ;;
*)
    echo "unknown command: $command (sanity|units)" >&2
    exit 2
    ;;
esac
