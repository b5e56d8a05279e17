"""The isolation plan: described state in, ordered calls out."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import isolation as iso

NAMES = {iso.ISOLATION: "guardduty-isolation", iso.CONVERSION: "guardduty-isolation-conversion"}
NOW = "2024-01-01T00:00:00Z"


def sg(n):
    return f"sg-{n:017x}"


def nic(eni_id, vpc="vpc-1", groups=(sg(1),), index=0, tags=None, interface_type="interface", managed=False):
    return {"network_interface_id": eni_id, "vpc_id": vpc, "device_index": index, "security_groups": list(groups),
            "interface_type": interface_type, "requester_managed": managed, "tags": dict(tags or {})}


def stored(vpc="vpc-1", **enis):
    """The instance's "network" record in the incident store: stored(eni_a=[...]) for eni-a."""
    return {"enis": {k.replace("_", "-"): {"groups": list(v), "vpc_id": vpc} for k, v in enis.items()}}


def existing_groups(vpc="vpc-1"):
    return {(vpc, iso.CONVERSION): "sg-conv", (vpc, iso.ISOLATION): "sg-iso"}


def described_group(group_id, name, role, vpc="vpc-1", ingress=(), egress=()):
    return iso.group_view({"GroupId": group_id, "GroupName": name, "VpcId": vpc,
                           "Tags": [{"Key": iso.TAG_GROUP_ROLE, "Value": role}] if role else [],
                           "IpPermissions": list(ingress), "IpPermissionsEgress": list(egress)})


ALL = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}


# -- record ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 5, 12, 13, 16])
def test_record_round_trips_within_the_tag_limit(count):
    groups = [sg(i) for i in range(count)]
    tags = iso.encode_record(groups)
    assert all(len(v) <= iso.TAG_VALUE_MAX for v in tags.values())
    assert iso.decode_record(dict(tags, Name="x")) == groups


def test_sixteen_groups_need_two_parts():
    tags = iso.encode_record([sg(i) for i in range(16)])
    assert list(tags) == [iso.RECORD_TAG, iso.RECORD_TAG + ":2"]
    assert iso.record_tag_keys(dict(tags, Other="y")) == list(tags)


def test_records_of_the_earlier_shape_still_decode():
    # guardduty:original-groups = number of parts, then comma-separated ids in :1, :2 (this version before the store)
    tags = {iso.RECORD_TAG: "2", iso.RECORD_TAG + ":1": f"{sg(1)},{sg(2)}", iso.RECORD_TAG + ":2": sg(3)}
    assert iso.decode_record(tags) == [sg(1), sg(2), sg(3)]
    assert iso.record_tag_keys(tags) == [iso.RECORD_TAG, iso.RECORD_TAG + ":1", iso.RECORD_TAG + ":2"]


def test_incomplete_or_missing_record():
    tags = iso.encode_record([sg(i) for i in range(16)])
    del tags[iso.RECORD_TAG + ":2"]
    with pytest.raises(iso.PlanError, match="unreadable"):
        iso.decode_record(tags)
    with pytest.raises(iso.PlanError, match="incomplete"):
        iso.decode_record({iso.RECORD_TAG + ":2": "x"})
    assert iso.decode_record({"Name": "x"}) is None
    with pytest.raises(iso.PlanError):
        iso.encode_record([])


