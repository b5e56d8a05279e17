"""EC2's token buckets in an organization: one set per account and Region, whoever calls.

AWS ("Request throttling for the Amazon EC2 API", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html):
"Amazon EC2 throttles EC2 API requests for each AWS account on a per-Region basis". So an account's calls in
one Region never draw from another account's bucket or another Region's, and every caller in one account and
Region (the operator, several sessions of a role assumed there) draws from the same one. tests/bench/bench_org.py
relies on it: 20 accounts x 4 Regions are 80 independent sets of buckets, and its floor is the busiest one's.
"""

import boto3
import botocore.exceptions
from botocore.config import Config

from tests.lab.generator import ACCOUNTS, REGIONS
from tests.lab.scenario import LAB_CREDENTIALS, RESPONDER_ROLE


def _session_credentials(lab, account, name):
    """A new sts:AssumeRole session into `account`'s responder role: its own access key."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=lab.endpoint, **LAB_CREDENTIALS)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{RESPONDER_ROLE}", RoleSessionName=name)["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def _ec2(lab, region, credentials):
    return boto3.client("ec2", region_name=region, endpoint_url=lab.endpoint,
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}), **credentials)


def _burst(ec2, n):
    outcomes = []
    for _ in range(n):
        try:
            ec2.describe_vpcs()
            outcomes.append("ok")
        except botocore.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    return outcomes


def test_ec2_buckets_are_per_account_and_region_whoever_calls(lab):
    lab.reset("generated:8:2:2")
    administrator, member = ACCOUNTS[0], ACCOUNTS[1]
    first, second = REGIONS[0], REGIONS[1]
    lab.faults({"token_buckets": {"describe": [2, 0.001]}})  # 2 non-mutating calls, then (practically) no refill
    session_a = _session_credentials(lab, member, "responder-a")
    session_b = _session_credentials(lab, member, "responder-b")
    # the member's bucket in the first Region: two sessions (two access keys) share it, as callers in one account do
    assert _burst(_ec2(lab, first, session_a), 2) == ["ok", "ok"]
    assert _burst(_ec2(lab, first, session_b), 1) == ["RequestLimitExceeded"]
    # another account in the same Region, and the same account in another Region: buckets of their own
    assert _burst(_ec2(lab, first, LAB_CREDENTIALS), 3) == ["ok", "ok", "RequestLimitExceeded"]
    assert _burst(_ec2(lab, second, session_b), 3) == ["ok", "ok", "RequestLimitExceeded"]
    assert _burst(_ec2(lab, second, LAB_CREDENTIALS), 3) == ["ok", "ok", "RequestLimitExceeded"]
    # the journal names the account and Region each throttled call was charged to
    throttled = [(e["account"], e["region"]) for e in lab.journal(action="DescribeVpcs") if e["injected"] == "bucket"]
    assert sorted(throttled) == sorted([(member, first), (administrator, first), (member, second), (administrator, second)])
    assert lab.faults()["counts"]["bucket_throttled"] == 4
