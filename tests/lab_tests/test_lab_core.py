"""The lab itself: scenarios, accounts, the journal and each fault mode."""

import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.request

import botocore.exceptions
import pytest
from botocore.config import Config

from tests.lab.faults import TokenBucket
from tests.lab.pytest_plugin import REPO


def test_lab_command_prints_ready_line_and_serves_only_loopback(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tests.lab", "--port", "0", "--scenario", "empty"],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        deadline = time.time() + 60
        while "LAB READY" not in line and time.time() < deadline:
            line = proc.stdout.readline()
        assert line.startswith("LAB READY http://127.0.0.1:")
        endpoint = line.split()[-1]
        with urllib.request.urlopen(endpoint + "/_lab/health", timeout=10) as response:
            assert json.loads(response.read())["ready"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_scenario_spans_two_accounts_and_two_regions(demo):
    accounts = demo.resources["accounts"]
    assert set(accounts) == {"123456789012", "111122223333"}
    for account in accounts.values():
        assert set(account["regions"]) == {"us-east-1", "eu-west-1"}
    worker = demo.instance("worker-1")
    assert worker["account"] == "111122223333"
    # The member account's instance is visible there, and only there.
    member = demo.client("ec2", account="111122223333")
    ids = [i["InstanceId"] for r in member.describe_instances()["Reservations"] for i in r["Instances"]]
    assert worker["id"] in ids
    admin_ids = [i["InstanceId"] for r in demo.client("ec2").describe_instances()["Reservations"]
                 for i in r["Instances"]]
    assert worker["id"] not in admin_ids


def test_demo_instances_have_the_shapes_the_scenario_asks_for(demo):
    ec2 = demo.client("ec2")
    web = demo.instance("web-1")
    instance = ec2.describe_instances(InstanceIds=[web["id"]])["Reservations"][0]["Instances"][0]
    assert instance["IamInstanceProfile"]["Arn"].endswith("instance-profile/web-role")
    assert len(instance["BlockDeviceMappings"]) == 2
    assert instance["NetworkInterfaces"][0]["Ipv6Addresses"]
    assert instance["NetworkInterfaces"][0]["Association"]["PublicIp"] == web["public_ip"]
    app = demo.instance("app-1")
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=app["enis"])["NetworkInterfaces"]
    assert len({e["VpcId"] for e in enis}) == 2
    asg = demo.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[web["id"]])
    assert asg["AutoScalingInstances"][0]["AutoScalingGroupName"] == "web-asg"
    tg = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["target_groups"]["web-tg"]
    health = demo.client("elbv2").describe_target_health(TargetGroupArn=tg)
    assert [t["Target"]["Id"] for t in health["TargetHealthDescriptions"]] == [web["id"]]


def test_journal_records_each_request_in_order_with_account_region_and_parameters(demo):
    since = demo.mark()
    web = demo.instance("web-1")
    demo.client("ec2").describe_instances(InstanceIds=[web["id"]])
    demo.client("ec2", account="111122223333", region="eu-west-1").describe_vpcs()
    entries = demo.journal(since)
    actions = [(e["account"], e["region"], e["service"], e["action"]) for e in entries if e["service"] == "ec2"]
    assert actions == [("123456789012", "us-east-1", "ec2", "DescribeInstances"),
                       ("111122223333", "eu-west-1", "ec2", "DescribeVpcs")]
    first = [e for e in entries if e["action"] == "DescribeInstances"][0]
    assert first["params"]["InstanceId.1"] == web["id"]
    assert first["outcome"] == "ok" and first["status"] == 200
    assert entries == sorted(entries, key=lambda e: e["seq"])


def test_journal_names_rest_json_operations_and_records_errors(demo):
    since = demo.mark()
    gd = demo.client("guardduty")
    gd.list_detectors()
    with pytest.raises(botocore.exceptions.ClientError):
        demo.client("ec2").describe_instances(InstanceIds=["i-0123456789abcdef0"])
    entries = demo.journal(since)
    assert [e["action"] for e in entries if e["service"] == "guardduty"] == ["ListDetectors"]
    failed = [e for e in entries if e["action"] == "DescribeInstances"][0]
    assert failed["outcome"] == "InvalidInstanceID.NotFound" and failed["status"] == 400


