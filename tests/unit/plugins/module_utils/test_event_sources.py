# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json
import os

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import event_sources as es


def finding(finding_id, updated, severity=8.0):
    return {"Id": finding_id, "UpdatedAt": updated, "Severity": severity}


def test_aws_options_arguments_aliases_then_environment():
    env = {"AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_REGION": "eu-west-1",
           "AWS_URL": "http://lab"}
    assert es.aws_options("s", {}, env) == {"access_key": "env-key", "secret_key": "env-secret", "session_token": None,
                                            "profile": None, "region": "eu-west-1", "endpoint_url": "http://lab"}
    given = es.aws_options("s", {"aws_access_key_id": "k", "aws_secret_key": "x", "aws_region": "us-east-1",
                                 "aws_endpoint_url": "http://other"}, env)
    assert (given["access_key"], given["secret_key"], given["region"], given["endpoint_url"]) == \
        ("k", "x", "us-east-1", "http://other")
    assert es.aws_options("s", {"profile": "ops"}, env)["access_key"] is None     # the argument wins
    with pytest.raises(es.SourceOptionError, match="mutually exclusive"):
        es.aws_options("s", {"profile": "ops", "access_key": "k", "secret_key": "x"}, {})
    with pytest.raises(es.SourceOptionError, match="same option"):
        es.aws_options("s", {"access_key": "a", "aws_access_key": "b"}, {})
    with pytest.raises(es.SourceOptionError, match="go together"):
        es.aws_options("s", {"access_key": "a"}, {})
    assert es.session_arguments(es.aws_options("s", {}, {})) == {}


def test_sqs_options_bounds_and_queue():
    options = es.sqs_options({"queue_name": "q", "region": "us-east-1"}, {})
    assert (options["wait_time_seconds"], options["max_messages"], options["visibility_timeout"]) == (20, 10, 120)
    assert es.sqs_options({"name": "q", "region": "r", "delay_seconds": 5}, {})["wait_time_seconds"] == 5
    for bad in ({"wait_time_seconds": 21}, {"max_messages": 0}, {"visibility_timeout": "soon"}):
        with pytest.raises(es.SourceOptionError):
            es.sqs_options(dict({"queue_name": "q", "region": "r"}, **bad), {})
    with pytest.raises(es.SourceOptionError, match="one of them"):
        es.sqs_options({"queue_name": "q", "queue_url": "https://x", "region": "r"}, {})
    with pytest.raises(es.SourceOptionError, match="region is required"):
        es.sqs_options({"queue_name": "q"}, {})


def test_sqs_event_parses_json_and_keeps_other_bodies():
    assert es.sqs_event({"Body": '{"detail": {"id": "f"}}', "MessageId": "m"}) == \
        {"body": {"detail": {"id": "f"}}, "meta": {"MessageId": "m"}}
    assert es.sqs_event({"Body": "not json", "MessageId": "m"})["body"] == "not json"


def test_poller_options_use_the_inventory_filter():
    options = es.poller_options({"regions": "us-east-1, eu-west-1", "min_severity": "4", "updated_since": "1h",
                                 "accounts": ["111122223333"], "state_file": "~/s.json"}, {}, now=10000)
    assert options["regions"] == ["us-east-1", "eu-west-1"]
    assert options["selection"]["min_severity"] == 4.0 and options["selection"]["updated_since"] == (10000 - 3600) * 1000
    assert options["accounts"] == [{"account_id": "111122223333",
                                    "role_arn": "arn:aws:iam::111122223333:role/GuardDutyResponder"}]
    assert options["state_file"] == os.path.expanduser("~/s.json")
    with pytest.raises(es.SourceOptionError, match="12-digit"):
        es.poller_options({"regions": ["r"], "accounts": ["12"]}, {})
    with pytest.raises(es.SourceOptionError, match="regions is required"):
        es.poller_options({}, {})


def test_ledger_emits_new_and_updated_findings_once(tmp_path):
    ledger = es.FindingLedger(str(tmp_path / "state" / "s.json"), overlap_ms=60000)
    start = es.timestamp_ms("2026-01-01T00:00:00.000Z")
    assert ledger.since("a", "r", start) == start
    first = [finding("f1", "2026-01-01T00:01:00.000Z"), finding("f2", "2026-01-01T00:00:30.000Z")]
    assert [f["Id"] for f in ledger.due("a", "r", first)] == ["f2", "f1"]          # oldest update first
    for item in first:
        ledger.record("a", "r", item)
    ledger.polled("a", "r", first)
    assert ledger.due("a", "r", first) == []                                          # listed again: nothing
    updated = [finding("f1", "2026-01-01T00:05:00.000Z"), first[1]]
    assert [f["Id"] for f in ledger.due("a", "r", updated)] == ["f1"]                 # updated: once more
    ledger.record("a", "r", updated[0])
    ledger.polled("a", "r", updated)
    assert ledger.since("a", "r", start) == es.timestamp_ms("2026-01-01T00:04:00.000Z")
    assert set(ledger.scopes["a/r"]["emitted"]) == {"f1"}                             # f2 is below the overlap
    ledger.save()
    assert os.stat(ledger.path).st_mode & 0o777 == 0o600
    again = es.FindingLedger(ledger.path, overlap_ms=60000).load()                    # a restart
    assert again.due("a", "r", updated) == []
    assert again.since("a", "r", 0) == ledger.since("a", "r", start)


