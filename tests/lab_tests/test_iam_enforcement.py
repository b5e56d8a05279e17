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


def test_get_caller_identity_needs_no_permission_but_a_valid_key(enforced):
    # AWS (STS API reference, GetCallerIdentity): "No permissions are required to perform this operation",
    # yet an access key nobody owns is refused like any other call: HTTP 403 InvalidClientTokenId.
    iam = enforced.client("iam")
    nothing = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}]}
    sts = _user_client(enforced, iam, "nobody", nothing, "sts")
    stranger = boto3.client("sts", region_name="us-east-1", endpoint_url=enforced.endpoint, config=NO_RETRY,
                            aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x")
    enforced.iam_enforcement(True)
    assert sts.get_caller_identity()["Arn"].endswith(":user/nobody")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        stranger.get_caller_identity()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


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


# -- Resource ARNs, resource tags, explicit deny, SCPs (AWS's evaluation logic) --------------------------
REPO_IAM = __import__("pathlib").Path(__file__).resolve().parents[2] / "docs/iam"


def test_each_resource_the_request_touches_must_be_allowed_and_resource_tags_are_the_resources_own(enforced):
    """AWS authorizes ModifyNetworkInterfaceAttribute on the interface and on each security group it puts on
    it (Service Authorization Reference, Amazon EC2: resource types network-interface*, security-group), each
    with its own aws:ResourceTag; CreateTags on each ResourceId. One resource not allowed refuses the call."""
    operator = enforced.client("ec2")
    inst = enforced.instance("web-1")
    eni = inst["enis"][0]
    vpc = operator.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["VpcId"]
    tagged = operator.create_security_group(GroupName="contain", Description="d", VpcId=vpc, TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "guardduty:role", "Value": "isolation"}]}])["GroupId"]
    untagged = operator.create_security_group(GroupName="plain", Description="d", VpcId=vpc)["GroupId"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:ModifyNetworkInterfaceAttribute",
         "Resource": "arn:aws:ec2:*:*:network-interface/*"},
        {"Effect": "Allow", "Action": "ec2:ModifyNetworkInterfaceAttribute", "Resource": "arn:aws:ec2:*:*:security-group/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/guardduty:role": "isolation"}}},
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "arn:aws:ec2:*:*:instance/*"}]}
    ec2 = _user_client(enforced, enforced.client("iam"), "scoped", policy, "ec2")
    enforced.iam_enforcement(True)

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[untagged])
    assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[tagged, untagged])
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[tagged])
    ec2.create_tags(Resources=[inst["id"]], Tags=[{"Key": "k", "Value": "v"}])
    with pytest.raises(botocore.exceptions.ClientError):  # the ENI is not an instance/* resource
        ec2.create_tags(Resources=[inst["id"], eni], Tags=[{"Key": "k2", "Value": "v"}])
    enforced.iam_enforcement(False)
    groups = operator.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Groups"]
    assert [g["GroupId"] for g in groups] == [tagged]
    tags = {t["Key"] for t in operator.describe_tags(Filters=[{"Name": "resource-id", "Values": [eni]}])["Tags"]}
    assert "k2" not in tags


