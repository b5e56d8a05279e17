"""guardduty_finding_info against the lab: the findings GuardDuty holds, read by id, by instance and by criteria."""

import pathlib

import yaml

MODULE = "cloudsec.guardduty.guardduty_finding_info"
ADMIN = "123456789012"
MEMBER = "111122223333"
REGION = "us-east-1"
DEMO = yaml.safe_load((pathlib.Path(__file__).resolve().parents[1] / "lab/scenarios/demo.yaml").read_text())


def all_findings(lab, account=ADMIN):
    """Every finding the account's detector sees, straight from GuardDuty."""
    client = lab.client("guardduty", account)
    detector = lab.resources["accounts"][account]["regions"][REGION]["detector_id"]
    ids = client.get_paginator("list_findings").paginate(DetectorId=detector).build_full_result()["FindingIds"]
    out = []
    for start in range(0, len(ids), 50):
        out.extend(client.get_findings(DetectorId=detector, FindingIds=ids[start:start + 50])["Findings"])
    return out


def on_instance(findings, instance_id):
    return [f for f in findings if ((f.get("Resource") or {}).get("InstanceDetails") or {}).get("InstanceId") == instance_id]


def test_by_instance_returns_snake_cased_findings_and_a_summary(demo):
    web, worker = demo.instance("web-1")["id"], demo.instance("worker-1")["id"]
    truth = all_findings(demo)
    result = demo.run_module(MODULE, {"instance_ids": [web, worker]})
    assert result["changed"] is False
    expected = {f["Id"] for f in on_instance(truth, web) + on_instance(truth, worker) if not f["Service"]["Archived"]}
    assert {f["id"] for f in result["findings"]} == expected
    first = result["findings"][0]
    assert first["severity"] == max(f["Severity"] for f in truth if f["Id"] in expected)
    assert "instance_details" in first["resource"] and "archived" in first["service"]
    summary = result["instances"][web]
    web_findings = on_instance(truth, web)
    assert summary["finding_count"] == len(web_findings)
    assert summary["max_severity"] == max(f["Severity"] for f in web_findings)
    assert summary["finding_types"] == sorted(f["Type"] for f in web_findings)
    assert set(summary["finding_ids"]) == {f["Id"] for f in web_findings}
    assert result["instances"][worker]["account_id"] == MEMBER  # the administrator sees its member's findings


def test_by_criteria_uses_the_inventory_vocabulary(demo):
    truth = all_findings(demo)
    result = demo.run_module(MODULE, {"min_severity": 7, "exclude_finding_types": ["CryptoCurrency"],
                                      "tags": {"Environment": "prod*"}})
    expected = set()
    for f in truth:
        details = (f.get("Resource") or {}).get("InstanceDetails") or {}
        tags = {t["Key"]: t["Value"] for t in details.get("Tags") or []}
        if details.get("InstanceId") and f["Severity"] >= 7 and not f["Type"].startswith("CryptoCurrency") \
                and tags.get("Environment", "").startswith("prod") and not f["Service"]["Archived"]:
            expected.add(f["Id"])
    assert expected and {f["id"] for f in result["findings"]} == expected
    archived = demo.run_module(MODULE, {"archived": "only", "finding_types": ["UnauthorizedAccess:EC2/*BruteForce"]})
    assert {f["id"] for f in archived["findings"]} == \
        {f["Id"] for f in truth if f["Service"]["Archived"] and f["Type"].endswith("BruteForce")}
    assert archived["instances"] and set(archived["instances"]) == {demo.instance("bastion-1")["id"]}


def test_by_id_returns_them_as_they_are_and_names_missing_ones(demo):
    truth = all_findings(demo)
    s3 = next(f for f in truth if f["Resource"]["ResourceType"] == "S3Bucket")
    archived = next(f for f in truth if f["Service"]["Archived"])
    unknown = "0" * 32
    result = demo.run_module(MODULE, {"finding_ids": [s3["Id"], archived["Id"], unknown]})
    assert sorted(f["id"] for f in result["findings"]) == sorted([s3["Id"], archived["Id"]])
    assert result["missing_finding_ids"] == [unknown]
    member = demo.run_module(MODULE, {"finding_ids": [s3["Id"]]}, account=MEMBER)
    assert member["findings"] == [] and member["missing_finding_ids"] == [s3["Id"]]


def test_many_findings_are_paged_and_fetched_in_batches_of_fifty(demo):
    client = demo.client("guardduty")
    detector = demo.resources["accounts"][ADMIN]["regions"][REGION]["detector_id"]
    for _ in range(6):
        client.create_sample_findings(DetectorId=detector, FindingTypes=["Backdoor:EC2/C&CActivity.B!DNS"] * 10)
    truth = [f for f in all_findings(demo) if f["Type"] == "Backdoor:EC2/C&CActivity.B!DNS"]
    assert len(truth) > 50
    mark = demo.mark()
    result = demo.run_module(MODULE, {"finding_types": ["Backdoor:EC2/C&CActivity.B!DNS"]})
    assert {f["id"] for f in result["findings"]} == {f["Id"] for f in truth}
    calls = demo.journal(since=mark, service="guardduty")
    assert len([e for e in calls if e["action"] == "ListFindings"]) >= 2
    gets = [e for e in calls if e["action"] == "GetFindings"]
    assert len(gets) >= 2 and all(len(e["params"]["findingIds"]) <= 50 for e in gets)
