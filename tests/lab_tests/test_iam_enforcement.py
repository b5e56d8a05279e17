"""With enforcement on, the lab answers only what the caller's IAM policies allow, as AWS does."""

import json

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.lab.iam_enforcement import evaluate

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def _user_client(lab, iam, user, policy, service, region="us-east-1"):
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return boto3.client(service, region_name=region, endpoint_url=lab.endpoint, config=NO_RETRY,
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


@pytest.fixture
def enforced(demo):
    yield demo
    demo.iam_enforcement(False)


def test_allowed_action_succeeds_and_anything_else_is_denied_with_the_protocols_code(enforced):
    iam = enforced.client("iam")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "guardduty:List*"], "Resource": "*"}]}
    ec2 = _user_client(enforced, iam, "reader", policy, "ec2")
    gd = _user_client(enforced, iam, "reader2", policy, "guardduty")
    enforced.iam_enforcement(True)

    assert ec2.describe_instances()["Reservations"]
    assert gd.list_detectors()["DetectorIds"]
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=enforced.instance("web-1")["enis"][0],
                                               Groups=["sg-12345678"])
    assert denied.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert "ec2:ModifyNetworkInterfaceAttribute" in denied.value.response["Error"]["Message"]
    detector = gd.list_detectors()["DetectorIds"][0]
    with pytest.raises(botocore.exceptions.ClientError) as denied_gd:
        gd.get_findings(DetectorId=detector, FindingIds=["0" * 32])
    assert denied_gd.value.response["Error"]["Code"] == "AccessDeniedException"
    entry = enforced.journal(action="GetFindings")[-1]
    assert entry["injected"] == "iam" and entry["status"] == 403


def test_assumed_role_is_held_to_the_roles_policies(enforced):
    iam = enforced.client("iam", account="111122223333")
    iam.put_role_policy(RoleName="GuardDutyResponder", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}))
    creds = enforced.credentials("111122223333")
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=enforced.endpoint, config=NO_RETRY, **creds)
    enforced.iam_enforcement(True)
    assert ec2.describe_instances()["Reservations"]
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        ec2.create_tags(Resources=[enforced.instance("worker-1")["id"]], Tags=[{"Key": "a", "Value": "b"}])
    assert denied.value.response["Error"]["Code"] == "UnauthorizedOperation"