def test_journal_never_keeps_user_data(demo):
    since = demo.mark()
    ec2 = demo.client("ec2")
    subnet = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]["app-a"]
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet, UserData="password=hunter2")
    run = demo.journal(since, action="RunInstances")[0]
    assert "hunter2" not in json.dumps(run)
    assert not any(k.startswith("UserData") for k in run["params"])


def _no_retry_client(lab, service, region="us-east-1"):
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=lab.endpoint,
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_forced_error_for_a_named_action_and_resource(demo):
    web, app = demo.instance("web-1"), demo.instance("app-1")
    demo.faults({"forced": [{"action": "DescribeInstances", "resource": web["id"], "code": "UnauthorizedOperation",
                             "status": 403}]})
    ec2 = _no_retry_client(demo, "ec2")
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        ec2.describe_instances(InstanceIds=[web["id"]])
    assert denied.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert ec2.describe_instances(InstanceIds=[app["id"]])["Reservations"]
    entry = demo.journal(action="DescribeInstances")[-2]
    assert entry["injected"] == "forced" and entry["outcome"] == "UnauthorizedOperation"


def test_forced_error_count_limits_how_often_it_fires(demo):
    demo.faults({"forced": [{"action": "DescribeVpcs", "code": "InternalError", "status": 500, "count": 1}]})
    ec2 = _no_retry_client(demo, "ec2")
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.describe_vpcs()
    assert ec2.describe_vpcs()["Vpcs"]
    assert demo.faults()["counts"]["forced"] == 1


def test_forced_error_skip_lets_the_first_matching_calls_through(demo):
    demo.faults({"forced": [{"action": "DescribeVpcs", "code": "InternalError", "status": 500, "skip": 2, "count": 1}]})
    ec2 = _no_retry_client(demo, "ec2")
    ec2.describe_subnets()  # another action: neither skipped nor refused
    assert ec2.describe_vpcs()["Vpcs"] and ec2.describe_vpcs()["Vpcs"]
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.describe_vpcs()
    assert ec2.describe_vpcs()["Vpcs"]  # count 1: once only
    assert demo.faults()["counts"]["forced"] == 1


def test_forced_access_denied_on_a_json_protocol_names_the_action(demo):
    demo.faults({"forced": [{"service": "guardduty", "action": "ListDetectors", "code": "AccessDeniedException",
                             "status": 403}]})
    gd = _no_retry_client(demo, "guardduty")
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        gd.list_detectors()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "guardduty:ListDetectors" in denied.value.response["Error"]["Message"]


@pytest.mark.parametrize("service,call,code", [
    ("ec2", lambda c: c.describe_vpcs(), "RequestLimitExceeded"),
    ("sts", lambda c: c.get_caller_identity(), "Throttling"),
    ("guardduty", lambda c: c.list_detectors(), "TooManyRequestsException"),
])
def test_random_throttling_uses_each_protocols_code(demo, service, call, code):
    demo.faults({"throttle_rate": 1.0})
    client = _no_retry_client(demo, service)
    with pytest.raises(botocore.exceptions.ClientError) as throttled:
        call(client)
    assert throttled.value.response["Error"]["Code"] == code


def test_random_faults_hit_at_the_configured_rates_and_botocore_retries_through_them(demo):
    demo.faults({"throttle_rate": 0.10, "error_rate": 0.02, "seed": 7})
    ec2 = demo.client("ec2")  # standard retry mode, 10 attempts
    for _ in range(200):
        ec2.describe_vpcs()
    counts = demo.faults()["counts"]
    calls = 200 + counts["throttled"] + counts["server_error"]
    assert 0.05 < counts["throttled"] / calls < 0.16
    assert 0.003 < counts["server_error"] / calls < 0.05
    failures = [e for e in demo.journal(action="DescribeVpcs") if e["injected"]]
    assert {e["outcome"] for e in failures} <= {"RequestLimitExceeded", "InternalError"}