# -- groups ----------------------------------------------------------------------------------------
def test_new_groups_are_created_before_any_rule_and_the_default_egress_is_revoked():
    steps, groups, errors = iso.plan_groups({"vpc-1", "vpc-2"}, [], NAMES, frozenset(), ipv6_vpcs={"vpc-1"})
    assert errors == {} and groups == {(v, r): None for v in ("vpc-1", "vpc-2") for r in (iso.CONVERSION, iso.ISOLATION)}
    actions = [s["action"] for s in steps]
    assert actions[:4] == ["CreateSecurityGroup"] * 4
    assert "CreateSecurityGroup" not in actions[4:]
    revokes = {s["vpc_id"]: s["permissions"] for s in steps
               if s["action"] == "RevokeSecurityGroupEgress" and s["role"] == iso.ISOLATION}
    assert revokes["vpc-1"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                                {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]
    assert revokes["vpc-2"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    # nothing is ever authorized on an isolation group without allowed_access
    assert not [s for s in steps if s["role"] == iso.ISOLATION and s["action"].startswith("Authorize")]
    conversion = {(s["vpc_id"], s["action"]) for s in steps if s["role"] == iso.CONVERSION and s["action"] != "CreateSecurityGroup"}
    assert conversion == {("vpc-1", "AuthorizeSecurityGroupIngress"), ("vpc-2", "AuthorizeSecurityGroupIngress"),
                          ("vpc-2", "AuthorizeSecurityGroupEgress")}


def test_existing_groups_in_shape_need_no_step():
    described = [described_group("sg-conv", NAMES[iso.CONVERSION], iso.CONVERSION, ingress=[ALL], egress=[ALL]),
                 described_group("sg-iso", NAMES[iso.ISOLATION], iso.ISOLATION)]
    steps, groups, errors = iso.plan_groups({"vpc-1"}, described, NAMES, frozenset())
    assert steps == [] and errors == {} and groups == existing_groups()


def test_stray_open_rule_on_isolation_group_is_revoked_and_allowed_access_added():
    allowed = iso.allowed_access_rules([{"cidr": "10.9.0.1/32", "port": 22}])
    described = [described_group("sg-conv", NAMES[iso.CONVERSION], iso.CONVERSION, ingress=[ALL], egress=[ALL]),
                 described_group("sg-iso", NAMES[iso.ISOLATION], iso.ISOLATION, egress=[ALL])]
    steps, _creates, _errors = iso.plan_groups({"vpc-1"}, described, NAMES, allowed)
    assert [s["action"] for s in steps] == ["RevokeSecurityGroupEgress", "AuthorizeSecurityGroupIngress"]
    assert steps[1]["permissions"] == [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                        "IpRanges": [{"CidrIp": "10.9.0.1/32"}]}]


def test_group_with_our_name_but_not_our_tag_is_refused():
    described = [described_group("sg-x", NAMES[iso.ISOLATION], None)]
    steps, _creates, errors = iso.plan_groups({"vpc-1"}, described, NAMES, frozenset())
    assert "not tagged" in errors["vpc-1"] and steps == []


@pytest.mark.parametrize("entry, message", [
    ({"cidr": "0.0.0.0/0", "port": 22}, "open to everyone"),
    ({"cidr": "::/0", "protocol": "all"}, "open to everyone"),
    ({"cidr": "nonsense", "port": 22}, "not an IPv4"),
    ({"cidr": "10.0.0.1/32"}, "needs a port"),
    ({"cidr": "10.0.0.1/32", "port": 70000}, "within 0-65535"),
    ({"cidr": "0.0.0.0/1", "port": 22}, "broader than /8"),
    ({"cidr": "128.0.0.0/1", "port": 22}, "broader than /8"),
    ({"cidr": "::/1", "protocol": "all"}, "broader than /32"),
    ({"cidr": "198.51.100.7/32", "port": 22}, "not a private range"),
    ({"cidr": "10.0.0.0/8", "port": 22}, "broader than /16"),
    ({"cidr": "10.0.0.1/32", "protocol": "icmp", "port": 256}, "ICMP type 256"),
    ({"cidr": "10.0.0.1/32", "protocol": "icmp", "port": 8, "to_port": 300}, "ICMP code 300"),
    ({"cidr": "10.0.0.1/32", "protocol": "icmp", "to_port": 0}, "with type -1"),
])
def test_bad_allowed_access(entry, message):
    with pytest.raises(iso.PlanError, match=message):
        iso.allowed_access_rules([entry])


def test_public_or_broad_examiner_access_needs_the_acknowledgement_and_open_never_passes():
    entries = [{"cidr": "198.51.100.7/32", "port": 22}, {"cidr": "10.0.0.0/8", "protocol": "icmp", "port": 8, "to_port": 0}]
    assert iso.allowed_access_rules(entries, acknowledge_public=True) == {
        ("ingress", "tcp", 22, 22, "cidr4", "198.51.100.7/32"), ("ingress", "icmp", 8, 0, "cidr4", "10.0.0.0/8")}
    for cidr in ("0.0.0.0/1", "::/1", "0.0.0.0/0"):
        with pytest.raises(iso.PlanError):
            iso.allowed_access_rules([{"cidr": cidr, "port": 22}], acknowledge_public=True)


def test_a_run_without_allowed_access_keeps_another_incidents_examiner_access_unless_exclusive():
    examiner = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.9.0.1/32"}]}
    stray = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}],
             "IpRanges": [{"CidrIp": "0.0.0.0/1"}]}
    described = [described_group("sg-conv", NAMES[iso.CONVERSION], iso.CONVERSION, ingress=[ALL], egress=[ALL]),
                 described_group("sg-iso", NAMES[iso.ISOLATION], iso.ISOLATION, ingress=[examiner, stray], egress=[ALL])]
    steps, _groups, _errors = iso.plan_groups({"vpc-1"}, described, NAMES, frozenset())
    revoked = [p for s in steps for p in s["permissions"] if s["action"].startswith("Revoke")]
    assert examiner not in revoked   # the examiner access stays
    assert {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]} in revoked
    assert {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/1"}]} in revoked
    assert [s["action"] for s in steps] == ["RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"]
    steps, _groups, _errors = iso.plan_groups({"vpc-1"}, described, NAMES, frozenset(), exclusive=True)
    revoked = [p for s in steps for p in s["permissions"] if s["action"].startswith("Revoke")]
    assert examiner in revoked


# -- isolate ---------------------------------------------------------------------------------------
def test_fresh_instance_record_then_moves_then_tag():
    enis = [nic("eni-b", index=1, groups=[sg(2), sg(3)]), nic("eni-a", groups=[sg(1)])]
    plan = iso.plan_isolate("i-1", {}, enis, existing_groups(), NAMES, "IR-1", NOW)
    assert [(s["action"], s["resource"]) for s in plan["steps"]] == [
        ("CreateTags", "eni-a"), ("CreateTags", "eni-b"),
        ("ModifyNetworkInterfaceAttribute", "eni-a"), ("ModifyNetworkInterfaceAttribute", "eni-b"),
        ("CreateTags", "i-1")]
    assert plan["steps"][1]["tags"] == iso.encode_record([sg(2), sg(3)])
    assert all(s["groups"] == [iso.CONVERSION, iso.ISOLATION] for s in plan["steps"] if s["action"].startswith("Modify"))
    assert plan["steps"][-1]["tags"] == {iso.TAG_STATE: iso.ISOLATED, iso.TAG_ISOLATED_AT: NOW, iso.TAG_INCIDENT: "IR-1"}
    assert [e["security_groups"] for e in plan["enis"]] == [["sg-iso"], ["sg-iso"]]
    assert [e["original_security_groups"] for e in plan["enis"]] == [[sg(1)], [sg(2), sg(3)]]


def test_already_isolated_instance_plans_nothing():
    enis = [nic("eni-a", groups=["sg-iso"], tags=iso.encode_record([sg(1)]))]
    plan = iso.plan_isolate("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups(), NAMES, None, NOW,
                            stored=stored(eni_a=[sg(1)]))
    assert plan["steps"] == [] and plan["errors"] == [] and plan["store"] is None
    assert plan["enis"][0]["original_security_groups"] == [sg(1)]


def test_crash_on_conversion_group_keeps_the_record_and_finishes():
    enis = [nic("eni-a", groups=["sg-conv"], tags=iso.encode_record([sg(1)]))]
    plan = iso.plan_isolate("i-1", {}, enis, existing_groups(), NAMES, None, NOW, stored=stored(eni_a=[sg(1)]))
    assert [s["action"] for s in plan["steps"]] == ["ModifyNetworkInterfaceAttribute", "CreateTags"]
    assert plan["steps"][-1]["resource"] == "i-1"
    assert plan["enis"][0]["original_security_groups"] == [sg(1)]


def test_new_groups_show_as_placeholders():
    plan = iso.plan_isolate("i-1", {}, [nic("eni-a")], {("vpc-1", iso.CONVERSION): None, ("vpc-1", iso.ISOLATION): None},
                            NAMES, None, NOW)
    assert plan["enis"][0]["security_groups"] == ["(new) guardduty-isolation"]


def test_unchangeable_enis_are_reported_per_eni():
    enis = [nic("eni-a"), nic("eni-b", index=1, managed=True), nic("eni-c", index=2, interface_type="nat_gateway")]
    plan = iso.plan_isolate("i-1", {}, enis, existing_groups(), NAMES, None, NOW)
    moved = {s["resource"] for s in plan["steps"] if s["action"].startswith("Modify")}
    assert moved == {"eni-a"}
    errors = {e["network_interface_id"]: e["error"] for e in plan["enis"]}
    assert "requester-managed" in errors["eni-b"] and "nat_gateway" in errors["eni-c"] and errors["eni-a"] is None
    assert len(plan["errors"]) == 2 and plan["state"] == iso.ISOLATED


def test_instance_with_only_unchangeable_enis_fails_and_is_not_tagged():
    plan = iso.plan_isolate("i-1", {}, [nic("eni-a", managed=True)], existing_groups(), NAMES, None, NOW)
    assert plan["steps"] == [] and plan["state"] == "failed"


def test_vpc_error_stops_the_enis_of_that_vpc():
    plan = iso.plan_isolate("i-1", {}, [nic("eni-a")], existing_groups(), NAMES, None, NOW, {"vpc-1": "not ours"})
    assert plan["steps"] == [] and "not ours" in plan["errors"][0]


# -- release ---------------------------------------------------------------------------------------
def test_release_restores_then_forgets_then_marks():
    enis = [nic("eni-a", groups=["sg-iso"], tags=iso.encode_record([sg(2), sg(1)]))]
    tags = {iso.TAG_STATE: iso.ISOLATED, iso.TAG_INCIDENT: "IR", iso.TAG_ISOLATED_AT: NOW}
    plan = iso.plan_release("i-1", tags, enis, existing_groups(), stored(eni_a=[sg(2), sg(1)]))
    assert plan["forget"] is True
    assert [(s["action"], s["resource"]) for s in plan["steps"]] == [
        ("ModifyNetworkInterfaceAttribute", "eni-a"), ("DeleteTags", "eni-a"), ("CreateTags", "i-1"), ("DeleteTags", "i-1")]
    assert plan["steps"][0]["groups"] == [sg(2), sg(1)]
    assert plan["enis"][0]["security_groups"] == [sg(2), sg(1)]


def test_release_twice_plans_nothing_and_never_isolated_is_an_error():
    released = iso.plan_release("i-1", {iso.TAG_STATE: iso.RELEASED}, [nic("eni-a")], existing_groups())
    assert released["steps"] == [] and released["errors"] == [] and released["state"] == iso.RELEASED
    never = iso.plan_release("i-1", {}, [nic("eni-a")], existing_groups())
    assert never["state"] == "failed" and "no isolation record" in never["errors"][0]


def test_release_of_eni_on_isolation_group_without_record_is_an_error_and_releases_nothing():
    # All of an instance's ENIs are restored or none: a half-released instance is exposed yet still marked isolated.
    enis = [nic("eni-a", groups=["sg-iso"]), nic("eni-b", index=1, groups=["sg-iso"], tags=iso.encode_record([sg(1)]))]
    plan = iso.plan_release("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups())
    assert "eni-a" in plan["errors"][0]
    assert plan["steps"] == [] and plan["state"] == "failed"


def test_rule_atoms_round_trip():
    perms = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
              "UserIdGroupPairs": [{"GroupId": "sg-1"}]}]
    atoms = iso.rule_atoms(perms, "ingress")
    assert len(atoms) == 2
    assert iso.rule_atoms(iso.permissions_from_atoms(atoms), "ingress") == atoms


