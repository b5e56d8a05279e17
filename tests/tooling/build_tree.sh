#!/usr/bin/env bash
# Lay out the collection the way ansible-test needs it:
#   .build/ansible-test/ansible_collections/cloudsec/guardduty  a copy of the shipped content
#   .build/ansible-test/ansible_collections/amazon/aws         link to the pinned amazon.aws in .venv
# and print the collection's path. A copy (not a link back to the repo) because ansible-test
# writes tests/output/ into it and walks every file under it; the copy is refreshed each run so
# deleted files do not linger. Usage: build_tree.sh [VENV]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$repo/.venv}
root="$repo/.build/ansible-test/ansible_collections"
dest="$root/cloudsec/guardduty"
amazon_aws=$(ls -d "$venv"/lib/python3*/site-packages/ansible_collections/amazon/aws | head -n1)

mkdir -p "$root/amazon" "$dest"
ln -sfn "$amazon_aws" "$root/amazon/aws"
# keep tests/output (ansible-test's cache of results) between runs, replace everything else
find "$dest" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} + 2>/dev/null || true
# what is not shipped: the venv, build output, VCS data, the lab and its tests, caches, local reports
tar -C "$repo" -cf - \
    --exclude=./.venv --exclude=./.build --exclude=./.git \
    --exclude=./tests/lab --exclude=./tests/lab_tests --exclude=./tests/integration_lab \
    --exclude=./tests/output --exclude=./reports --exclude=./evidence \
    --exclude=__pycache__ --exclude='*.pyc' --exclude=.pytest_cache --exclude=.cache \
    . | tar -C "$dest" -xf -
# ansible-test lists content with git when it finds a .git at or above the collection, and it would
# find the repo's own (where .build/ is ignored, so "All targets skipped"): give the copy its own
# empty repository, whose untracked, non-ignored files are exactly what was copied
git -C "$dest" init --quiet
echo "$dest"
