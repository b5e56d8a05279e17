"""EventBridge patterns look into arrays of objects (tests/lab/fixes/events_pattern_arrays_of_objects.py).

AWS: the Security Hub User Guide's EventBridge patterns filter `Security Hub Findings` events on fields of
the `detail.findings` array of objects, e.g. {"detail": {"findings": {"ProductName": ["GuardDuty"]}}}; a
field matches when any object of the array has a matching value. moto 5.2.5 never matches such a field.
"""

import json


def result(lab, pattern, event):
    return lab.client("events").test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(event))["Result"]


EVENT = {"version": "0", "id": "1", "detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
         "account": "123456789012", "time": "2026-12-05T12:00:00Z", "region": "us-east-1", "resources": [],
         "detail": {"findings": [{"ProductName": "Inspector", "Resources": [{"Type": "AwsS3Bucket"}], "Severity": {"Normalized": 10}},
                                 {"ProductName": "GuardDuty", "Resources": [{"Type": "AwsEc2Instance"}, {"Type": "AwsIamRole"}],
                                  "Severity": {"Normalized": 80}}]}}


def test_a_field_of_an_array_of_objects_matches_when_any_object_has_it(lab):
    assert result(lab, {"detail": {"findings": {"ProductName": ["GuardDuty"]}}}, EVENT) is True
    assert result(lab, {"detail": {"findings": {"Resources": {"Type": ["AwsEc2Instance"]}}}}, EVENT) is True
    assert result(lab, {"detail": {"findings": {"Severity": {"Normalized": [{"numeric": [">=", 70]}]}}}}, EVENT) is True


def test_no_object_matching_is_no_match(lab):
    assert result(lab, {"detail": {"findings": {"ProductName": ["Macie"]}}}, EVENT) is False
    assert result(lab, {"detail": {"findings": {"Resources": {"Type": ["AwsLambdaFunction"]}}}}, EVENT) is False
    assert result(lab, {"detail": {"findings": {"Severity": {"Normalized": [{"numeric": [">", 90]}]}}}}, EVENT) is False


def test_plain_fields_and_arrays_of_values_as_before(lab):
    event = dict(EVENT, resources=["arn:a", "arn:b"])
    assert result(lab, {"source": ["aws.securityhub"], "resources": ["arn:b"]}, event) is True
    assert result(lab, {"resources": ["arn:c"]}, event) is False