# -- the tag is a hint, the incident store the record ------------------------------------------------
def forged_tags(groups):
    return {iso.RECORD_TAG: "1", iso.RECORD_TAG + ":1": ",".join(groups)}


def test_isolate_never_adopts_a_tag_the_store_does_not_know():
    enis = [nic("eni-a", groups=[sg(1), sg(2)], tags=forged_tags([sg(9)]))]
    plan = iso.plan_isolate("i-1", {}, enis, existing_groups(), NAMES, None, NOW)
    assert plan["enis"][0]["original_security_groups"] == [sg(1), sg(2)]
    assert plan["store"] == stored(eni_a=[sg(1), sg(2)])
    assert any("eni-a" in w and iso.RECORD_TAG in w and "ignored" in w for w in plan["warnings"])
    # The tag is overwritten with the truth, the earlier shape's part deleted, before any move.
    assert [(s["action"], s["resource"]) for s in plan["steps"][:2]] == [("CreateTags", "eni-a"), ("DeleteTags", "eni-a")]
    assert iso.decode_record(plan["steps"][0]["tags"]) == [sg(1), sg(2)]
    assert plan["steps"][1]["tags"] == [iso.RECORD_TAG + ":1"]


def test_isolate_keeps_the_store_record_over_a_differing_tag():
    enis = [nic("eni-a", groups=["sg-conv"], tags=iso.encode_record([sg(9)]))]
    plan = iso.plan_isolate("i-1", {}, enis, existing_groups(), NAMES, None, NOW, stored=stored(eni_a=[sg(1)]))
    assert plan["enis"][0]["original_security_groups"] == [sg(1)] and plan["store"] is None
    assert iso.decode_record(plan["steps"][0]["tags"]) == [sg(1)]
    assert any("differs from the incident store" in w for w in plan["warnings"])