def test_token_bucket_throttles_mutating_calls_beyond_capacity_then_refills(demo):
    demo.faults({"token_buckets": {"mutating": [5, 2.0], "describe": [1000, 1000]}})
    ec2 = _no_retry_client(demo, "ec2")
    outcomes = []
    for _ in range(8):
        try:
            ec2.create_tags(Resources=[demo.instance("web-1")["id"]], Tags=[{"Key": "k", "Value": "v"}])
            outcomes.append("ok")
        except botocore.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes[:5] == ["ok"] * 5
    assert "RequestLimitExceeded" in outcomes[5:]
    ec2.describe_vpcs()  # describes draw from their own bucket
    time.sleep(1.2)  # two tokens come back within a second at 2/s
    ec2.create_tags(Resources=[demo.instance("web-1")["id"]], Tags=[{"Key": "k", "Value": "v"}])


def test_token_buckets_are_per_account_and_region(demo):
    demo.faults({"token_buckets": {"mutating": [1, 0.001]}})
    ec2_us = _no_retry_client(demo, "ec2")
    ec2_eu = _no_retry_client(demo, "ec2", region="eu-west-1")
    ec2_us.create_tags(Resources=[demo.instance("web-1")["id"]], Tags=[{"Key": "a", "Value": "1"}])
    ec2_eu.create_tags(Resources=[demo.instance("api-1")["id"]], Tags=[{"Key": "a", "Value": "1"}])
    with pytest.raises(botocore.exceptions.ClientError):
        ec2_us.create_tags(Resources=[demo.instance("web-1")["id"]], Tags=[{"Key": "a", "Value": "2"}])


def _burst(call, n):
    outcomes = []
    for _ in range(n):
        try:
            call()
            outcomes.append("ok")
        except botocore.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    return outcomes


def test_token_buckets_are_each_services_own(demo):
    # EC2 documents its buckets (EC2 API reference, Request throttling); GuardDuty, IAM and STS publish none,
    # so `token_buckets: true` is EC2's alone, and a bucket given by category is EC2's: here its describe bucket
    # runs dry after 5 while GuardDuty, IAM and STS reads go through.
    demo.faults({"token_buckets": True})
    assert demo.faults()["token_buckets"] == {"ec2": {"mutating": [200, 5.0], "describe": [100, 20.0]}}
    demo.faults({"token_buckets": {"describe": [5, 0.001]}})
    ec2, gd, iam, sts = (_no_retry_client(demo, s) for s in ("ec2", "guardduty", "iam", "sts"))
    assert _burst(ec2.describe_vpcs, 6) == ["ok"] * 5 + ["RequestLimitExceeded"]
    assert set(_burst(gd.list_detectors, 20)) == {"ok"}
    assert set(_burst(iam.list_roles, 20)) == {"ok"}
    assert set(_burst(sts.get_caller_identity, 20)) == {"ok"}


def test_a_services_buckets_by_name_with_its_own_throttling_code_and_iam_is_global(demo):
    demo.faults({"token_buckets": {"guardduty": {"describe": [2, 0.001]}, "iam": {"describe": [2, 0.001]}}})
    gd = _no_retry_client(demo, "guardduty")
    assert _burst(gd.list_detectors, 3) == ["ok", "ok", "TooManyRequestsException"]
    assert set(_burst(_no_retry_client(demo, "ec2").describe_vpcs, 120)) == {"ok"}  # no bucket given for EC2
    # IAM is global: a call signed for another Region draws from the same account bucket
    assert _burst(_no_retry_client(demo, "iam").list_roles, 2) == ["ok", "ok"]
    assert _burst(_no_retry_client(demo, "iam", region="eu-west-1").list_roles, 1) == ["Throttling"]


def test_latency_holds_each_answer_within_the_range_and_concurrent_calls_overlap(demo):
    demo.faults({"latency_ms": [1000, 1000]})
    ec2 = demo.client("ec2")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _i: ec2.describe_vpcs(), range(4)))
    assert time.monotonic() - started >= 1.0  # a lower bound: sleep never returns early
    # The four holds overlap (each call is received before any is answered), as concurrent calls do
    # on AWS: one slow caller does not stand in for many.
    calls = demo.journal(action="DescribeVpcs")
    assert len(calls) == 4
    assert max(c["started"] for c in calls) < min(c["time"] for c in calls)
    assert demo.faults()["latency_ms"] == [1000.0, 1000.0]


