import json

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import securityhub as sh
from ansible_collections.cloudsec.guardduty.plugins.module_utils.securityhub_action import instances_from_findings

IID = "i-0123456789abcdef0"
IID2 = "i-0123456789abcdef1"
DET = "12abc34d567e8fa901bc2d34e56789f0"
GD1 = "8ac7e1f0b2d94c1c9d5e3f6a7b8c9d0e"
GD2 = "9bd8f2a1c3e05d2d0e6f4a7b8c9d0e1f"


def arn(finding_id, partition="aws", region="us-east-1", account="123456789012"):
    return sh.guardduty_finding_arn(partition, region, account, DET, finding_id)


def asff(hub_id, status="NEW", note=None):
    out = {"Id": hub_id, "Workflow": {"Status": status}, "RecordState": "ACTIVE"}
    if note:
        out["Note"] = {"Text": note, "UpdatedBy": "someone", "UpdatedAt": "2026-01-01T00:00:00Z"}
    return out


def test_names_follow_the_callers_partition():
    assert sh.partition_of("arn:aws-us-gov:sts::123456789012:assumed-role/R/s") == "aws-us-gov"
    assert sh.guardduty_product_arn("aws-cn", "cn-north-1") == "arn:aws-cn:securityhub:cn-north-1::product/aws/guardduty"
    assert arn(GD1, partition="aws-cn", region="cn-north-1") == \
        f"arn:aws-cn:guardduty:cn-north-1:123456789012:detector/{DET}/finding/{GD1}"
    with pytest.raises(ValueError):
        sh.partition_of("not-an-arn")


def test_refs_are_ids_or_arns_and_hostile_values_are_refused():
    good, bad = sh.split_finding_refs([GD1, GD1, arn(GD2), "x/../y", "a" * 301, "<script>"])
    assert good == [GD1, arn(GD2)]
    assert set(bad) == {"x/../y", "a" * 301, "<script>"}
    assert sh.asff_id(GD1, "aws", "us-east-1", "123456789012", DET) == arn(GD1)
    assert sh.asff_id(arn(GD2, account="111122223333"), "aws", "us-east-1", "123456789012", DET) == \
        arn(GD2, account="111122223333")
    assert sh.short_id(arn(GD2)) == GD2 and sh.short_id(GD1) == GD1


def test_note_names_incident_action_and_report_and_is_never_cut():
    assert sh.note_text("isolated", "INC-42", "~/guardduty-reports/INC-42/") == \
        "Incident INC-42: isolated Report: ~/guardduty-reports/INC-42/"
    assert sh.note_text(None) is None
    assert len(sh.note_text("x" * 490, "INC-1")) <= sh.NOTE_MAX
    with pytest.raises(ValueError, match="at most 512"):
        sh.note_text("x" * 500, "INC-42", "/reports/INC-42")


def test_plan_updates_only_what_differs_and_reports_missing():
    wanted = {IID: {GD1: arn(GD1), GD2: arn(GD2)}, IID2: {"f" * 32: arn("f" * 32)}}
    found = {arn(GD1): asff(arn(GD1)), arn(GD2): asff(arn(GD2), "NOTIFIED", "Incident INC-1: done")}
    calls, results, missing = sh.plan_updates(wanted, found, "P", "NOTIFIED", "Incident INC-1: done", "me")
    assert calls == [("BatchUpdateFindings", {"FindingIdentifiers": [{"Id": arn(GD1), "ProductArn": "P"}],
                                              "Workflow": {"Status": "NOTIFIED"},
                                              "Note": {"Text": "Incident INC-1: done", "UpdatedBy": "me"}})]
    assert results[IID]["changed"] is True
    assert results[IID]["before"][GD1]["workflow_status"] == "NEW"
    assert results[IID]["after"][GD1] == {"workflow_status": "NOTIFIED", "note": "Incident INC-1: done",
                                          "note_updated_by": "me", "record_state": "ACTIVE"}
    assert results[IID]["after"][GD2] == results[IID]["before"][GD2]  # already so: not rewritten
    assert missing == {IID2: ["f" * 32]}
    assert results[IID2] == {"changed": False, "before": {}, "after": {}, "findings": {}}


def test_rerun_with_everything_in_place_plans_no_call():
    wanted = {IID: {GD1: arn(GD1)}}
    found = {arn(GD1): asff(arn(GD1), "RESOLVED")}
    calls, results, missing = sh.plan_updates(wanted, found, "P", "RESOLVED", None, "me")
    assert calls == [] and results[IID]["changed"] is False and missing == {}


