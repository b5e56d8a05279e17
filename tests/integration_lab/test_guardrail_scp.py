"""docs/iam/guardrail-scp.json keeps every identity but the responder role off the `guardduty:*` tags.

Under the lab's IAM enforcement with the guardrail as a service control policy of the member account
(beside FullAWSAccess, as AWS Organizations attaches it), an attacker holding a role of that account with
ec2:CreateTags / ec2:DeleteTags / ec2:RunInstances on everything cannot create, change or delete a
`guardduty:*` tag on an interface or an instance, nor give one at creation; AWS answers
UnauthorizedOperation and the tags stay as they were. Other tags still work, and GuardDutyResponder
(with exactly docs/iam/responder.json) still isolates and records.
"""

import json
import pathlib

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.lab.scenario import RESPONDER_ROLE

REPO = pathlib.Path(__file__).resolve().parents[2]
MEMBER = "111122223333"
FULL_AWS_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ATTACKER_POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "StolenInstanceRole", "Effect": "Allow", "Action": [
    "ec2:CreateTags", "ec2:DeleteTags", "ec2:RunInstances", "ec2:Describe*"], "Resource": "*"}]}
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"},
                                                 "Action": "sts:AssumeRole"}]}


def load(name):
    return json.loads((REPO / "docs/iam" / name).read_text())


def role_client(lab, role, service="ec2"):
    sts = lab.client("sts", account=MEMBER)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/{role}", RoleSessionName="attacker")["Credentials"]
    return boto3.client(service, region_name="us-east-1", endpoint_url=lab.endpoint,
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def tags_of(lab, resource_id):
    ec2 = lab.client("ec2", account=MEMBER)
    return {t["Key"]: t["Value"] for t in ec2.describe_tags(
        Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]}


@pytest.fixture
def guarded(demo):
    iam = demo.client("iam", account=MEMBER)
    iam.create_role(RoleName="AppInstanceRole", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.put_role_policy(RoleName="AppInstanceRole", PolicyName="app", PolicyDocument=json.dumps(ATTACKER_POLICY))
    for name in iam.list_role_policies(RoleName=RESPONDER_ROLE)["PolicyNames"]:
        iam.delete_role_policy(RoleName=RESPONDER_ROLE, PolicyName=name)
    iam.put_role_policy(RoleName=RESPONDER_ROLE, PolicyName="responder", PolicyDocument=json.dumps(load("responder.json")))
    demo.service_control_policies({MEMBER: [FULL_AWS_ACCESS, load("guardrail-scp.json")]})
    yield demo
    demo.iam_enforcement(False)
    demo.service_control_policies({})


def test_an_attacker_role_cannot_write_guardduty_tags_and_the_responder_still_isolates(guarded):
    worker = guarded.instance("worker-1")
    eni, instance_id = worker["enis"][0], worker["id"]
    operator = guarded.client("ec2", account=MEMBER)
    operator.create_tags(Resources=[eni], Tags=[{"Key": "guardduty:incident", "Value": "INC-EARLIER"}])
    attacker = role_client(guarded, "AppInstanceRole")
    subnet = operator.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["SubnetId"]
    image = operator.describe_images()["Images"][0]["ImageId"]
    before = {eni: tags_of(guarded, eni), instance_id: tags_of(guarded, instance_id)}
    guarded.iam_enforcement(True)
    mark = guarded.mark()

    forgeries = [
        lambda: attacker.create_tags(Resources=[eni], Tags=[{"Key": "guardduty:original-groups", "Value": "sg-0open"}]),
        lambda: attacker.create_tags(Resources=[instance_id], Tags=[
            {"Key": "Name", "Value": "x"}, {"Key": "guardduty:credentials-record", "Value": '{"r": "decoy"}'}]),
        lambda: attacker.delete_tags(Resources=[eni], Tags=[{"Key": "guardduty:incident"}]),
        lambda: attacker.delete_tags(Resources=[eni]),  # no keys named: every tag
        lambda: attacker.run_instances(ImageId=image, MinCount=1,
                                       MaxCount=1, SubnetId=subnet, TagSpecifications=[{
                                           "ResourceType": "instance", "Tags": [{"Key": "guardduty:replaces",
                                                                                 "Value": instance_id}]}]),
    ]
    for forge in forgeries:
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            forge()
        assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"
        assert "explicit deny in a service control policy" in refused.value.response["Error"]["Message"]
    attacker.create_tags(Resources=[eni, instance_id], Tags=[{"Key": "Owner", "Value": "app-team"}])
    attacker.delete_tags(Resources=[instance_id], Tags=[{"Key": "Owner"}])

    refused = [e for e in guarded.journal(since=mark) if e["injected"] == "iam"]
    assert [e["action"] for e in refused] == ["CreateTags", "CreateTags", "DeleteTags", "DeleteTags", "RunInstances"]
    guarded.iam_enforcement(False)
    assert tags_of(guarded, eni) == dict(before[eni], Owner="app-team")
    assert tags_of(guarded, instance_id) == before[instance_id]
    assert not operator.describe_instances(Filters=[{"Name": "tag-key", "Values": ["guardduty:replaces"]}])["Reservations"]

    # the responder, under the same SCP and with exactly responder.json, isolates and writes its records
    guarded.iam_enforcement(True)
    mark = guarded.mark()
    result = guarded.run_module("cloudsec.guardduty.ec2_isolation", {"instance_ids": [instance_id],
                                                                     "incident_id": "INC-SCP"}, account=MEMBER)
    assert not [e for e in guarded.journal(since=mark) if e["injected"] == "iam"]
    assert next(iter(result["instances"].values()))["state"] == "isolated", result
    guarded.iam_enforcement(False)
    assert tags_of(guarded, instance_id)["guardduty:isolation"] == "isolated"
    assert any(k.startswith("guardduty:original-groups") for k in tags_of(guarded, eni))
