"""AWS's sts:AssumeRole: a role that does not exist in its account is refused (HTTP 403 AccessDenied, the
role ARN named), as a denied one is; moto would hand out credentials for any ARN."""

import json
import time

import boto3
import botocore.exceptions
import pytest

from tests.lab.scenario import RESPONDER_ROLE

MEMBER = "111122223333"


def test_an_existing_responder_role_is_assumed(demo):
    sts = demo.client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/{RESPONDER_ROLE}", RoleSessionName="lab-test")["Credentials"]
    assert creds["AccessKeyId"]


def test_a_role_that_does_not_exist_is_refused_with_access_denied_naming_it(demo):
    sts = demo.client("sts")
    arn = f"arn:aws:iam::{MEMBER}:role/NoSuchResponder"
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sts.assume_role(RoleArn=arn, RoleSessionName="lab-test")
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDenied"
    assert f"sts:AssumeRole on resource: {arn}" in error["Error"]["Message"]
    assert [e["outcome"] for e in demo.journal(action="AssumeRole")][-1] == "AccessDenied"


def test_a_role_created_afterwards_can_be_assumed_and_a_path_is_allowed(demo):
    iam = demo.client("iam", account=MEMBER)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="LateResponder", Path="/security/", AssumeRolePolicyDocument=trust)
    sts = demo.client("sts")
    assert sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/security/LateResponder", RoleSessionName="lab-test")


def assumed_clients(lab, duration):
    """EC2 (ec2 protocol) and GuardDuty (rest-json) clients signed with a fresh session of the member's role."""
    creds = lab.client("sts").assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/{RESPONDER_ROLE}", RoleSessionName="expiry",
                                          DurationSeconds=duration)["Credentials"]
    keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}
    return creds, [boto3.client(service, region_name="us-east-1", endpoint_url=lab.endpoint, **keys)
                   for service in ("ec2", "guardduty")]


def test_assumed_role_credentials_are_refused_once_past_their_expiration(demo):
    """AWS: a request signed with temporary credentials after their Expiration gets HTTP 403 ExpiredToken
    (ExpiredTokenException in the JSON protocols); long-term keys never expire."""
    creds, (ec2, guardduty) = assumed_clients(demo, 900)
    assert creds["Expiration"].timestamp() == pytest.approx(time.time() + 900, abs=30)
    ec2.describe_vpcs()
    guardduty.list_detectors()
    demo.advance_clock(901)
    for call, code in ((ec2.describe_vpcs, "ExpiredToken"), (guardduty.list_detectors, "ExpiredTokenException")):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert refused.value.response["Error"]["Code"] == code
        assert "security token included in the request is expired" in refused.value.response["Error"]["Message"]
    demo.client("ec2").describe_vpcs()  # the lab's own long-term keys still work
    _creds, (fresh_ec2, _gd) = assumed_clients(demo, 3600)  # a new session does too
    fresh_ec2.describe_vpcs()
