"""AWS's sts:AssumeRole: a role that does not exist in its account is refused (HTTP 403 AccessDenied, the
role ARN named), as a denied one is; moto would hand out credentials for any ARN."""

import json

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
