#!/usr/bin/env bash
# Debian's Chromium for the report's browser test (tests/integration_lab/test_report_browser.py): `make test` runs
# this first. Browser downloads by Playwright and the like are unreachable here; Debian's package is not.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "Chromium is missing and this user cannot install it: run 'apt-get update && apt-get install -y chromium' as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --version
