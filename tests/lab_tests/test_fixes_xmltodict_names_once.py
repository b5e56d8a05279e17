"""The lab's own cost per answer, which lands on the controller's cores where AWS's never does: xmltodict checked
every element name of every answer moto writes, character by character (tests/lab/fixes/xmltodict_names_once.py).
A name that passed is not checked again; the XML written is the same, and a bad name still fails."""

import pytest
import xmltodict

from tests.lab import fixes
from tests.lab.fixes import xmltodict_names_once

DOCUMENT = {"DescribeNetworkInterfacesResponse": {
    "@xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
    "networkInterfaceSet": {"item": [{"networkInterfaceId": f"eni-{n:017x}", "groupSet": {"item": [
        {"groupId": "sg-0123456789abcdef0", "groupName": "cloudsec-isolation"}]}} for n in range(40)]}}}


def test_names_are_checked_once_and_the_xml_is_the_same(monkeypatch):
    fixes.apply_all()
    assert xmltodict._validate_name is xmltodict_names_once.validate_name
    with monkeypatch.context() as unfixed:
        unfixed.setattr(xmltodict, "_validate_name", xmltodict_names_once._validate_name)
        expected = xmltodict.unparse(DOCUMENT)

    checked = []
    monkeypatch.setattr(xmltodict_names_once, "_validate_name", lambda *args: checked.append(args))
    xmltodict_names_once._checked.clear()
    assert xmltodict.unparse(DOCUMENT) == expected and "eni-00000000000000027" in expected
    names = {"DescribeNetworkInterfacesResponse", "networkInterfaceSet", "item", "networkInterfaceId", "groupSet",
             "groupId", "groupName"}
    assert sorted(checked) == sorted([(name, "element") for name in names] + [("xmlns", "attribute")])
    assert xmltodict.unparse(DOCUMENT) == expected and len(checked) == len(names) + 1  # all remembered

    monkeypatch.undo()
    for _twice in range(2):
        with pytest.raises(ValueError, match="whitespace not allowed"):
            xmltodict.unparse({"bad name": "x"})
