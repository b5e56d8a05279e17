"""The lab's Security Hub findings, through boto3, as AWS answers them (tests/lab/securityhub.py).

AWS behaviour stated here (Security Hub API reference; GuardDuty User Guide, "Integration with AWS
Security Hub"):
- GuardDuty sends each finding to Security Hub in ASFF when both are enabled in the account and
  Region: ProductArn arn:aws:securityhub:REGION::product/aws/guardduty, Id the GuardDuty finding ARN;
- GetFindings filters (up to 10 attributes, up to 20 values each; MaxResults 1..100); without
  Security Hub enabled: InvalidAccessException;
- BatchUpdateFindings: up to 100 FindingIdentifiers; Workflow.Status and Note (Text, UpdatedBy,
  UpdatedAt set by Security Hub); a finding the caller cannot see comes back in UnprocessedFindings
  (FindingNotFound), a repeated one as DuplicatedFindingIdentifier; an administrator updates its
  members' findings, a member only its own;
- BatchImportFindings keeps what BatchUpdateFindings set (Workflow, Note) when the provider updates a finding.
"""

import botocore.exceptions
import pytest

ADMIN = "123456789012"
MEMBER = "111122223333"
REGION = "us-east-1"
PRODUCT = f"arn:aws:securityhub:{REGION}::product/aws/guardduty"


def hub(lab, account=ADMIN, region=REGION):
    return lab.client("securityhub", account, region)


def guardduty_findings(lab, account, region=REGION):
    return lab._call("GET", f"/_lab/guardduty?account={account}&region={region}")["findings"]


def by_id(client, ids):
    filters = {"ProductArn": [{"Value": PRODUCT, "Comparison": "EQUALS"}],
               "Id": [{"Value": i, "Comparison": "EQUALS"} for i in ids]}
    return {f["Id"]: f for f in client.get_findings(Filters=filters, MaxResults=100)["Findings"]}


def test_guardduty_findings_appear_in_security_hub_as_asff(demo):
    gd = [f for f in guardduty_findings(demo, ADMIN) if f["Resource"].get("InstanceDetails")]
    web1 = demo.instance("web-1")["id"]
    found = by_id(hub(demo), [f["Arn"] for f in gd])
    assert set(found) == {f["Arn"] for f in gd}
    one = next(f for f in gd if f["Resource"]["InstanceDetails"]["InstanceId"] == web1)
    asff = found[one["Arn"]]
    detector = one["Service"]["DetectorId"]
    assert asff["Id"] == f"arn:aws:guardduty:{REGION}:{ADMIN}:detector/{detector}/finding/{one['Id']}"
    assert asff["ProductArn"] == PRODUCT
    assert asff["AwsAccountId"] == ADMIN
    assert asff["GeneratorId"] == f"arn:aws:guardduty:{REGION}:{ADMIN}:detector/{detector}"
    assert asff["Resources"][0]["Type"] == "AwsEc2Instance"
    assert asff["Resources"][0]["Id"] == f"arn:aws:ec2:{REGION}:{ADMIN}:instance/{web1}"
    assert asff["Workflow"] == {"Status": "NEW"} and asff["RecordState"] == "ACTIVE"
    assert asff["Severity"]["Product"] == one["Severity"]


def test_filters_select_and_page(demo):
    client = hub(demo)
    web1 = demo.instance("web-1")["id"]
    by_resource = client.get_findings(Filters={"ResourceId": [
        {"Value": f"arn:aws:ec2:{REGION}:{ADMIN}:instance/{web1}", "Comparison": "EQUALS"}]})["Findings"]
    assert by_resource and all(f["Resources"][0]["Id"].endswith(web1) for f in by_resource)
    everything = client.get_findings(Filters={"ProductArn": [{"Value": PRODUCT, "Comparison": "EQUALS"}]})["Findings"]
    first = client.get_findings(MaxResults=1)
    assert len(first["Findings"]) == 1 and first["NextToken"]
    second = client.get_findings(MaxResults=100, NextToken=first["NextToken"])["Findings"]
    assert len(second) == len(everything) - 1
    assert client.get_findings(Filters={"Id": [{"Value": "arn:aws:guardduty:nowhere", "Comparison": "EQUALS"}]})[
        "Findings"] == []


def test_filter_limits(demo):
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        hub(demo).get_findings(Filters={"Id": [{"Value": f"x{i}", "Comparison": "EQUALS"} for i in range(21)]})
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        hub(demo).get_findings(MaxResults=101)
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"


def test_batch_update_sets_workflow_and_note_and_reports_unprocessed(demo):
    client = hub(demo)
    arns = [f["Arn"] for f in guardduty_findings(demo, ADMIN)][:2]
    unknown = {"Id": arns[0] + "0", "ProductArn": PRODUCT}
    answer = client.batch_update_findings(
        FindingIdentifiers=[{"Id": a, "ProductArn": PRODUCT} for a in arns] + [unknown, {"Id": arns[0], "ProductArn": PRODUCT}],
        Workflow={"Status": "NOTIFIED"}, Note={"Text": "INC-1: contained", "UpdatedBy": "test"})
    assert [p["Id"] for p in answer["ProcessedFindings"]] == arns
    assert {(u["FindingIdentifier"]["Id"], u["ErrorCode"]) for u in answer["UnprocessedFindings"]} == {
        (unknown["Id"], "FindingNotFound"), (arns[0], "DuplicatedFindingIdentifier")}
    found = by_id(client, arns)
    for arn in arns:
        assert found[arn]["Workflow"]["Status"] == "NOTIFIED"
        assert found[arn]["Note"]["Text"] == "INC-1: contained" and found[arn]["Note"]["UpdatedBy"] == "test"
        assert found[arn]["Note"]["UpdatedAt"]


