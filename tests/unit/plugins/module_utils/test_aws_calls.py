"""The AWS call floor: retries on each service's listed codes only, paging with per-page retry, filters in
chunks of 200, one error code/message, the (action, params) call shape.

AWS answers come from botocore's Stubber on real clients (the request parameters are checked against the
service model), or from a small fake where the Stubber cannot raise (connection errors).
"""

import contextlib
import json

import pytest
from ansible.module_utils.testing import patch_module_args

boto3 = pytest.importorskip("boto3")
botocore = pytest.importorskip("botocore")

from botocore.exceptions import ClientError, EndpointConnectionError  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from ansible_collections.amazon.aws.plugins.module_utils import cloud  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E402
from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls  # noqa: E402


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """The backoff's sleeps, recorded instead of slept."""
    slept = []
    monkeypatch.setattr(cloud.time, "sleep", slept.append)
    return slept


SESSION = boto3.session.Session()  # one session: botocore's models are loaded once


def client(service):
    return SESSION.client(service, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="secret", config=aws_calls.client_config())


def stubbed(service):
    c = client(service)
    stub = Stubber(c)
    stub.activate()
    return c, stub


# -- retries ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("service, operation, params, code, answer", [
    ("ec2", "DescribeRegions", {}, "RequestLimitExceeded", {"Regions": []}),
    ("ec2", "DescribeRegions", {}, "InternalError", {"Regions": []}),
    ("guardduty", "ListDetectors", {}, "TooManyRequestsException", {"DetectorIds": []}),
    ("guardduty", "ListDetectors", {}, "ThrottlingException", {"DetectorIds": []}),
    ("guardduty", "ListDetectors", {}, "InternalServerErrorException", {"DetectorIds": []}),
    ("securityhub", "GetFindings", {}, "TooManyRequestsException", {"Findings": []}),
    ("securityhub", "GetFindings", {}, "InternalException", {"Findings": []}),
    ("sts", "GetCallerIdentity", {}, "Throttling", {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/x",
                                                    "UserId": "AIDA"}),
    ("iam", "ListRolePolicies", {"RoleName": "r"}, "ServiceFailure", {"PolicyNames": []}),
    ("s3", "ListBuckets", {}, "SlowDown", {"Buckets": []}),
    ("support", "DescribeCases", {}, "ThrottlingException", {"cases": []}),
    ("autoscaling", "DescribeAutoScalingInstances", {}, "ResourceContention", {"AutoScalingInstances": []}),
])
def test_a_listed_code_is_retried_until_the_call_succeeds(service, operation, params, code, answer, no_sleep):
    c, stub = stubbed(service)
    method = botocore.xform_name(operation)
    stub.add_client_error(method, service_error_code=code, http_status_code=400)
    stub.add_client_error(method, service_error_code=code, http_status_code=400)
    stub.add_response(method, answer)
    assert aws_calls.call(c, operation, **params) == answer
    stub.assert_no_pending_responses()
    assert len(no_sleep) == 2


@pytest.mark.parametrize("service, operation, code", [
    ("ec2", "DescribeRegions", "UnauthorizedOperation"),
    ("ec2", "DescribeRegions", "InvalidParameterValue"),
    ("guardduty", "ListDetectors", "BadRequestException"),
    ("guardduty", "ListDetectors", "AccessDeniedException"),
    ("support", "DescribeCases", "SubscriptionRequiredException"),
])
def test_any_other_code_fails_at_once(service, operation, code, no_sleep):
    c, stub = stubbed(service)
    stub.add_client_error(botocore.xform_name(operation), service_error_code=code, http_status_code=400)
    with pytest.raises(ClientError) as failed:
        aws_calls.call(c, operation)
    assert aws_calls.error_code(failed.value) == code
    assert no_sleep == []


def test_a_code_is_retried_only_for_the_services_that_list_it(no_sleep):
    # EC2 does not answer ThrottlingException (its throttle is RequestLimitExceeded): not retried there.
    c, stub = stubbed("ec2")
    stub.add_client_error("describe_regions", service_error_code="ThrottlingException", http_status_code=400)
    with pytest.raises(ClientError):
        aws_calls.call(c, "DescribeRegions")
    assert no_sleep == []