def test_isolate_leaves_an_earlier_versions_isolated_record_for_release_to_judge():
    enis = [nic("eni-a", groups=["sg-iso"], tags=forged_tags([sg(1)]))]
    plan = iso.plan_isolate("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups(), NAMES, None, NOW)
    assert plan["steps"] == [] and plan["store"] is None
    assert any("trust_tag_records" in w for w in plan["warnings"])


@pytest.mark.parametrize("record, described, expected", [
    (["sg-conv"], {}, "names sg-conv, the conversion group"),
    (["sg-iso"], {}, "names sg-iso, the isolation group"),
    ([sg(5)], {sg(5): {"vpc_id": "vpc-1", "role": "conversion"}}, f"names {sg(5)}, the conversion group"),
    ([sg(1), sg(6)], {sg(6): {"vpc_id": "vpc-2", "role": None}}, f"names {sg(6)} of vpc-2, not of the ENI's vpc-1"),
])
def test_release_refuses_containment_and_foreign_groups_and_changes_nothing(record, described, expected):
    enis = [nic("eni-a", groups=["sg-iso"], tags=iso.encode_record(record)),
            nic("eni-b", index=1, groups=["sg-iso"], tags=iso.encode_record([sg(1)]))]
    plan = iso.plan_release("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups(),
                            stored(eni_a=record, eni_b=[sg(1)]), described)
    assert plan["state"] == "failed" and plan["steps"] == [] and plan["forget"] is False
    assert len(plan["errors"]) == 1 and plan["errors"][0].startswith(f"eni-a: the record {expected}")
    assert plan["errors"][0].endswith("refusing to apply it; nothing was changed")


def test_release_refuses_a_tag_differing_from_the_store_and_a_tag_alone_without_trust():
    enis = [nic("eni-a", groups=["sg-iso"], tags=iso.encode_record(["sg-conv"]))]
    differs = iso.plan_release("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups(), stored(eni_a=[sg(1)]))
    assert differs["steps"] == [] and "eni-a: tag guardduty:original-groups differs from the incident store" in differs["errors"][0]
    enis = [nic("eni-a", groups=["sg-iso"], tags=iso.encode_record([sg(1)]))]
    alone = iso.plan_release("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups())
    assert alone["steps"] == [] and "trust_tag_records" in alone["errors"][0]
    trusted = iso.plan_release("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups(), trust_tag_records=True)
    assert trusted["steps"][0]["groups"] == [sg(1)] and trusted["forget"] is False


def test_release_applies_the_store_record_when_the_tag_is_gone():
    enis = [nic("eni-a", groups=["sg-iso"])]
    plan = iso.plan_release("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups(), stored(eni_a=[sg(1)]))
    assert [s["action"] for s in plan["steps"]] == ["ModifyNetworkInterfaceAttribute", "CreateTags"]
    assert any("missing" in w for w in plan["warnings"])


def test_release_refuses_a_record_stored_for_another_vpc():
    enis = [nic("eni-a", groups=["sg-iso"], tags=iso.encode_record([sg(1)]))]
    plan = iso.plan_release("i-1", {iso.TAG_STATE: iso.ISOLATED}, enis, existing_groups(), stored("vpc-9", eni_a=[sg(1)]))
    assert plan["steps"] == [] and "recorded in vpc-9, now in vpc-1" in plan["errors"][0]