def test_batch_update_limits(demo):
    client = hub(demo)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.batch_update_findings(FindingIdentifiers=[{"Id": f"x{i}", "ProductArn": PRODUCT} for i in range(101)],
                                     Workflow={"Status": "RESOLVED"})
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"
    arn = guardduty_findings(demo, ADMIN)[0]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.batch_update_findings(FindingIdentifiers=[{"Id": arn, "ProductArn": PRODUCT}],
                                     Note={"Text": "x" * 513, "UpdatedBy": "test"})
    assert excinfo.value.response["Error"]["Code"] == "InvalidInputException"


def test_administrator_updates_members_findings_member_only_its_own(demo):
    member_arn = guardduty_findings(demo, MEMBER)[0]["Arn"]
    admin_arn = guardduty_findings(demo, ADMIN)[0]["Arn"]
    answer = hub(demo, ADMIN).batch_update_findings(FindingIdentifiers=[{"Id": member_arn, "ProductArn": PRODUCT}],
                                                    Workflow={"Status": "RESOLVED"})
    assert [p["Id"] for p in answer["ProcessedFindings"]] == [member_arn]
    assert by_id(hub(demo, MEMBER), [member_arn])[member_arn]["Workflow"]["Status"] == "RESOLVED"
    answer = hub(demo, MEMBER).batch_update_findings(FindingIdentifiers=[{"Id": admin_arn, "ProductArn": PRODUCT}],
                                                     Workflow={"Status": "RESOLVED"})
    assert answer["ProcessedFindings"] == []
    assert answer["UnprocessedFindings"][0]["ErrorCode"] == "FindingNotFound"


def test_not_enabled_is_invalid_access(demo):
    client = hub(demo)
    client.disable_security_hub()
    for call in (lambda: client.get_findings(), lambda: client.batch_update_findings(
            FindingIdentifiers=[{"Id": "x", "ProductArn": PRODUCT}], Workflow={"Status": "NEW"})):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "InvalidAccessException"
    client.enable_security_hub(EnableDefaultStandards=False)
    own = client.get_findings(Filters={"AwsAccountId": [{"Value": ADMIN, "Comparison": "EQUALS"}]})["Findings"]
    assert len(own) == len(guardduty_findings(demo, ADMIN))  # GuardDuty sends them again


def test_provider_update_keeps_workflow_and_note_and_archive_changes_record_state(demo):
    client = hub(demo)
    finding = guardduty_findings(demo, ADMIN)[0]
    arn = finding["Arn"]
    client.batch_update_findings(FindingIdentifiers=[{"Id": arn, "ProductArn": PRODUCT}], Workflow={"Status": "NOTIFIED"},
                                 Note={"Text": "kept", "UpdatedBy": "test"})
    gd = demo.client("guardduty")
    gd.archive_findings(DetectorId=finding["Service"]["DetectorId"], FindingIds=[finding["Id"]])
    asff = by_id(client, [arn])[arn]
    assert asff["RecordState"] == "ARCHIVED"
    assert asff["Workflow"]["Status"] == "NOTIFIED" and asff["Note"]["Text"] == "kept"
    gd.unarchive_findings(DetectorId=finding["Service"]["DetectorId"], FindingIds=[finding["Id"]])
    asff = by_id(client, [arn])[arn]
    assert asff["RecordState"] == "ACTIVE" and asff["Workflow"]["Status"] == "NEW"  # ARCHIVED -> ACTIVE reopens


def test_batch_import_keeps_customer_fields_and_rejects_incomplete(demo):
    client = hub(demo)
    product = f"arn:aws:securityhub:{REGION}:{ADMIN}:product/{ADMIN}/default"
    finding = {"SchemaVersion": "2018-10-08", "Id": "custom-1", "ProductArn": product, "GeneratorId": "lab",
               "AwsAccountId": ADMIN, "Types": ["Software and Configuration Checks"], "CreatedAt": "2026-01-01T00:00:00Z",
               "UpdatedAt": "2026-01-01T00:00:00Z", "Severity": {"Label": "LOW"}, "Title": "t", "Description": "d",
               "Resources": [{"Type": "Other", "Id": "r"}]}
    assert client.batch_import_findings(Findings=[finding])["SuccessCount"] == 1
    client.batch_update_findings(FindingIdentifiers=[{"Id": "custom-1", "ProductArn": product}],
                                 Workflow={"Status": "SUPPRESSED"})
    client.batch_import_findings(Findings=[dict(finding, Title="t2", UpdatedAt="2026-01-02T00:00:00Z")])
    stored = client.get_findings(Filters={"Id": [{"Value": "custom-1", "Comparison": "EQUALS"}]})["Findings"][0]
    assert stored["Title"] == "t2" and stored["Workflow"]["Status"] == "SUPPRESSED"
    answer = client.batch_import_findings(Findings=[dict(finding, Id="custom-2", Resources=[])])  # no resource
    assert answer["FailedCount"] == 1 and answer["FailedFindings"][0]["ErrorCode"] == "InvalidInput"
