"""securityhub_finding against the lab: the Security Hub copies of the instances' GuardDuty findings, as
Security Hub reports them (GetFindings through boto3), and the calls in the journal.

AWS: BatchUpdateFindings updates up to 100 findings a call and answers per finding (ProcessedFindings,
UnprocessedFindings); GetFindings takes up to 20 values per filter attribute (Security Hub API reference).
"""

MODULE = "cloudsec.guardduty.securityhub_finding"
ADMIN = "123456789012"
MEMBER = "111122223333"
REGION = "us-east-1"
PRODUCT = f"arn:aws:securityhub:{REGION}::product/aws/guardduty"


def detector(lab, account=ADMIN):
    return lab.resources["accounts"][account]["regions"][REGION]["detector_id"]


def ids_on(lab, name, account=ADMIN):
    instance_id = lab.instance(name)["id"]
    held = lab._call("GET", f"/_lab/guardduty?account={account}&region={REGION}")["findings"]
    return [f["Id"] for f in held if (f["Resource"].get("InstanceDetails") or {}).get("InstanceId") == instance_id]


def hub_id(lab, finding_id, account=ADMIN):
    return f"arn:aws:guardduty:{REGION}:{account}:detector/{detector(lab, account)}/finding/{finding_id}"


def hub_state(lab, finding_ids, account=ADMIN):
    """{GuardDuty finding id: (workflow status, note text, note updated by)} as Security Hub reports them."""
    client = lab.client("securityhub", account)
    wanted = [hub_id(lab, i, account) for i in finding_ids]
    found = {}
    for start in range(0, len(wanted), 20):
        filters = {"Id": [{"Value": i, "Comparison": "EQUALS"} for i in wanted[start:start + 20]]}
        for f in client.get_findings(Filters=filters, MaxResults=100)["Findings"]:
            note = f.get("Note") or {}
            found[f["Id"].rsplit("/", 1)[1]] = (f["Workflow"]["Status"], note.get("Text"), note.get("UpdatedBy"))
    return found


def updates(lab, since):
    return [e for e in lab.journal(since=since, service="securityhub") if e["action"] == "BatchUpdateFindings"]


def test_notified_with_a_note_then_rerun_changes_nothing(demo):
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    web_ids, app_ids = ids_on(demo, "web-1"), ids_on(demo, "app-1")
    args = {"findings": {web: web_ids, app: app_ids}, "workflow_status": "NOTIFIED", "incident_id": "INC-42",
            "note": "contained by cloudsec.guardduty.isolate", "report_location": "~/guardduty-reports/INC-42/",
            "detector_id": detector(demo)}
    mark = demo.mark()
    result = demo.run_module(MODULE, args, diff=True)
    note = "Incident INC-42: contained by cloudsec.guardduty.isolate Report: ~/guardduty-reports/INC-42/"
    assert result["changed"] is True and result["note"] == note and result["product_arn"] == PRODUCT
    assert hub_state(demo, web_ids + app_ids) == {i: ("NOTIFIED", note, "cloudsec.guardduty") for i in web_ids + app_ids}
    calls = updates(demo, mark)
    assert len(calls) == 1  # both instances' findings in one call
    assert sorted(f["Id"] for f in calls[0]["params"]["FindingIdentifiers"]) == \
        sorted(hub_id(demo, i) for i in web_ids + app_ids)
    assert {f["ProductArn"] for f in calls[0]["params"]["FindingIdentifiers"]} == {PRODUCT}
    assert set(result["instances"]) == {web, app}
    assert result["instances"][web]["before"][web_ids[0]]["workflow_status"] == "NEW"
    assert result["instances"][web]["after"][web_ids[0]]["workflow_status"] == "NOTIFIED"
    assert result["instances"][web]["findings"][web_ids[0]] == hub_id(demo, web_ids[0])
    assert sorted(result["diff"]["after"]) == sorted([web, app])

    mark = demo.mark()
    again = demo.run_module(MODULE, args)
    assert again["changed"] is False and updates(demo, mark) == []
    assert [e["action"] for e in demo.journal(since=mark, service="securityhub")] == ["GetFindings"]


def test_check_mode_changes_nothing_and_shows_the_calls(demo):
    web = demo.instance("web-1")["id"]
    web_ids = ids_on(demo, "web-1")
    mark = demo.mark()
    result = demo.run_module(MODULE, {"findings": {web: web_ids}, "workflow_status": "SUPPRESSED",
                                      "detector_id": detector(demo)}, check=True, diff=True)
    assert result["changed"] is True
    assert result["instances"][web]["calls"] == [
        'BatchUpdateFindings {"Workflow":{"Status":"SUPPRESSED"},"findings":%d}' % len(web_ids)]
    assert updates(demo, mark) == []
    assert {s for s, unused_note, unused_by in hub_state(demo, web_ids).values()} == {"NEW"}


