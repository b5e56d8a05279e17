"""The AWS call floor (plugins/module_utils/aws_calls.py) against the lab: how many requests a throttled call
costs, and a throttled page asked again alone. The journal counts the requests the lab received.

The backoff's sleeps are skipped (they are the policy's, asserted in the unit tests): only the requests count.
"""

import time

import boto3
import pytest

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty as gd


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def floor_client(lab, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=lab.endpoint, config=aws_calls.client_config(),
                        **lab.credentials())


def module_default_client(lab, service):
    """A client as `module.client(service)` makes one: botocore's default retries."""
    return boto3.client(service, region_name="us-east-1", endpoint_url=lab.endpoint, **lab.credentials())


def throttle_every(lab, action, code="RequestLimitExceeded", status=503):
    lab.faults({"forced": [{"action": action, "code": code, "status": status, "count": 1000}]})


def test_a_call_throttled_throughout_is_sent_as_often_as_the_floors_policy_says(demo, no_backoff):
    throttle_every(demo, "DescribeVpcs")
    mark = demo.mark()
    with pytest.raises(Exception) as failed:
        aws_calls.call(floor_client(demo, "ec2"), "DescribeVpcs")
    assert aws_calls.error_code(failed.value) == "RequestLimitExceeded"
    assert len(demo.journal(since=mark, action="DescribeVpcs")) == aws_calls.ATTEMPTS["ec2"]


def test_the_retries_stacked_before_the_floor_multiplied(demo, no_backoff):
    # What the modules did: AWSRetry (10 attempts) over a default client, which retries by itself: botocore's
    # default mode, standard (3 attempts; legacy, before botocore made standard the default: 5).
    botocore_attempts = {"standard": 3, "adaptive": 3, "legacy": 5}[boto3.session.Session()._session.get_config_variable("retry_mode")]
    throttle_every(demo, "DescribeVpcs")
    mark = demo.mark()
    stacked = AWSRetry.jittered_backoff(retries=10, delay=0.5, max_delay=20)(module_default_client(demo, "ec2").describe_vpcs)
    with pytest.raises(Exception):
        stacked()
    assert len(demo.journal(since=mark, action="DescribeVpcs")) == 10 * botocore_attempts


def test_a_call_throttled_a_while_succeeds_through_the_floor(demo, no_backoff):
    demo.faults({"forced": [{"action": "DescribeVpcs", "code": "RequestLimitExceeded", "status": 503, "count": 3}]})
    mark = demo.mark()
    assert aws_calls.call(floor_client(demo, "ec2"), "DescribeVpcs")["Vpcs"]
    assert [e["outcome"] for e in demo.journal(since=mark, action="DescribeVpcs")] == ["RequestLimitExceeded"] * 3 + ["ok"]


def test_a_throttled_page_is_asked_again_alone(demo, no_backoff):
    client = floor_client(demo, "guardduty")
    detector = gd.list_detector_ids(client)[0]
    everything = aws_calls.items(client, "ListFindings", "FindingIds", DetectorId=detector)
    assert len(everything) > 2
    mark = demo.mark()
    pages = aws_calls.pages(client, "ListFindings", DetectorId=detector, MaxResults=2)
    joined = list(next(pages)["FindingIds"])
    # GuardDuty throttles with 429 TooManyRequestsException (rest-json): the next page is refused twice.
    demo.faults({"forced": [{"action": "ListFindings", "code": "TooManyRequestsException", "status": 429, "count": 2}]})
    for page in pages:
        joined += page["FindingIds"]
    assert joined == everything
    outcomes = [e["outcome"] for e in demo.journal(since=mark, action="ListFindings")]
    assert outcomes[:4] == ["ok", "TooManyRequestsException", "TooManyRequestsException", "ok"]
    assert len(outcomes) == (len(everything) + 1) // 2 + 2  # each page once, the throttled one twice more
