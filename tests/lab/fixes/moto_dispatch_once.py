"""moto's per-request work whose answer depends only on the installed moto, done once.

AWS's own work to answer a call is not on the caller's machine; the lab's is, on the controller's cores, and every
benchmark counts it. moto 5.2.5 does two things again on every request that always give the same answer:
- its server's dispatcher lists moto's package directory (os.listdir, and an isdir for each of about 150 entries) to
  see whether a host names a moto module, holding the dispatcher's lock, which every request waits on: 9% of the
  lab's CPU per EC2 call;
- BaseResponse.call_action lists the response class's functions (inspect.getmembers) to see whether the action has
  a handler: 19%.
Both answers are kept: the modules once per process, the functions once per response class (read at its first
request, after every fix here is applied).
"""

import functools

from moto import backends
from moto.core import responses

_listed_moto_modules = backends.list_of_moto_modules
_listed_method_names = responses.method_names_from_class


@functools.cache
def _moto_modules():
    return tuple(_listed_moto_modules())


def list_of_moto_modules():
    return iter(_moto_modules())  # moto's is a generator


@functools.cache
def _method_names(clazz):
    return frozenset(_listed_method_names(clazz))


def method_names_from_class(clazz):
    return _method_names(clazz)  # read with `in` only (BaseResponse.call_action)


def apply():
    backends.list_of_moto_modules = list_of_moto_modules
    responses.method_names_from_class = method_names_from_class