def test_extra_codes_are_retried_for_that_call_only(no_sleep):
    c, stub = stubbed("ec2")
    stub.add_client_error("create_tags", service_error_code="InvalidSnapshot.NotFound", http_status_code=400)
    stub.add_response("create_tags", {})
    aws_calls.call(c, "CreateTags", extra_codes=("InvalidSnapshot.NotFound",), Resources=["snap-1"], Tags=[])
    stub.add_client_error("create_tags", service_error_code="InvalidSnapshot.NotFound", http_status_code=400)
    with pytest.raises(ClientError):
        aws_calls.call(c, "CreateTags", Resources=["snap-1"], Tags=[])
    assert len(no_sleep) == 1


def test_attempts_are_bounded_per_service(no_sleep):
    c, stub = stubbed("ec2")
    for _attempt in range(aws_calls.ATTEMPTS["ec2"]):
        stub.add_client_error("describe_regions", service_error_code="RequestLimitExceeded", http_status_code=503)
    with pytest.raises(ClientError):
        aws_calls.call(c, "DescribeRegions")
    stub.assert_no_pending_responses()  # every attempt made, and no more (the Stubber would have run dry)
    assert len(no_sleep) == aws_calls.ATTEMPTS["ec2"] - 1
    assert all(0 <= s <= aws_calls.MAX_DELAY for s in no_sleep)


class FlakyConnection:
    """A client whose first answers are connection errors (the Stubber answers only with HTTP responses)."""

    class meta:  # noqa: N801 (botocore's attribute)
        class service_model:  # noqa: N801
            service_name = "guardduty"

        config = aws_calls.client_config()

    def __init__(self, failures):
        self.failures, self.calls = failures, 0

    def list_detectors(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise EndpointConnectionError(endpoint_url="https://guardduty.us-east-1.amazonaws.com")
        return {"DetectorIds": ["d1"]}


def test_connection_errors_are_retried_since_botocore_no_longer_does(no_sleep):
    flaky = FlakyConnection(2)
    assert aws_calls.call(flaky, "ListDetectors") == {"DetectorIds": ["d1"]}
    assert flaky.calls == 3


def test_a_client_with_botocore_retries_has_its_connection_errors_retried_there_only(no_sleep):
    flaky = FlakyConnection(1)
    flaky.meta = type("meta", (), {"service_model": FlakyConnection.meta.service_model,
                                   "config": Config(retries={"mode": "adaptive", "max_attempts": 10})})
    with pytest.raises(EndpointConnectionError):
        aws_calls.call(flaky, "ListDetectors")
    assert flaky.calls == 1 and no_sleep == []


def test_the_floors_clients_leave_retries_to_the_floor():
    # botocore's default mode would send a throttled call up to 5 times under each of our attempts.
    config = client("ec2").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}


# -- paging ----------------------------------------------------------------------------------------

def test_pages_are_joined_and_a_throttled_page_is_asked_again_alone(no_sleep):
    c, stub = stubbed("guardduty")
    first = {"DetectorId": "d1", "MaxResults": 2}
    second = dict(first, NextToken="t1")
    stub.add_response("list_findings", {"FindingIds": ["a", "b"], "NextToken": "t1"}, first)
    stub.add_client_error("list_findings", service_error_code="TooManyRequestsException", http_status_code=429,
                          expected_params=second)
    stub.add_response("list_findings", {"FindingIds": ["c"]}, second)
    assert aws_calls.items(c, "ListFindings", "FindingIds", DetectorId="d1", MaxResults=2) == ["a", "b", "c"]
    stub.assert_no_pending_responses()  # the first page was asked once
    assert len(no_sleep) == 1


