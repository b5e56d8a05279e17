#!/usr/bin/env bash
# `make molecule`: every scenario under extensions/molecule/ against one lab, started here and
# always stopped (trap). Extra arguments go to `molecule test` (default: --all), e.g. `-s default`.
# See extensions/molecule/README.md for how to add a scenario.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# one run at a time per checkout: molecule keeps each scenario's state under ~/.cache/molecule/
mkdir -p .build
exec 9>.build/molecule.lock
flock 9
python="$repo/.venv/bin/python"
export PATH="$repo/.venv/bin:$PATH"

lab_log=$(mktemp)
# the records isolate writes and release reads (prepare isolates, converge releases): never the user's ~
incident_store=$(mktemp -d)
export CLOUDSEC_GUARDDUTY_INCIDENT_STORE="$incident_store"
"$python" -m tests.lab --port 0 --scenario demo >"$lab_log" 2>&1 &
lab_pid=$!
stop_lab() {
    kill "$lab_pid" 2>/dev/null || true
    wait "$lab_pid" 2>/dev/null || true
    rm -f "$lab_log"
    rm -rf "$incident_store"
}
trap stop_lab EXIT

endpoint=
for _ in $(seq 1 1200); do  # the lab prints "LAB READY http://127.0.0.1:PORT" once the scenario is loaded
    endpoint=$(sed -n 's/^LAB READY //p' "$lab_log")
    [[ -n $endpoint ]] && break
    if ! kill -0 "$lab_pid" 2>/dev/null; then
        echo "the lab exited before it was ready:" >&2
        cat "$lab_log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $endpoint ]]; then
    echo "the lab was not ready after 120 s:" >&2
    cat "$lab_log" >&2
    exit 1
fi
echo "lab: $endpoint"

export LAB_URL="$endpoint" AWS_URL="$endpoint"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
# molecule writes its own ansible.cfg, so the repo's collections_path is passed by environment
export ANSIBLE_COLLECTIONS_PATH="$repo/.build/collections"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1

if (($# == 0)); then
    set -- --all
fi
molecule test "$@"