def test_member_account_without_detector_id_and_a_missing_finding_fails_only_its_instance(demo):
    worker = demo.instance("worker-1")["id"]
    worker_ids = ids_on(demo, "worker-1", account=MEMBER)
    unknown = "0" * 32
    mark = demo.mark()
    result = demo.run_module(MODULE, {"findings": {worker: worker_ids + [unknown]}, "workflow_status": "RESOLVED",
                                      "note": "released as a false positive", "incident_id": "INC-7"},
                             account=MEMBER, expect_rc=(2,))
    actions = [e["action"] for e in demo.journal(since=mark) if e["action"] != "AssumeRole"]
    assert actions == ["GetCallerIdentity", "ListDetectors", "GetFindings", "BatchUpdateFindings"]
    assert result["failed"] is True
    error = result["instances"][worker]["error"]
    assert error["action"] == "GetFindings" and error["code"] == "FindingNotFound" and unknown in error["message"]
    assert worker in result["msg"] and unknown in result["msg"]
    # its other findings are updated all the same
    assert hub_state(demo, worker_ids, account=MEMBER) == {
        i: ("RESOLVED", "Incident INC-7: released as a false positive", "cloudsec.guardduty") for i in worker_ids}


def test_findings_go_100_a_call_and_are_read_20_a_call(demo):
    """150 GuardDuty findings on one instance (imported as GuardDuty would send them)."""
    web = demo.instance("web-1")["id"]
    det = detector(demo)
    ids = [f"{n:032x}" for n in range(150)]
    client = demo.client("securityhub")
    template = {"SchemaVersion": "2018-10-08", "ProductArn": PRODUCT, "AwsAccountId": ADMIN,
                "GeneratorId": f"arn:aws:guardduty:{REGION}:{ADMIN}:detector/{det}",
                "Types": ["TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort"], "CreatedAt": "2026-01-01T00:00:00.000Z",
                "UpdatedAt": "2026-01-01T00:00:00.000Z", "Severity": {"Label": "LOW"}, "Title": "t", "Description": "d",
                "Resources": [{"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:{REGION}:{ADMIN}:instance/{web}"}]}
    for start in range(0, 150, 100):
        answer = client.batch_import_findings(Findings=[dict(template, Id=hub_id(demo, i)) for i in ids[start:start + 100]])
        assert answer["FailedCount"] == 0
    mark = demo.mark()
    result = demo.run_module(MODULE, {"findings": {web: ids}, "workflow_status": "NOTIFIED", "detector_id": det})
    assert result["changed"] is True
    assert [len(e["params"]["FindingIdentifiers"]) for e in updates(demo, mark)] == [100, 50]
    reads = [e for e in demo.journal(since=mark, service="securityhub") if e["action"] == "GetFindings"]
    assert [len(e["params"]["Filters"]["Id"]) for e in reads] == [20] * 7 + [10]
    assert {s for s, unused_note, unused_by in hub_state(demo, ids).values()} == {"NOTIFIED"}


def test_a_failed_update_call_fails_its_instances_by_name(demo):
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    demo.faults({"forced": [{"action": "BatchUpdateFindings", "code": "LimitExceededException", "status": 429, "count": 50}]})
    result = demo.run_module(MODULE, {"findings": {web: ids_on(demo, "web-1"), app: ids_on(demo, "app-1")},
                                      "workflow_status": "NOTIFIED", "detector_id": detector(demo)}, expect_rc=(2,))
    assert result["changed"] is False
    for instance_id in (web, app):
        error = result["instances"][instance_id]["error"]
        assert error["action"] == "BatchUpdateFindings" and error["code"] == "LimitExceededException"
        assert instance_id in error["message"]
    assert {s for s, unused_note, unused_by in hub_state(demo, ids_on(demo, "web-1")).values()} == {"NEW"}


def test_security_hub_off_and_bad_input_change_nothing(demo):
    web = demo.instance("web-1")["id"]
    mark = demo.mark()
    bad = demo.run_module(MODULE, {"findings": {web: ["../etc"]}, "workflow_status": "NOTIFIED"}, expect_rc=(2,))
    assert "malformed GuardDuty finding id" in bad["msg"] and "nothing was changed" in bad["msg"]
    long_note = demo.run_module(MODULE, {"findings": {web: ids_on(demo, "web-1")}, "workflow_status": "NOTIFIED",
                                         "note": "x" * 600}, expect_rc=(2,))
    assert "at most 512" in long_note["msg"]
    assert demo.journal(since=mark, service="securityhub") == []
    demo.client("securityhub").disable_security_hub()
    off = demo.run_module(MODULE, {"findings": {web: ids_on(demo, "web-1")}, "workflow_status": "NOTIFIED",
                                   "detector_id": detector(demo)}, expect_rc=(2,))
    assert "could not read the findings from Security Hub; nothing was changed" in off["msg"]
    assert updates(demo, mark) == []
