"""An XML element's name checked once, not for every element of every answer.

AWS's own work to answer a call is not on the caller's machine; the lab's is, on the controller's cores, and every
benchmark counts it. moto writes its XML answers with xmltodict, whose `unparse` (0.14 and later) checks every element
and attribute name it writes, character by character (`_validate_name`): the same few hundred names of the EC2 model,
again for every instance, interface and group of every answer, 10% of the lab's CPU while an organization's instances
are isolated (py-spy, GIL-holding samples).

A name that passed is remembered and not checked again; a name that fails still fails every time, with xmltodict's
own error.
"""

import xmltodict

_NAMES_MAX = 10_000
_checked = set()
_validate_name = xmltodict._validate_name


def validate_name(value, kind):
    if (value, kind) in _checked:
        return
    _validate_name(value, kind)
    if isinstance(value, str) and len(_checked) < _NAMES_MAX:
        _checked.add((value, kind))


def apply():
    xmltodict._validate_name = validate_name
