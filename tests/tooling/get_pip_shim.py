# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py that ansible-test downloads to bootstrap pip.

ansible-test creates each sanity/units virtual environment with `venv --without-pip`, then runs
`python ~/.ansible/test/cache/get_pip_X_Y.py [pip options] pip==X.Y --no-setuptools --no-wheel`.
The real script comes from a host this project cannot reach; tests/tooling/install_get_pip_shim.sh
puts this file at that cache path instead. It seeds pip from the interpreter's bundled wheel
(ensurepip, no network), then lets that pip install the exact version ansible-test asked for from
the ordinary package index (or pip's cache).
"""

import subprocess
import sys

FLAGS_FOR_GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main(argv):
    pip_args = [arg for arg in argv if arg not in FLAGS_FOR_GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + pip_args)
    if "--no-setuptools" in argv:
        # ensurepip on Python < 3.12 also installs setuptools; get-pip would not have
        subprocess.call([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
