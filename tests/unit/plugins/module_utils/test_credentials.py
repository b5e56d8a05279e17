# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Cutting credentials, planned: the deny policy merged per role, the record, and the association calls."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_instance_credentials as cred

ARN = "arn:aws:ec2:us-east-1:123456789012:instance/%s"
PROFILE = "arn:aws:iam::123456789012:instance-profile/web-role"
QUARANTINE = "arn:aws:iam::123456789012:instance-profile/quarantine"
T1, T2 = "2026-11-28T04:50:00Z", "2026-11-28T05:10:00Z"
ASSOC = {"association_id": "iip-assoc-1", "profile_arn": PROFILE, "state": "associated"}


def arns(document, sid_prefix):
    return sorted(a for s in document["Statement"] if s["Sid"].startswith(sid_prefix)
                  for a in s["Condition"]["StringEquals"]["ec2:SourceInstanceARN"])


def test_instance_arn_and_profile_name():
    assert cred.instance_arn("aws", "us-east-1", "123456789012", "i-1") == ARN % "i-1"
    assert cred.profile_name("arn:aws:iam::1:instance-profile/path/to/web") == "web"
    assert cred.arn_parts("arn:aws-cn:iam::123456789012:instance-profile/x") == ("aws-cn", "123456789012")


def test_first_cut_creates_both_statements_for_the_instance_only():
    document, change = cred.plan_role_policy("web-role", None, 0, {ARN % "i-1": T1}, [])
    assert change == "put"
    assert document == {"Version": "2012-10-17", "Statement": [
        {"Sid": "GuardDutyQuarantineInstances", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"ec2:SourceInstanceARN": [ARN % "i-1"]}}},
        {"Sid": "GuardDutyRevokeSessionsIssuedBefore20261128T045000Z", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:TokenIssueTime": T1}, "StringEquals": {"ec2:SourceInstanceARN": [ARN % "i-1"]}}}]}


def test_merge_is_idempotent_and_keeps_the_first_cut_time():
    first, dummy_change = cred.plan_role_policy("r", None, 0, {ARN % "i-1": T1}, [])
    again, change = cred.plan_role_policy("r", first, 0, {ARN % "i-1": T2}, [])
    assert change is None and again == first
    merged, change = cred.plan_role_policy("r", first, 0, {ARN % "i-2": T2}, [])
    assert change == "put"
    assert arns(merged, "GuardDutyQuarantine") == [ARN % "i-1", ARN % "i-2"]
    assert len([s for s in merged["Statement"] if s["Sid"].startswith("GuardDutyRevoke")]) == 2


def test_release_removes_only_that_instance_and_deletes_when_empty():
    document, dummy_change = cred.plan_role_policy("r", None, 0, {ARN % "i-1": T1, ARN % "i-2": T1}, [])
    left, change = cred.plan_role_policy("r", document, 0, {}, [ARN % "i-1"])
    assert change == "put" and arns(left, "GuardDuty") == [ARN % "i-2", ARN % "i-2"]
    gone, change = cred.plan_role_policy("r", left, 0, {}, [ARN % "i-2"])
    assert (gone, change) == (None, "delete")


def test_release_can_keep_the_session_revocation():
    document, dummy_change = cred.plan_role_policy("r", None, 0, {ARN % "i-1": T1}, [])
    kept, change = cred.plan_role_policy("r", document, 0, {}, [ARN % "i-1"], keep_revocation=True)
    assert change == "put" and [s["Sid"][:35] for s in kept["Statement"]] == ["GuardDutyRevokeSessionsIssuedBefore"]


def test_foreign_statements_are_kept():
    foreign = {"Sid": "SomeoneElses", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    document, dummy_change = cred.plan_role_policy("r", {"Version": "2012-10-17", "Statement": [foreign]}, 0, {ARN % "i-1": T1}, [])
    assert foreign in document["Statement"]
    left, change = cred.plan_role_policy("r", document, 0, {}, [ARN % "i-1"])
    assert change == "put" and left["Statement"] == [foreign]


def test_size_limit_counts_the_other_inline_policies():
    many = {ARN % f"i-{n:017x}": T1 for n in range(40)}
    document, dummy_change = cred.plan_role_policy("r", None, 0, many, [])
    assert cred.policy_size(document) < cred.INLINE_POLICIES_MAX
    with pytest.raises(cred.CredentialsPlanError, match="10240"):
        cred.plan_role_policy("r", None, cred.INLINE_POLICIES_MAX - 100, many, [])


def test_record_round_trip_and_long_values_split():
    record = {"profile_arn": "arn:aws:iam::123456789012:instance-profile/" + "p/" * 120 + "web",
              "association_id": "iip-assoc-1", "role": "web-role", "cut_at": T1, "mode": "replace",
              "quarantine_profile_arn": QUARANTINE}
    tags = cred.encode_record(record)
    assert len(tags) > 1 and all(len(v) <= 256 for v in tags.values())
    assert cred.decode_record(dict(tags, Name="x")) == record
    with pytest.raises(cred.CredentialsPlanError):
        cred.decode_record({cred.RECORD_TAG: "{broken"})


def test_plan_cut_disassociate_records_first():
    plan = cred.plan_cut("i-1", ASSOC, None, "web-role", T1, cred.DISASSOCIATE, None)
    assert plan["tags"] and plan["record"]["association_id"] == "iip-assoc-1"
    assert plan["association_calls"] == [("DisassociateIamInstanceProfile", {"AssociationId": "iip-assoc-1"})]
    assert plan["after"] is None


def test_plan_cut_is_idempotent_and_skips_instances_without_profile():
    record = cred.plan_cut("i-1", ASSOC, None, "web-role", T1, cred.DISASSOCIATE, None)["record"]
    again = cred.plan_cut("i-1", None, record, "web-role", T2, cred.DISASSOCIATE, None)
    assert again["tags"] is None and again["association_calls"] == [] and again["deny"]
    none = cred.plan_cut("i-2", None, None, None, T1, cred.DISASSOCIATE, None)
    assert none["deny"] is False and none["association_calls"] == [] and none["tags"] is None


def test_plan_cut_replace_and_release_back():
    plan = cred.plan_cut("i-1", ASSOC, None, "web-role", T1, cred.REPLACE, QUARANTINE)
    assert plan["association_calls"] == [("ReplaceIamInstanceProfileAssociation", {
        "AssociationId": "iip-assoc-1", "IamInstanceProfile": {"Arn": QUARANTINE}})]
    now = {"association_id": "iip-assoc-2", "profile_arn": QUARANTINE, "state": "associated"}
    release = cred.plan_release("i-1", now, plan["record"], [cred.RECORD_TAG])
    assert release["association_calls"] == [("ReplaceIamInstanceProfileAssociation", {
        "AssociationId": "iip-assoc-2", "IamInstanceProfile": {"Arn": PROFILE}})]
    assert release["delete_tags"] == {"Resources": ["i-1"], "Tags": [{"Key": cred.RECORD_TAG}]}


def test_release_reassociates_and_refuses_a_foreign_profile():
    record = cred.plan_cut("i-1", ASSOC, None, "web-role", T1, cred.DISASSOCIATE, None)["record"]
    release = cred.plan_release("i-1", None, record, [cred.RECORD_TAG])
    assert release["association_calls"] == [("AssociateIamInstanceProfile", {
        "InstanceId": "i-1", "IamInstanceProfile": {"Arn": PROFILE}})]
    other = {"association_id": "iip-assoc-9", "profile_arn": "arn:aws:iam::123456789012:instance-profile/other"}
    with pytest.raises(cred.CredentialsPlanError, match="neither"):
        cred.plan_release("i-1", other, record, [cred.RECORD_TAG])
    assert cred.plan_release("i-1", ASSOC, None, [])["association_calls"] == []
