"""EventBridge TestEventPattern in the lab answers as AWS does (tests/lab/fixes/events_test_event_pattern.py)."""

import json

import pytest
from botocore.exceptions import ClientError

EVENT = {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "GuardDuty Finding",
         "source": "aws.guardduty", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
         "region": "us-east-1", "resources": [],
         "detail": {"severity": 8, "type": "Backdoor:EC2/C&CActivity.B", "archived": False,
                    "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef0"}}}}


def result(lab, pattern, event=None):
    return lab.client("events").test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event or EVENT))["Result"]


def test_answers_whether_the_pattern_matches(lab):
    assert result(lab, {"source": ["aws.guardduty"], "detail": {"resource": {"resourceType": ["Instance"]}}}) is True
    assert result(lab, {"source": ["aws.guardduty"], "detail": {"resource": {"resourceType": ["S3Bucket"]}}}) is False
    assert result(lab, {"detail": {"type": [{"prefix": "Backdoor:"}]}}) is True
    assert result(lab, {"detail": {"resource": {"instanceDetails": {"instanceId": [{"exists": True}]}}}}) is True
    assert result(lab, {"detail": {"resource": {"accessKeyDetails": {"userName": [{"exists": True}]}}}}) is False


def test_numeric_matching_compares_numbers(lab):
    assert result(lab, {"detail": {"severity": [{"numeric": [">=", 7]}]}}) is True
    assert result(lab, {"detail": {"severity": [{"numeric": [">", 8]}]}}) is False
    assert result(lab, {"detail": {"severity": [{"numeric": [">", 0, "<=", 8]}]}}) is True
    assert result(lab, {"detail": {"severity": [{"numeric": [">=", 7.5]}]}}) is True
    # AWS: numeric matching applies to JSON numbers only, neither strings nor booleans.
    as_string = json.loads(json.dumps(EVENT))
    as_string["detail"]["severity"] = "8"
    assert result(lab, {"detail": {"severity": [{"numeric": [">=", 7]}]}}, as_string) is False
    assert result(lab, {"detail": {"archived": [{"numeric": ["<", 1]}]}}) is False


def test_event_without_mandatory_fields_is_invalid(lab):
    for field in ("id", "account", "source", "time", "region", "resources", "detail-type"):
        event = {k: v for k, v in EVENT.items() if k != field}
        with pytest.raises(ClientError) as raised:
            result(lab, {"source": ["aws.guardduty"]}, event)
        assert raised.value.response["Error"]["Code"] == "ValidationException", field


def test_invalid_pattern_is_rejected(lab):
    with pytest.raises(ClientError) as raised:
        lab.client("events").test_event_pattern(EventPattern='{"source": "aws.guardduty"}', Event=json.dumps(EVENT))
    assert raised.value.response["Error"]["Code"] == "InvalidEventPatternException"
