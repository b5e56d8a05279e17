"""Where moto differs from AWS in ways this collection depends on, make it behave like AWS.

Each module here patches one area and has an `apply()`; each fix names the AWS behaviour it
restores, and tests/lab_tests/ states that behaviour as a test. `apply_all()` applies every module.
"""

import importlib
import pkgutil

_applied = False


def apply_all():
    global _applied
    if _applied:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}").apply()
    _applied = True