def test_evaluation_logic_resources_operators_and_explicit_deny():
    instance = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"
    on_instances = {"Statement": [{"Effect": "Allow", "Action": "ec2:ModifyInstanceAttribute",
                                   "Resource": "arn:aws:ec2:*:*:instance/*"}]}
    assert evaluate([on_instances], "ec2:ModifyInstanceAttribute", {}, [(instance, {})])
    assert not evaluate([on_instances], "ec2:ModifyInstanceAttribute", {},
                        [("arn:aws:ec2:us-east-1:111122223333:volume/vol-1", {})])
    # an action without resource-level permissions is authorized on "*" only
    assert not evaluate([{"Statement": [{"Effect": "Allow", "Action": "ec2:DescribeInstances",
                                         "Resource": "arn:aws:ec2:*:*:instance/*"}]}], "ec2:DescribeInstances", {},
                        [("*", None)])
    not_resource = {"Statement": [{"Effect": "Allow", "Action": "iam:PutRolePolicy",
                                   "NotResource": "arn:aws:iam::*:role/GuardDutyResponder"}]}
    assert evaluate([not_resource], "iam:PutRolePolicy", {}, [("arn:aws:iam::1:role/app", None)])
    assert not evaluate([not_resource], "iam:PutRolePolicy", {}, [("arn:aws:iam::1:role/GuardDutyResponder", None)])
    # an explicit Deny on one resource wins over any Allow
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    deny_tagged = {"Statement": [{"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*",
                                  "Condition": {"StringEquals": {"aws:ResourceTag/keep": "yes"}}}]}
    assert not evaluate([allow_all, deny_tagged], "ec2:TerminateInstances", {},
                        [(instance, {}), (instance.replace("abcdef0", "abcdef1"), {"keep": "yes"})])
    assert evaluate([allow_all, deny_tagged], "ec2:TerminateInstances", {}, [(instance, {"keep": "no"})])
    # ArnNotLike on aws:PrincipalArn, ForAnyValue, Bool
    guard = {"Statement": [{"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*", "Condition": {
        "ForAnyValue:StringLike": {"aws:TagKeys": ["guardduty:*"]},
        "ArnNotLike": {"aws:PrincipalArn": "arn:*:iam::*:role/GuardDutyResponder"}}}]}
    attacker = {"aws:principalarn": ["arn:aws:iam::111122223333:role/app"]}
    responder = {"aws:principalarn": ["arn:aws:iam::111122223333:role/GuardDutyResponder"]}
    assert not evaluate([allow_all, guard], "ec2:CreateTags", dict(attacker, **{"aws:tagkeys": ["Name", "guardduty:x"]}))
    assert evaluate([allow_all, guard], "ec2:CreateTags", dict(attacker, **{"aws:tagkeys": ["Name"]}))
    assert evaluate([allow_all, guard], "ec2:CreateTags", dict(responder, **{"aws:tagkeys": ["guardduty:x"]}))
    # ForAnyValue fails on an absent key: the Deny does not apply to a call without tag keys
    assert evaluate([allow_all, guard], "ec2:CreateTags", attacker)
    assert evaluate([{"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*",
                                     "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}], "s3:PutObject", {})


def test_every_resource_scoped_action_of_the_shipped_policies_has_its_resources_built():
    """Otherwise the lab would let any Resource match for it, and the policy's scoping would go unproven."""
    from tests.lab.iam_enforcement import RESOURCE_BUILDERS
    missing = set()
    for path in REPO_IAM.glob("*.json"):
        for statement in json.loads(path.read_text())["Statement"]:
            resources = statement.get("Resource", "*")
            if path.name.endswith("-trust.json") or resources == "*" or resources == ["*"]:
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            missing |= {a for a in actions if a not in RESOURCE_BUILDERS and a != "iam:PassRole"}
    # not called by any playbook (the eradicate role's launch of a replacement; copies of snapshots)
    assert missing <= {"ec2:RunInstances", "ec2:CopySnapshot", "ec2:CreateSnapshot",
                       "autoscaling:TerminateInstanceInAutoScalingGroup"}, sorted(missing)


def test_an_scp_denies_over_any_identity_allow_and_must_allow_too(enforced):
    """AWS Organizations: an explicit Deny in an SCP wins; an action the account's SCPs do not allow is
    refused whatever the identity policies say; the management account is never subject to SCPs."""
    member = "111122223333"
    iam = enforced.client("iam", account=member)
    iam.put_role_policy(RoleName="GuardDutyResponder", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}))
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=enforced.endpoint, config=NO_RETRY,
                       **enforced.credentials(member))
    enforced.service_control_policies({member: [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}]})
    enforced.iam_enforcement(True)
    try:
        assert ec2.describe_vpcs()["Vpcs"]
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            ec2.create_tags(Resources=[enforced.instance("worker-1")["id"]], Tags=[{"Key": "a", "Value": "b"}])
        assert "no service control policy allows" in refused.value.response["Error"]["Message"]
        enforced.service_control_policies({member: [
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
            {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}]})
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            ec2.describe_vpcs()
        assert "explicit deny in a service control policy" in denied.value.response["Error"]["Message"]
        assert ec2.describe_subnets()["Subnets"]
        with pytest.raises(RuntimeError):
            enforced.service_control_policies({"123456789012": [{"Statement": []}]})
    finally:
        enforced.service_control_policies({})


def test_source_instance_arn_is_set_on_sessions_issued_to_an_instance(enforced):
    """EC2 names an instance-profile session after the instance and adds ec2:SourceInstanceARN to its
    requests (IAM User Guide, AWS global condition context keys / ec2:SourceInstanceARN): a Deny on that key
    stops that instance's credentials and no other session of the role."""
    member = "111122223333"
    worker = enforced.instance("worker-1")
    iam = enforced.client("iam", account=member)
    arn = f"arn:aws:ec2:{worker['region']}:{member}:instance/{worker['id']}"
    iam.put_role_policy(RoleName="GuardDutyResponder", PolicyName="q", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*",
             "Condition": {"StringEquals": {"ec2:SourceInstanceARN": [arn]}}}]}))
    sts = enforced.client("sts", account=member)

    def session(name):
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/GuardDutyResponder", RoleSessionName=name)["Credentials"]
        return boto3.client("ec2", region_name=worker["region"], endpoint_url=enforced.endpoint, config=NO_RETRY,
                            aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                            aws_session_token=c["SessionToken"])

    stolen, other = session(worker["id"]), session("someone-else")
    enforced.iam_enforcement(True)
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        stolen.describe_vpcs()
    assert "explicit deny" in denied.value.response["Error"]["Message"]
    assert other.describe_vpcs()["Vpcs"]


def test_s3_operations_are_authorized_by_s3_s_own_action_names(enforced):
    """AWS: ListObjectsV2 and HeadBucket need s3:ListBucket on the bucket, HeadObject needs s3:GetObject on the
    object (Service Authorization Reference, Amazon S3); a policy naming s3:ListObjectsV2 grants nothing."""
    enforced.client("s3").create_bucket(Bucket="store")
    enforced.client("s3").put_object(Bucket="store", Key="records/a.json", Body=b"{}")
    iam = enforced.client("iam")
    right = _user_client(enforced, iam, "reader", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::store"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::store/*"}]}, "s3")
    wrong = _user_client(enforced, iam, "misnamed", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListObjectsV2", "s3:HeadBucket", "s3:HeadObject"], "Resource": "*"}]}, "s3")
    enforced.iam_enforcement(True)
    assert [o["Key"] for o in right.list_objects_v2(Bucket="store")["Contents"]] == ["records/a.json"]
    right.head_bucket(Bucket="store")
    assert right.head_object(Bucket="store", Key="records/a.json")["ContentLength"] == 2
    for call in (lambda: wrong.list_objects_v2(Bucket="store"), lambda: wrong.head_object(Bucket="store", Key="records/a.json")):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    denied = [e for e in enforced.journal(action="ListObjectsV2") if e["status"] == 403]
    assert denied and denied[-1]["outcome"] == "AccessDenied"