def test_unknown_access_key_is_refused_and_the_operator_key_is_exempt(enforced):
    enforced.iam_enforcement(True)
    stranger = boto3.client("ec2", region_name="us-east-1", endpoint_url=enforced.endpoint, config=NO_RETRY,
                            aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        stranger.describe_vpcs()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert enforced.client("ec2").describe_vpcs()["Vpcs"]


def test_policy_evaluation_rules():
    allow = {"Statement": [{"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:CreateTags"], "Resource": "*"}]}
    assert evaluate([allow], "ec2:DescribeInstances")
    assert evaluate([allow], "ec2:createtags")  # IAM action names are case-insensitive
    assert not evaluate([allow], "ec2:DeleteTags")
    deny = {"Statement": {"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*"}}
    assert not evaluate([allow, deny], "ec2:CreateTags")
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    assert evaluate([not_action], "ec2:RunInstances") and not evaluate([not_action], "iam:CreateUser")
    conditional = {"Statement": [{"Effect": "Allow", "Action": "ec2:ModifyNetworkInterfaceAttribute",
                                  "Resource": "arn:aws:ec2:*:*:network-interface/*",
                                  "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}]}
    assert evaluate([conditional], "ec2:ModifyNetworkInterfaceAttribute")


def test_conditions_on_keys_the_request_carries_are_evaluated_as_aws_does():
    tag_keys = {"Statement": [{"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
                               "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["guardduty:*"]}}}]}
    assert evaluate([tag_keys], "ec2:CreateTags", {"aws:tagkeys": ["guardduty:a", "guardduty:b"]})
    assert not evaluate([tag_keys], "ec2:CreateTags", {"aws:tagkeys": ["guardduty:a", "Owner"]})
    assert evaluate([tag_keys], "ec2:CreateTags", {})  # ForAllValues holds on an absent key
    request_tag = {"Statement": [{"Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": "*",
                                  "Condition": {"StringEquals": {"aws:RequestTag/guardduty:role": ["isolation"]}}}]}
    assert evaluate([request_tag], "ec2:CreateSecurityGroup", {"aws:requesttag/guardduty:role": ["isolation"]})
    assert not evaluate([request_tag], "ec2:CreateSecurityGroup", {"aws:requesttag/guardduty:role": ["web"]})
    assert not evaluate([request_tag], "ec2:CreateSecurityGroup", {})  # StringEquals fails on an absent key
    null = {"Statement": [{"Effect": "Allow", "Action": "ec2:CreateSnapshots", "Resource": "*",
                           "Condition": {"Null": {"aws:RequestTag/guardduty:incident": "false"}}}]}
    assert evaluate([null], "ec2:CreateSnapshots", {"aws:requesttag/guardduty:incident": ["INC-1"]})
    assert not evaluate([null], "ec2:CreateSnapshots", {})
    create_action = {"Statement": [{"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
                                    "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}}}]}
    assert evaluate([create_action], "ec2:CreateTags", {"ec2:createaction": ["CreateSecurityGroup"]})
    assert not evaluate([create_action], "ec2:CreateTags", {})  # a direct CreateTags call has no ec2:CreateAction
    # keys the lab does not compute (sts:RoleSessionName, ...) count as met in an Allow
    session_name = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
                                   "Condition": {"StringLike": {"sts:RoleSessionName": "cloudsec-*"}}}]}
    assert evaluate([session_name], "sts:AssumeRole", {})
    conditional_deny = {"Statement": [{"Effect": "Deny", "Action": "ec2:*", "Resource": "*",
                                       "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}]}
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}
    assert evaluate([allow_all, conditional_deny], "ec2:DescribeVpcs", {"aws:requestedregion": ["us-east-1"]})
    assert not evaluate([allow_all, conditional_deny], "ec2:DescribeVpcs", {"aws:requestedregion": ["eu-west-1"]})


def test_tag_keys_and_tags_at_creation_are_enforced_on_the_wire(enforced):
    iam = enforced.client("iam")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
         "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["guardduty:*"]}}}]}
    ec2 = _user_client(enforced, iam, "tagger", policy, "ec2")
    instance_id = enforced.instance("web-1")["id"]
    vpc = enforced.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["VpcId"]
    enforced.iam_enforcement(True)

    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "guardduty:isolation", "Value": "isolated"}])
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "guardduty:isolation", "Value": "x"},
                                                       {"Key": "Owner", "Value": "x"}])
    assert denied.value.response["Error"]["Code"] == "UnauthorizedOperation"
    # tags at creation need ec2:CreateTags too: allowed here (guardduty:* keys), refused for another key
    ec2.create_security_group(GroupName="tagged", Description="d", VpcId=vpc, TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "guardduty:role", "Value": "isolation"}]}])
    with pytest.raises(botocore.exceptions.ClientError) as denied_at_creation:
        ec2.create_security_group(GroupName="other", Description="d", VpcId=vpc, TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "Team", "Value": "x"}]}])
    assert "ec2:CreateTags" in denied_at_creation.value.response["Error"]["Message"]
    enforced.iam_enforcement(False)
    tags = enforced.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["Tags"]
    assert {"Key": "Owner", "Value": "x"} not in tags
    names = [g["GroupName"] for g in enforced.client("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]]
    assert "tagged" in names and "other" not in names


def test_associating_an_instance_profile_needs_pass_role_to_ec2(enforced):
    """AWS: AssociateIamInstanceProfile is refused (UnauthorizedOperation, naming iam:PassRole) unless the
    caller may pass the profile's role to EC2; iam:PassedToService is ec2.amazonaws.com."""
    operator = enforced.client("ec2")
    instance_id = enforced.instance("healthy-1")["id"]
    association = operator.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"][0]
    profile = {"Arn": association["IamInstanceProfile"]["Arn"]}
    iam = enforced.client("iam")
    associate = {"Effect": "Allow", "Action": ["ec2:AssociateIamInstanceProfile", "ec2:DisassociateIamInstanceProfile"],
                 "Resource": "*"}

    def user(name, *statements):
        return _user_client(enforced, iam, name, {"Version": "2012-10-17", "Statement": [associate, *statements]}, "ec2")

    without = user("no-pass-role")
    to_lambda = user("pass-role-to-lambda", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                                              "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}})
    to_ec2 = user("pass-role-to-ec2", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                                        "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}})
    enforced.iam_enforcement(True)
    without.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    for refused_client in (without, to_lambda):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            refused_client.associate_iam_instance_profile(IamInstanceProfile=profile, InstanceId=instance_id)
        assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"
        assert "iam:PassRole" in refused.value.response["Error"]["Message"]
    to_ec2.associate_iam_instance_profile(IamInstanceProfile=profile, InstanceId=instance_id)
    enforced.iam_enforcement(False)
    states = [a["State"] for a in operator.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]]
    assert "associated" in states or "associating" in states
