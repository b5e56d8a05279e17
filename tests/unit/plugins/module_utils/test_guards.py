import ipaddress

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards


@pytest.mark.parametrize("value", ["INC-42", "gd-20240101", "IR_2024.0042", "a", 42, "A" * 128])
def test_good_incident_ids(value):
    assert guards.incident_id_problem(value) is None


@pytest.mark.parametrize("value, text", [
    ("", "is not a valid incident id"),
    ("INC 42", "is not a valid incident id"),
    ('"INC-42"', "is not a valid incident id"),       # quoted twice: the quotes reached the value
    ("'INC-42'", "is not a valid incident id"),
    ("../etc", "is not a valid incident id"),
    ("INC/42", "is not a valid incident id"),
    (".hidden", "is not a valid incident id"),
    ("-rf", "is not a valid incident id"),
    ("A" * 129, "is not a valid incident id"),
    ("INC-42\n", "is not a valid incident id"),
    (None, "must be a string"),
    (True, "must be a string"),
    (["INC-42"], "must be a string"),
])
def test_bad_incident_ids_are_named_with_the_rule(value, text):
    problem = guards.incident_id_problem(value)
    assert problem and text in problem and problem.startswith("incident_id"), problem
    if isinstance(value, str) and value:
        assert "letters, digits" in problem


@pytest.mark.parametrize("name, text", [
    ("x" * 256, "256 characters long; AWS accepts at most 255"),
    ("sg-isolation", "starts with 'sg-'"),
    ("SG-isolation", "starts with 'sg-'"),
    ("", "non-empty"),
    ("isolation\u00e9", "characters AWS refuses"),
    ("iso<lation>", "characters AWS refuses"),
])
def test_group_names_aws_refuses(name, text):
    assert text in guards.group_name_problem(name, "isolation_group_name")


@pytest.mark.parametrize("name", ["guardduty-isolation", "x" * 255, "a b ._-:/()#,@[]+=&;{}!$*", "my-sg-group"])
def test_group_names_aws_accepts(name):
    assert guards.group_name_problem(name) is None


@pytest.mark.parametrize("value, problem", [(0, None), (900, None), ("30", None), (-1, "it must be >= 0"),
                                            ("-5", "it must be >= 0"), ("soon", "whole number"), (True, "whole number")])
def test_wait_timeouts(value, problem):
    found = guards.non_negative_problem(value, "wait_timeout")
    assert found == problem if problem is None else problem in found


def test_positive_counts():
    assert guards.positive_problem(1, "max_concurrency") is None
    assert "must be >= 1" in guards.positive_problem(0, "max_concurrency")


@pytest.mark.parametrize("icmp_type, icmp_code, problem", [
    (-1, -1, None), (8, 0, None), (3, -1, None), (255, 255, None),
    (256, 0, "ICMP type 256 is not within -1 (all) to 255"),
    (8, 256, "ICMP code 256 is not within"),
    (-2, -1, "ICMP type -2"),
    (-1, 0, "with type -1 (all types) the code must be -1 too"),
])
def test_icmp_type_and_code_ranges_as_ec2_accepts_them(icmp_type, icmp_code, problem):
    found = guards.icmp_problem(icmp_type, icmp_code, "allowed_access[0]")
    assert found == problem if problem is None else problem in found


@pytest.mark.parametrize("cidr, acknowledged, text", [
    ("10.1.2.3/32", False, None),
    ("192.168.10.0/24", False, None),
    ("172.16.0.0/16", False, None),
    ("fd00:1::/64", False, None),
    ("10.0.0.0/8", False, "broader than /16"),
    ("10.0.0.0/8", True, None),
    ("203.0.113.5/32", False, "not a private range"),
    ("203.0.113.5/32", True, None),
    ("2001:db8::/64", False, "not a private range"),
    ("0.0.0.0/1", False, "broader than /8"),
    ("128.0.0.0/1", True, "refused even with the acknowledgement"),
    ("::/1", True, "refused even with the acknowledgement"),
    ("0.0.0.0/0", True, "open to everyone"),
    ("::/0", True, "open to everyone"),
    ("100.64.0.0/16", False, "not a private range"),
])
def test_examiner_ranges(cidr, acknowledged, text):
    found = guards.cidr_problem(ipaddress.ip_network(cidr), acknowledged, "allowed_access[0]")
    if text is None:
        assert found is None
    else:
        assert text in found and found.startswith("allowed_access[0]: cidr")
        if "private" in text or "/16" in text:
            assert "allowed_access_acknowledge_public: true" in found


def test_examiner_access_kept_by_a_run_that_only_adds_rules():
    assert guards.kept_examiner_access(("ingress", "tcp", 22, 22, "cidr4", "10.9.9.9/32"))
    assert guards.kept_examiner_access(("ingress", "tcp", 22, 22, "cidr4", "203.0.113.5/32"))   # acknowledged by its run
    assert not guards.kept_examiner_access(("egress", "-1", None, None, "cidr4", "0.0.0.0/0"))
    assert not guards.kept_examiner_access(("ingress", "-1", None, None, "cidr6", "::/1"))
    assert not guards.kept_examiner_access(("ingress", "tcp", 22, 22, "group", "sg-0123456789abcdef0"))
    assert not guards.kept_examiner_access(("ingress", "tcp", 22, 22, "prefix", "pl-0123"))
