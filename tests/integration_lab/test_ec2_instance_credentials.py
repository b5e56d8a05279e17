"""ec2_instance_credentials against the lab: the role's deny policy and the profile associations, as AWS reports them."""

import pytest

MODULE = "cloudsec.guardduty.ec2_instance_credentials"
ACCOUNT = "123456789012"


def associations(lab, account=ACCOUNT):
    """{instance id: (profile ARN, association id)} straight from EC2."""
    ec2 = lab.client("ec2", account=account)
    found = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    return {a["InstanceId"]: (a["IamInstanceProfile"]["Arn"], a["AssociationId"]) for a in found
            if a["State"] in ("associating", "associated")}


def quarantine_policy(lab, role, account=ACCOUNT):
    iam = lab.client("iam", account=account)
    if "GuardDutyQuarantine" not in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        return None
    return iam.get_role_policy(RoleName=role, PolicyName="GuardDutyQuarantine")["PolicyDocument"]


def record_tags(lab, instance_id, account=ACCOUNT):
    ec2 = lab.client("ec2", account=account)
    tags = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0].get("Tags", [])
    return {t["Key"]: t["Value"] for t in tags if t["Key"].startswith("guardduty:credentials-record")}


def writes(lab, since):
    wanted = ("PutRolePolicy", "DeleteRolePolicy", "DisassociateIamInstanceProfile", "AssociateIamInstanceProfile",
              "ReplaceIamInstanceProfileAssociation", "CreateTags", "DeleteTags")
    return [e for e in lab.journal(since=since) if e["action"] in wanted]


def test_cut_denies_only_the_compromised_instance_and_release_restores_it(demo):
    web, healthy = demo.instance("web-1")["id"], demo.instance("healthy-1")["id"]
    profile_arn = f"arn:aws:iam::{ACCOUNT}:instance-profile/web-role"
    before = associations(demo)
    assert before[web][0] == profile_arn and before[healthy][0] == profile_arn

    mark = demo.mark()
    planned = demo.run_module(MODULE, {"instance_ids": [web]}, check=True, diff=True)
    assert planned["changed"] is True and writes(demo, mark) == []
    assert quarantine_policy(demo, "web-role") is None and associations(demo) == before

    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web]}, diff=True)
    assert result["changed"] is True
    web_arn = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{web}"
    document = quarantine_policy(demo, "web-role")
    cut_at = result["instances"][web]["record"]["cut_at"]
    assert document == {"Version": "2012-10-17", "Statement": [
        {"Sid": "GuardDutyQuarantineInstances", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"ec2:SourceInstanceARN": [web_arn]}}},
        {"Sid": "GuardDutyRevokeSessionsIssuedBefore" + "".join(c for c in cut_at if c.isalnum()),
         "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:TokenIssueTime": cut_at},
                       "StringEquals": {"ec2:SourceInstanceARN": [web_arn]}}}]}
    now = associations(demo)
    assert web not in now
    assert now[healthy] == before[healthy]  # the healthy instance sharing the role is untouched
    # The record is written before anything changes, and holds the original association.
    actions = [e["action"] for e in writes(demo, mark)]
    assert actions == ["CreateTags", "PutRolePolicy", "DisassociateIamInstanceProfile"], actions
    assert result["instances"][web]["record"]["association_id"] == before[web][1]
    assert result["instances"][web]["record"]["profile_arn"] == profile_arn
    assert record_tags(demo, web)
    assert result["instances"][web]["before"] == {"instance_profile": profile_arn, "denied": False}
    assert result["instances"][web]["after"] == {"instance_profile": None, "denied": True}
    # Check mode planned the same calls (the cut time in the record aside).
    assert [c.split()[0] for c in planned["instances"][web]["calls"]] == actions

    mark = demo.mark()
    again = demo.run_module(MODULE, {"instance_ids": [web]})
    assert again["changed"] is False and writes(demo, mark) == []

    mark = demo.mark()
    released = demo.run_module(MODULE, {"instance_ids": [web], "state": "released"}, diff=True)
    assert released["changed"] is True
    assert [e["action"] for e in writes(demo, mark)] == ["AssociateIamInstanceProfile", "DeleteRolePolicy", "DeleteTags"]
    after = associations(demo)
    assert after[web][0] == profile_arn and after[healthy] == before[healthy]
    assert quarantine_policy(demo, "web-role") is None  # empty: deleted
    assert record_tags(demo, web) == {}

    mark = demo.mark()
    assert demo.run_module(MODULE, {"instance_ids": [web], "state": "released"})["changed"] is False
    assert writes(demo, mark) == []


def test_statements_merge_per_role_and_release_removes_only_that_instance(demo):
    account = "111122223333"
    w1, w2 = demo.instance("worker-1")["id"], demo.instance("worker-2")["id"]
    arn = f"arn:aws:ec2:us-east-1:{account}:instance/%s"
    demo.run_module(MODULE, {"instance_ids": [w1]}, account=account)
    demo.run_module(MODULE, {"instance_ids": [w2]}, account=account)
    document = quarantine_policy(demo, "worker-role", account)
    quarantine = [s for s in document["Statement"] if s["Sid"] == "GuardDutyQuarantineInstances"]
    assert quarantine[0]["Condition"]["StringEquals"]["ec2:SourceInstanceARN"] == sorted([arn % w1, arn % w2])
    revoked = sorted(a for s in document["Statement"] if s["Sid"].startswith("GuardDutyRevoke")
                     for a in s["Condition"]["StringEquals"]["ec2:SourceInstanceARN"])
    assert revoked == sorted([arn % w1, arn % w2])
    assert associations(demo, account) == {}

    demo.run_module(MODULE, {"instance_ids": [w1], "state": "released"}, account=account)
    document = quarantine_policy(demo, "worker-role", account)
    named = sorted({a for s in document["Statement"] for a in s["Condition"]["StringEquals"]["ec2:SourceInstanceARN"]})
    assert named == [arn % w2]
    assert list(associations(demo, account)) == [w1]


def test_replace_with_quarantine_profile_and_release(demo):
    web = demo.instance("web-1")["id"]
    iam = demo.client("iam")
    iam.create_role(RoleName="quarantine", AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}')
    quarantine = iam.create_instance_profile(InstanceProfileName="quarantine")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="quarantine", RoleName="quarantine")
    original = associations(demo)[web]
    result = demo.run_module(MODULE, {"instance_ids": [web], "profile_action": "replace", "quarantine_profile": "quarantine"})
    assert result["changed"] is True
    assert associations(demo)[web][0] == quarantine
    assert quarantine_policy(demo, "web-role") is not None
    demo.run_module(MODULE, {"instance_ids": [web], "state": "released"})
    assert associations(demo)[web][0] == original[0]
    assert quarantine_policy(demo, "web-role") is None


@pytest.mark.parametrize("failing", ["PutRolePolicy"])
def test_policy_failure_names_instance_action_code_and_leaves_profile(demo, failing):
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    demo.faults({"forced": [{"action": failing, "code": "AccessDenied", "status": 403}]})
    before = associations(demo)
    result = demo.run_module(MODULE, {"instance_ids": [web, app, "i-0000000000000dead"]}, expect_rc=(2,))
    errors = {e["instance_id"]: e for e in result["errors"]}
    assert errors[web]["action"] == failing and errors[web]["code"] == "AccessDenied"
    assert "i-0000000000000dead" in errors
    assert app not in errors and result["instances"][app]["changed"] is False  # no profile: nothing to cut
    assert associations(demo)[web] == before[web]  # no deny, so the profile stays: nothing half-done but the record