def test_a_request_in_flight_at_a_mark_is_not_in_the_journal_after_it(demo):
    # A test's journal is what its own run asked: a long poll an earlier test left in flight (SQS, 20 s) is
    # answered after the next test's mark but was not asked by it.
    demo.faults({"latency_ms": [800, 800]})
    ec2 = demo.client("ec2")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        earlier = pool.submit(ec2.describe_vpcs)
        time.sleep(0.3)  # the call is in the lab, held
        mark = demo.mark()
        ec2.describe_subnets()
        earlier.result()
    assert [e["action"] for e in demo.journal(mark) if e["action"] in ("DescribeVpcs", "DescribeSubnets")] == ["DescribeSubnets"]
    assert [e["action"] for e in demo.journal() if e["action"] == "DescribeVpcs"] == ["DescribeVpcs"]  # still journaled


def test_latency_rejects_a_reversed_range(demo):
    with pytest.raises(Exception, match="latency_ms"):
        demo.faults({"latency_ms": [200, 100]})


def test_token_bucket_arithmetic():
    now = [0.0]
    bucket = TokenBucket(2, 5.0, clock=lambda: now[0])
    assert bucket.take() and bucket.take() and not bucket.take()
    now[0] = 0.2  # one token at 5/s
    assert bucket.take() and not bucket.take()
    now[0] = 100.0  # never above capacity
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_every_answer_carries_its_date_in_the_labs_clock(demo):
    # AWS answers with a Date header (RFC 9110 section 6.6.1); the lab's is its own clock, which its answers are in
    # (guardduty_malware_scan counts AWS's one-hour rescan rule from it).
    from email.utils import parsedate_to_datetime
    guardduty, ec2 = demo.client("guardduty"), demo.client("ec2")
    before = time.time()
    demo.advance_clock(7200)
    for answer in (guardduty.list_detectors(), ec2.describe_instances()):
        dates = answer["ResponseMetadata"]["HTTPHeaders"]["date"]
        assert dates.count("GMT") == 1, dates   # one Date, not the HTTP server's and the lab's
        assert parsedate_to_datetime(dates).timestamp() >= before + 7200 - 2


def test_a_connection_stays_open_between_requests_as_aws_keeps_it(demo):
    # AWS's endpoints keep an HTTP/1.1 connection alive between requests, and botocore (urllib3's pool) sends a
    # client's next request on it; the lab answered every request with Connection: close (werkzeug), so every call
    # to it cost a new connection.
    ec2 = demo.client("ec2")
    answers = [ec2.describe_regions(), ec2.describe_vpcs(), ec2.describe_instances()]
    assert all((a["ResponseMetadata"]["HTTPHeaders"].get("connection") or "").lower() != "close" for a in answers)
    pool = ec2._endpoint.http_session._manager.connection_from_url(demo.endpoint)
    assert (pool.num_connections, pool.num_requests) == (1, 3)


def test_a_chunked_request_is_still_answered_and_its_connection_closed(demo):
    # A body without Content-Length cannot be read whole before the application: the lab answers it, then closes.
    import http.client
    import urllib.parse
    endpoint = urllib.parse.urlsplit(demo.endpoint)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=10)
    try:
        connection.request("GET", "/_lab/health", body=iter([b""]), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked"})
        answer = connection.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["ready"] is True
        assert answer.will_close
    finally:
        connection.close()


def test_an_answer_is_not_held_back_by_nagles_algorithm():
    # An AWS answer on a kept-alive connection comes at once. The lab writes an answer's headers and body
    # separately: with Nagle's algorithm on its socket, the body waited for the client's delayed ACK of the headers,
    # 40 ms a call (48 ms a sequential call against 3 ms). The lab's handler sets TCP_NODELAY on each connection.
    import socket
    import threading
    from werkzeug.serving import make_server
    from tests.lab.server import QuietRequestHandler

    seen = []

    class Recording(QuietRequestHandler):
        def setup(self):
            super().setup()
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def app(_environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Recording)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=10) as answer:
            assert answer.read() == b"ok"
    finally:
        server.shutdown()
    assert seen and all(seen), seen