def test_paging_follows_the_paginator_models_tokens():
    # Classic ELB pages with Marker / NextMarker (botocore's paginator model), not NextToken.
    c, stub = stubbed("elb")
    stub.add_response("describe_load_balancers", {"LoadBalancerDescriptions": [{"LoadBalancerName": "a"}], "NextMarker": "m"}, {})
    stub.add_response("describe_load_balancers", {"LoadBalancerDescriptions": [{"LoadBalancerName": "b"}]}, {"Marker": "m"})
    names = [lb["LoadBalancerName"] for lb in aws_calls.items(c, "DescribeLoadBalancers", "LoadBalancerDescriptions")]
    assert names == ["a", "b"]
    stub.assert_no_pending_responses()


def test_a_repeated_token_ends_the_paging():
    c, stub = stubbed("ec2")
    stub.add_response("describe_vpcs", {"Vpcs": [{"VpcId": "vpc-1"}], "NextToken": "same"}, {})
    stub.add_response("describe_vpcs", {"Vpcs": [{"VpcId": "vpc-2"}], "NextToken": "same"}, {"NextToken": "same"})
    assert [v["VpcId"] for v in aws_calls.items(c, "DescribeVpcs", "Vpcs")] == ["vpc-1", "vpc-2"]


# -- describe by filter in chunks --------------------------------------------------------------------

def test_filter_values_are_sent_200_at_a_time_with_the_other_filters():
    c, stub = stubbed("ec2")
    ids = [f"i-{n:017x}" for n in range(450)]
    state = {"Name": "instance-state-name", "Values": ["running"]}
    for chunk in (ids[:200], ids[200:400], ids[400:]):
        stub.add_response("describe_instances", {"Reservations": [{"ReservationId": f"r-{chunk[0][2:]}", "Instances": []}]},
                          {"Filters": [{"Name": "instance-id", "Values": chunk}, state]})
    found = aws_calls.describe_by_filter(c, "DescribeInstances", "Reservations", "instance-id", ids, filters=[state])
    assert len(found) == 3
    stub.assert_no_pending_responses()


def test_ids_are_sent_in_chunks_of_the_apis_limit():
    c, stub = stubbed("autoscaling")
    ids = [f"i-{n:017x}" for n in range(120)]
    for chunk in (ids[:50], ids[50:100], ids[100:]):
        stub.add_response("describe_auto_scaling_instances", {"AutoScalingInstances": []}, {"InstanceIds": chunk})
    assert aws_calls.describe_by_ids(c, "DescribeAutoScalingInstances", "AutoScalingInstances", "InstanceIds", ids, size=50) == []
    stub.assert_no_pending_responses()


def test_no_values_no_call():
    c, stub = stubbed("ec2")
    assert aws_calls.describe_by_filter(c, "DescribeInstances", "Reservations", "instance-id", []) == []
    stub.assert_no_pending_responses()


def test_chunks():
    assert [len(c) for c in aws_calls.chunks(range(120), 50)] == [50, 50, 20]
    assert aws_calls.chunks([], 50) == []


# -- errors ----------------------------------------------------------------------------------------

def test_error_code_and_message():
    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "CreateTags")
    assert (aws_calls.error_code(refused), aws_calls.error_message(refused)) == ("AccessDenied", "no")
    other = ValueError("bad")
    assert (aws_calls.error_code(other), aws_calls.error_message(other)) == ("ValueError", "bad")


def test_describing_names_the_failed_call():
    def fails():
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeVpcs")

    with pytest.raises(aws_calls.DescribeError) as failed:
        aws_calls.describing("DescribeVpcs", fails)
    assert failed.value.action == "DescribeVpcs" and aws_calls.error_code(failed.value.cause) == "AccessDenied"


# -- the call shape --------------------------------------------------------------------------------

def test_describe_call():
    call = ("CreateTags", {"Resources": ["i-1"], "Tags": [{"Key": "k", "Value": "v"}]})
    assert aws_calls.describe_call(call) == 'CreateTags {"Resources":["i-1"],"Tags":[{"Key":"k","Value":"v"}]}'
    assert aws_calls.describe_call(call, service="ec2", hide=("Resources",)) == 'ec2:CreateTags {"Tags":[{"Key":"k","Value":"v"}]}'


