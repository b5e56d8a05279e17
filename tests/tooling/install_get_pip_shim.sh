#!/usr/bin/env bash
# Put tests/tooling/get_pip_shim.py where ansible-test looks for its cached get-pip script
# (~/.ansible/test/cache/get_pip_<pip version>.py, see ansible_test/_util/target/setup/requirements.py),
# for the pip version this ansible-test pins (ansible_test/_internal/python_requirements.py).
# Usage: install_get_pip_shim.sh PYTHON   (the .venv python that has ansible-test)
set -euo pipefail
python=${1:-.venv/bin/python}
here=$(cd "$(dirname "$0")" && pwd)
pip_version=$("$python" - <<'PY'
from types import SimpleNamespace
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(SimpleNamespace(version="3.11"))["pip"])
PY
)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
target="$cache/get_pip_${pip_version//./_}.py"
# a real get-pip.py someone saved by hand is left alone
if [[ ! -f "$target" ]] || grep -q "Offline stand-in for the get-pip.py" "$target"; then
    cp "$here/get_pip_shim.py" "$target"
fi
