"""The lab's own cost per call, which lands on the controller's cores where AWS's never does: moto's dispatcher
listed its package directory and inspected the response class on every request (28% of the lab's CPU per EC2
call). Each is read once, with the same answers (tests/lab/fixes/moto_dispatch_once.py)."""

import inspect
import os

from moto import backends
from moto.core import responses
from moto.ec2.responses import EC2Response

from tests.lab import fixes
from tests.lab.fixes import moto_dispatch_once


def test_a_request_lists_no_directory_and_inspects_no_class_after_the_first(monkeypatch):
    fixes.apply_all()
    listed = set(moto_dispatch_once._listed_moto_modules())
    handlers = set(moto_dispatch_once._listed_method_names(EC2Response))
    backends.list_of_moto_modules(), responses.method_names_from_class(EC2Response)  # the first request

    reads = {"listdir": 0, "getmembers": 0}
    listdir, getmembers = os.listdir, inspect.getmembers

    def counted_listdir(*args):
        reads["listdir"] += 1
        return listdir(*args)

    def counted_getmembers(*args, **kwargs):
        reads["getmembers"] += 1
        return getmembers(*args, **kwargs)

    monkeypatch.setattr(os, "listdir", counted_listdir)
    monkeypatch.setattr(inspect, "getmembers", counted_getmembers)
    for _request in range(20):
        assert set(backends.list_of_moto_modules()) == listed and {"ec2", "guardduty", "sts"} <= listed
        method_names = responses.method_names_from_class(EC2Response)
        assert set(method_names) == handlers and "modify_network_interface_attribute" in method_names
    assert reads == {"listdir": 0, "getmembers": 0}