def test_calls_carry_at_most_100_findings_and_filters_20_ids():
    ids = [f"{n:032x}" for n in range(250)]
    wanted = {IID: {i: arn(i) for i in ids}}
    found = {arn(i): asff(arn(i)) for i in ids}
    calls, unused_results, unused_missing = sh.plan_updates(wanted, found, "P", "SUPPRESSED", None, "me")
    assert [len(c[1]["FindingIdentifiers"]) for c in calls] == [100, 100, 50]
    assert all("Note" not in c[1] for c in calls)
    filters = sh.finding_filters("P", [arn(i) for i in ids[:45]])
    assert [len(f["Id"]) for f in filters] == [20, 20, 5]
    assert all(f["ProductArn"] == [{"Value": "P", "Comparison": "EQUALS"}] for f in filters)


def test_unprocessed_findings_by_id():
    response = {"ProcessedFindings": [{"Id": "a", "ProductArn": "P"}],
                "UnprocessedFindings": [{"FindingIdentifier": {"Id": "b", "ProductArn": "P"}, "ErrorCode": "FindingNotFound",
                                         "ErrorMessage": "Finding Not Found"}]}
    assert sh.unprocessed(response) == {"b": ("FindingNotFound", "Finding Not Found")}
    assert sh.describe_call(sh.update_call([("a", "P")], "RESOLVED", None, "me")) == \
        'BatchUpdateFindings {"Workflow":{"Status":"RESOLVED"},"findings":1}'


def test_custom_action_findings_give_each_instance_once_and_ignore_hostile_values():
    instance = f"arn:aws:ec2:us-east-1:123456789012:instance/{IID}"
    other = "arn:aws:ec2:eu-west-1:111122223333:instance/i-0aaaaaaaaaaaaaaaa"
    findings = [
        {"Id": arn(GD1), "Resources": [{"Type": "AwsEc2Instance", "Id": instance}]},
        {"Id": arn(GD2), "Resources": [{"Type": "AwsEc2Instance", "Id": instance}]},
        {"Id": "inspector/finding/1", "Resources": [{"Type": "AwsEc2Instance", "Id": other}]},
        {"Id": arn(GD1, account="999999999999"), "Resources": [{"Type": "AwsEc2Instance", "Id": other}]},  # another account
        {"Id": arn(GD1), "Resources": [{"Type": "AwsEc2Instance", "Id": instance + "; rm -rf /"}]},
        {"Id": arn(GD1), "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::bucket"}]},
        "not a finding",
    ]
    assert instances_from_findings(findings) == [
        {"instance_id": IID, "region": "us-east-1", "account_id": "123456789012", "finding_ids": [GD1, GD2],
         "detector_id": DET},
        {"instance_id": "i-0aaaaaaaaaaaaaaaa", "region": "eu-west-1", "account_id": "111122223333", "finding_ids": [],
         "detector_id": None}]
    assert instances_from_findings(json.dumps(findings[:1]))[0]["finding_ids"] == [GD1]


class Answers:
    """Security Hub's answers to BatchUpdateFindings, in order: a response dict, or an exception to raise."""

    def __init__(self, *answers):
        self.answers, self.requests = list(answers), []

    def batch_update_findings(self, **params):
        self.requests.append(params)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_unprocessed_findings_fail_their_own_instance_and_a_refused_call_fails_all_it_carried():
    from botocore.exceptions import ClientError

    owner = {arn(GD1): IID, arn(GD2): IID2, arn("a" * 32): IID2}
    calls = [sh.update_call([(arn(GD1), "P"), (arn(GD2), "P")], "NOTIFIED", None, "me"),
             sh.update_call([(arn("a" * 32), "P")], "NOTIFIED", None, "me")]
    refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "BatchUpdateFindings")
    client = Answers({"ProcessedFindings": [{"Id": arn(GD1), "ProductArn": "P"}], "UnprocessedFindings": [
        {"FindingIdentifier": {"Id": arn(GD2), "ProductArn": "P"}, "ErrorCode": "ConcurrentUpdateError",
         "ErrorMessage": "Concurrent finding updates detected"}]}, refused)
    failures = sh.apply_calls(client, calls, owner)
    assert len(client.requests) == 2  # the second call is made although the first had an unprocessed finding
    assert failures == {IID2: [(arn(GD2), "BatchUpdateFindings", "ConcurrentUpdateError", "Concurrent finding updates detected"),
                               (arn("a" * 32), "BatchUpdateFindings", "AccessDeniedException", "no")]}