def test_ledger_never_lists_before_the_first_start(tmp_path):
    ledger = es.FindingLedger(str(tmp_path / "s.json"), overlap_ms=600000)
    start = es.timestamp_ms("2026-01-01T00:00:00.000Z")
    ledger.since("a", "r", start)
    ledger.polled("a", "r", [])
    assert ledger.since("a", "r", 0) == start


def test_ledger_refuses_a_damaged_state_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"version": 1, "scopes": {"a/r": {"watermark": "x"}}}))
    with pytest.raises(es.SourceOptionError, match="damaged"):
        es.FindingLedger(str(path), 0).load()
    path.write_text("{")
    with pytest.raises(es.SourceOptionError, match="cannot be read"):
        es.FindingLedger(str(path), 0).load()


def test_finding_event_is_the_eventbridge_event():
    event = es.finding_event({"id": "f", "updatedAt": "t", "type": "Backdoor:EC2/X"}, "us-east-1", "123456789012")
    assert event["body"]["detail-type"] == "GuardDuty Finding" and event["body"]["source"] == "aws.guardduty"
    assert event["body"]["detail"]["id"] == "f" and event["body"]["region"] == "us-east-1"


def test_in_thread_hands_back_the_result_and_the_exception():
    import asyncio

    def fail():
        raise RuntimeError("refused")

    async def both():
        assert await es.in_thread("t", lambda: 42) == 42
        with pytest.raises(RuntimeError, match="refused"):
            await es.in_thread("t", fail)
    asyncio.run(both())


# -- batches (the SQS source's batch_window) ---------------------------------------------------------------
ADMIN, MEMBER = "123456789012", "111122223333"