def test_make_calls_stops_at_the_first_failure_and_says_what_was_done(no_sleep):
    c, stub = stubbed("ec2")
    stub.add_response("create_tags", {})
    stub.add_client_error("delete_tags", service_error_code="UnauthorizedOperation", http_status_code=403)
    calls = [("CreateTags", {"Resources": ["i-1"], "Tags": [{"Key": "k", "Value": "v"}]}),
             ("DeleteTags", {"Resources": ["i-1"], "Tags": [{"Key": "old"}]}),
             ("CreateTags", {"Resources": ["i-1"], "Tags": [{"Key": "never", "Value": "made"}]})]
    with pytest.raises(ClientError) as failed:
        aws_calls.make_calls(lambda action: c, calls)
    assert failed.value.action == "DeleteTags"
    assert failed.value.done == [aws_calls.describe_call(calls[0])]
    stub.assert_no_pending_responses()


# -- one boto3 session for a module's clients ------------------------------------------------------

@contextlib.contextmanager
def aws_module(monkeypatch, **params):
    """A real AnsibleAWSModule with the common AWS options `params` (no AWS variables from the environment),
    its arguments in place until the block ends (as until a task's module exits)."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_URL", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with patch_module_args(params):
        yield AnsibleAWSModule(argument_spec={})


def test_module_clients_share_one_session_with_the_module_s_connection_options(monkeypatch):
    with aws_module(monkeypatch, region="eu-west-1", access_key="AKIDEXAMPLE", secret_key="secret",
                    session_token="token", endpoint_url="http://127.0.0.1:5000",
                    aws_config={"connect_timeout": 7}) as module:
        clients = aws_calls.ModuleClients(module)
        ec2 = clients.client("ec2", config=aws_calls.client_config(read_timeout=11))
        session = clients.session
        sts = clients.client("sts")
    assert clients.session is session  # the second client came from the same session (its loader, its endpoints)
    for client in (ec2, sts):
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.endpoint_url == "http://127.0.0.1:5000"
        credentials = client._request_signer._credentials
        assert (credentials.access_key, credentials.secret_key, credentials.token) == ("AKIDEXAMPLE", "secret", "token")
        assert client.meta.config.connect_timeout == 7  # the task's aws_config
        assert "APN/1.0 Ansible/" in client.meta.config.user_agent  # amazon.aws's user agent, as module.client sets it
    assert ec2.meta.config.read_timeout == 11 and ec2.meta.config.retries == aws_calls.CLIENT_RETRIES


def test_module_clients_let_the_task_s_aws_config_override_the_module_s_config(monkeypatch):
    with aws_module(monkeypatch, region="us-east-1", aws_config={"retries": {"mode": "adaptive", "max_attempts": 4}}) as module:
        ec2 = aws_calls.ModuleClients(module).client("ec2", config=aws_calls.client_config())
    # botocore counts the first attempt too: max_attempts 4 (retries) is total_max_attempts 5, not the floor's 1
    assert ec2.meta.config.retries["mode"] == "adaptive" and ec2.meta.config.retries["total_max_attempts"] == 5


def test_module_clients_fail_the_module_without_a_region(monkeypatch, capsys):
    with aws_module(monkeypatch, access_key="AKIDEXAMPLE", secret_key="secret") as module:
        with pytest.raises(SystemExit):
            aws_calls.ModuleClients(module).client("ec2")
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] and "region is required" in out["msg"]


def test_module_clients_give_an_assumed_roles_session_its_own_region_and_credentials_from_the_same_session(monkeypatch):
    with aws_module(monkeypatch, region="us-east-1", access_key="AKIDEXAMPLE", secret_key="secret") as module:
        clients = aws_calls.ModuleClients(module)
        own = clients.client("sts")
        role = clients.client("sts", region="eu-west-1", aws_access_key_id="ASIAROLE", aws_secret_access_key="rolesecret",
                              aws_session_token="roletoken")
    assert own.meta.region_name == "us-east-1" and role.meta.region_name == "eu-west-1"
    signed = role._request_signer._credentials
    assert (signed.access_key, signed.secret_key, signed.token) == ("ASIAROLE", "rolesecret", "roletoken")
    assert own._request_signer._credentials.access_key == "AKIDEXAMPLE"
