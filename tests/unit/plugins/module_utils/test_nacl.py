# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Subnet containment planning: one containment ACL per VPC, the original ACL recorded before the swap."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import PlanProblem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_subnet_containment import (
    MARKER_TAG, RECORD_TAG, containment_acls, others_in_subnets, plan_contain_subnet, plan_containment_acl,
    plan_release_subnet, subnet_associations, subnet_record)

NAME = "guardduty-containment"
ORIGINAL = {"NetworkAclId": "acl-orig", "VpcId": "vpc-1", "Associations": [
    {"SubnetId": "subnet-1", "NetworkAclAssociationId": "aclassoc-1"}], "Entries": []}
CONTAINMENT = {"NetworkAclId": "acl-cont", "VpcId": "vpc-1", "Associations": [],
               "Tags": [{"Key": "Name", "Value": NAME}, {"Key": MARKER_TAG, "Value": "true"}],
               "Entries": [{"RuleNumber": 32767, "Egress": False}, {"RuleNumber": 32768, "Egress": True},
                           {"RuleNumber": 100, "Egress": False, "RuleAction": "allow"}]}


def test_containment_acl_is_created_once_and_kept_deny_only():
    calls, acl_id = plan_containment_acl("vpc-1", None, NAME)
    assert calls[0][0] == "CreateNetworkAcl" and acl_id == f"(new) {NAME}"
    existing = containment_acls([ORIGINAL, CONTAINMENT], NAME)
    assert existing == {"vpc-1": CONTAINMENT}
    calls, acl_id = plan_containment_acl("vpc-1", existing["vpc-1"], NAME)
    assert acl_id == "acl-cont"
    assert calls == [("DeleteNetworkAclEntry", {"NetworkAclId": "acl-cont", "RuleNumber": 100, "Egress": False})]


def test_contain_records_the_original_acl_before_replacing():
    association = subnet_associations([ORIGINAL])["subnet-1"]
    calls, before, after = plan_contain_subnet({"SubnetId": "subnet-1"}, association, "acl-cont", NAME)
    assert [c[0] for c in calls] == ["CreateTags", "ReplaceNetworkAclAssociation"]
    assert calls[0][1]["Tags"] == [{"Key": RECORD_TAG, "Value": "acl-orig"}]
    assert (before, after) == ("acl-orig", "acl-cont")
    contained = dict(CONTAINMENT, Associations=[{"SubnetId": "subnet-1", "NetworkAclAssociationId": "aclassoc-2"}])
    assert plan_contain_subnet({"SubnetId": "subnet-1"}, subnet_associations([contained])["subnet-1"], "acl-cont", NAME)[0] == []


def test_contain_records_the_store_s_original_not_the_acl_someone_put_back_meanwhile():
    # Contained once (store: acl-orig), then re-associated by someone with a permissive ACL and the tag rewritten:
    # containing again keeps the pre-incident ACL and rewrites the tag from the store.
    subnet = {"SubnetId": "subnet-1", "Tags": [{"Key": RECORD_TAG, "Value": "acl-open"}]}
    record, problem, warning = subnet_record(subnet, "acl-orig", releasing=False)
    assert (record, problem) == ("acl-orig", None) and "differs from the incident store's record" in warning
    reopened = dict(ORIGINAL, NetworkAclId="acl-open")
    calls, before, _after = plan_contain_subnet(subnet, subnet_associations([reopened])["subnet-1"], "acl-cont", NAME,
                                                record)
    assert calls[0] == ("CreateTags", {"Resources": ["subnet-1"], "Tags": [{"Key": RECORD_TAG, "Value": "acl-orig"}]})
    assert before == "acl-open"
    # Without a store record the tag is never adopted: the ACL described now is recorded.
    record, _problem, warning = subnet_record(subnet, None, releasing=False)
    assert record is None and "ignored" in warning


def test_release_applies_the_store_s_record_only_when_the_tag_agrees():
    forged = {"SubnetId": "subnet-1", "Tags": [{"Key": RECORD_TAG, "Value": "acl-open"}]}
    record, problem, _warning = subnet_record(forged, "acl-orig", releasing=True)
    assert record is None and "differs from the incident store's record" in problem
    record, problem, _warning = subnet_record(forged, None, releasing=True)  # a tag the store does not know
    assert record is None and "trust_tag_records" in problem
    record, problem, warning = subnet_record(forged, None, releasing=True, trust_tag_records=True)
    assert (record, problem) == ("acl-open", None) and "applied without an incident store record" in warning
    record, problem, warning = subnet_record({"SubnetId": "subnet-1"}, "acl-orig", releasing=True)  # tag deleted
    assert (record, problem) == ("acl-orig", None) and "missing" in warning
    assert subnet_record({"SubnetId": "subnet-1"}, None, releasing=True) == (None, None, None)


def test_release_restores_the_recorded_acl_or_refuses_if_it_is_gone():
    contained = dict(CONTAINMENT, Associations=[{"SubnetId": "subnet-1", "NetworkAclAssociationId": "aclassoc-2"}])
    subnet = {"SubnetId": "subnet-1", "Tags": [{"Key": RECORD_TAG, "Value": "acl-orig"}]}
    association = subnet_associations([contained])["subnet-1"]
    calls, _unused1, after = plan_release_subnet(subnet, association, {"acl-orig", "acl-cont"}, NAME, "acl-orig")
    assert calls[0][1] == {"AssociationId": "aclassoc-2", "NetworkAclId": "acl-orig"} and calls[1][0] == "DeleteTags"
    assert after == "acl-orig"
    with pytest.raises(PlanProblem):
        plan_release_subnet(subnet, association, {"acl-cont"}, NAME, "acl-orig")
    assert plan_release_subnet({"SubnetId": "subnet-1"}, association, set(), NAME, None)[0] == []
    # the tag already gone: only the association
    assert [c[0] for c in plan_release_subnet({"SubnetId": "subnet-1"}, association, {"acl-orig"}, NAME, "acl-orig")[0]] == [
        "ReplaceNetworkAclAssociation"]


def test_what_else_is_cut_off():
    enis = [{"NetworkInterfaceId": "eni-a", "SubnetId": "subnet-1", "Attachment": {"InstanceId": "i-0123456789abcdef0"}},
            {"NetworkInterfaceId": "eni-b", "SubnetId": "subnet-1", "Attachment": {"InstanceId": "i-0fedcba9876543210"}},
            {"NetworkInterfaceId": "eni-c", "SubnetId": "subnet-1", "Description": "Interface for NAT Gateway nat-1"}]
    assert others_in_subnets(enis, {"subnet-1"}, {"i-0123456789abcdef0"}) == {
        "subnet-1": ["eni-b (instance i-0fedcba9876543210)", "eni-c (Interface for NAT Gateway nat-1)"]}