def message(n, finding_type, severity, instance="i-0123456789abcdef0", account=MEMBER, region="us-east-1",
            finding_id=None):
    detail = {"id": finding_id or f"f{n:031d}", "type": finding_type, "severity": severity, "accountId": account,
              "region": region, "service": {"detectorId": "d0"},
              "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": instance}}}
    body = {"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "account": ADMIN, "detail": detail}
    return {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": json.dumps(body)}


def batch(**args):
    return es.sqs_options(dict({"queue_name": "q", "region": "us-east-1", "batch_window": 2}, **args), {})["batch"]


def test_batch_options_default_to_one_event_per_message_and_check_bounds():
    options = es.sqs_options({"queue_name": "q", "region": "us-east-1"}, {})["batch"]
    assert (options["window"], options["size"], options["dedupe_within"]) == (0, 100, 3600)
    for bad in ({"batch_window": 21}, {"batch_size": 0}, {"isolate_min_severity": 11}, {"isolate_types": ["("]}):
        with pytest.raises(es.SourceOptionError):
            batch(**bad)


@pytest.mark.parametrize("finding_type, severity, instance, action", [
    ("Backdoor:EC2/C&CActivity.B", 8.0, "i-0123456789abcdef0", "isolate"),
    ("CryptoCurrency:Runtime/BitcoinTool.B", 7.0, "i-0123456789abcdef0", "isolate"),
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", 8.0, "i-0123456789abcdef0", "isolate"),
    ("UnauthorizedAccess:EC2/SSHBruteForce", 5.0, "i-0123456789abcdef0", "scan"),       # medium
    ("Policy:EC2/Something", 8.0, "i-0123456789abcdef0", "scan"),                       # high, other family
    ("Backdoor:EC2/C&CActivity.B", 3.9, "i-0123456789abcdef0", "ignore"),               # low
    ("Recon:EC2/PortProbeUnprotectedPort", 8.0, "i-0123456789abcdef0", "ignore"),       # port probe
    ("Backdoor:EC2/C&CActivity.B", 8.0, "i-0abc; rm -rf /", "ignore"),                   # hostile id
    ("xBackdoor:EC2/C&CActivity.B", 8.0, "i-0123456789abcdef0", "scan"),                # anchored, as `is match`
])
def test_finding_action_is_the_per_finding_rules(finding_type, severity, instance, action):
    body = es.sqs_event(message(1, finding_type, severity, instance))["body"]
    assert es.finding_action(body, batch())[0] == action
    assert es.finding_action("not json", batch())[0] is None
    assert es.finding_action({"source": "aws.securityhub", "detail": {}}, batch())[0] is None


def test_batch_names_each_instance_once_isolation_taking_its_scans():
    planner = es.BatchPlanner(batch())
    a, b, c = "i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2", "i-0ccccccccccccccc3"
    messages = [message(1, "Backdoor:EC2/C&CActivity.B", 8.0, a), message(2, "UnauthorizedAccess:EC2/SSHBruteForce", 5.0, a),
                message(3, "CryptoCurrency:EC2/BitcoinTool.B", 8.0, b, account=ADMIN, region="eu-west-1"),
                message(4, "UnauthorizedAccess:EC2/SSHBruteForce", 5.0, c),
                message(5, "Backdoor:EC2/C&CActivity.B", 8.0, a, finding_id=f"f{1:031d}"),   # delivered twice
                message(6, "Recon:EC2/PortProbeUnprotectedPort", 5.0, c),
                {"MessageId": "m7", "ReceiptHandle": "r7", "Body": "not json"}]
    events = planner.plan(messages, now=100.0)
    assert [e["body"]["action"] if isinstance(e["body"], dict) else None for e in events] == ["isolate", "scan", "ignore", None]
    isolate, scan, ignore, own = events
    assert [(i["account_id"], i["region"], i["instance_id"]) for i in isolate["body"]["instances"]] == \
        [(MEMBER, "us-east-1", a), (ADMIN, "eu-west-1", b)]
    assert isolate["body"]["instances"][0]["finding_ids"] == [f"f{1:031d}", f"f{2:031d}"]   # its scan finding too
    assert isolate["body"]["id"] == f"f{1:031d}" and isolate["body"]["source"] == "cloudsec.guardduty.sqs"
    assert [i["instance_id"] for i in scan["body"]["instances"]] == [c]
    assert ignore["body"]["ignored"] == [{"finding_id": f"f{6:031d}", "reason": "low severity or ignored type"}]
    assert own["body"] == "not json"


def test_batch_never_hands_an_instance_over_twice_within_dedupe_within():
    planner = es.BatchPlanner(batch(dedupe_within=60))
    a, b = "i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"
    planner.plan([message(1, "UnauthorizedAccess:EC2/SSHBruteForce", 5.0, b)], now=0.0)      # b scanned
    first = planner.plan([message(2, "Backdoor:EC2/C&CActivity.B", 8.0, a)], now=1.0)
    assert [i["instance_id"] for i in first[0]["body"]["instances"]] == [a]
    # a is being contained: neither its new isolating finding nor a scan finding start a run; b is isolated now
    later = planner.plan([message(3, "Trojan:EC2/DNSDataExfiltration", 8.0, a),
                          message(4, "UnauthorizedAccess:EC2/SSHBruteForce", 5.0, a),
                          message(5, "Backdoor:EC2/C&CActivity.B", 8.0, b)], now=30.0)
    assert [(e["body"]["action"], [i["instance_id"] for i in e["body"]["instances"]]) for e in later] == \
        [("isolate", [b]), ("ignore", [])]
    assert {i["finding_id"] for i in later[1]["body"]["ignored"]} == {f"f{3:031d}", f"f{4:031d}"}
    # past the window, a is handed over again
    assert planner.plan([message(6, "Backdoor:EC2/C&CActivity.B", 8.0, a)], now=62.0)[0]["body"]["action"] == "isolate"


class FakeSts:
    """sts:AssumeRole answering credentials that end `lifetimes` seconds from now, one after the other."""

    def __init__(self, *lifetimes):
        self.lifetimes, self.calls = list(lifetimes), []

    def assume_role(self, RoleArn, RoleSessionName):
        import datetime
        self.calls.append((RoleArn, RoleSessionName))
        n = len(self.calls)
        end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.lifetimes[n - 1])
        return {"Credentials": {"AccessKeyId": f"ASIA{n}", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": end}}


def test_an_assumed_role_session_renews_its_credentials_before_they_expire():
    role = "arn:aws:iam::111122223333:role/GuardDutyResponder"
    lasting = FakeSts(3600)
    session = es.assumed_role_session(lasting, role, "cloudsec-guardduty-eda")
    assert lasting.calls == [(role, "cloudsec-guardduty-eda")]  # the first AssumeRole is made at once
    assert session.get_credentials().get_frozen_credentials().access_key == "ASIA1"
    assert len(lasting.calls) == 1  # an hour left: nothing to renew
    ending = FakeSts(300, 3600)  # five minutes left: inside botocore's refresh margin
    session = es.assumed_role_session(ending, role, "cloudsec-guardduty-eda")
    assert session.get_credentials().get_frozen_credentials().access_key == "ASIA2" and len(ending.calls) == 2
