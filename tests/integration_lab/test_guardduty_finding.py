"""guardduty_finding against the lab: archive state and feedback as GuardDuty reports them, and the journal.

AWS: "Only the administrator account can archive findings. Member accounts don't have permission to
archive findings from their accounts." (ArchiveFindings API reference)
"""

MODULE = "cloudsec.guardduty.guardduty_finding"
ADMIN = "123456789012"
MEMBER = "111122223333"
REGION = "us-east-1"
WRITES = ("ArchiveFindings", "UnarchiveFindings", "UpdateFindingsFeedback")


def detector(lab, account=ADMIN):
    return lab.resources["accounts"][account]["regions"][REGION]["detector_id"]


def ids_on(lab, instance_id, account=ADMIN):
    client = lab.client("guardduty", account)
    return client.list_findings(DetectorId=detector(lab, account), FindingCriteria={"Criterion": {
        "resource.instanceDetails.instanceId": {"Equals": [instance_id]}}})["FindingIds"]


def states(lab, finding_ids, account=ADMIN):
    found = lab.client("guardduty", account).get_findings(DetectorId=detector(lab, account), FindingIds=finding_ids)
    return {f["Id"]: (f["Service"]["Archived"], f["Service"].get("UserFeedback")) for f in found["Findings"]}


def writes(lab, since):
    return [e for e in lab.journal(since=since, service="guardduty") if e["action"] in WRITES]


def test_archive_with_feedback_then_rerun_changes_nothing(demo):
    web_ids = ids_on(demo, demo.instance("web-1")["id"])
    bastion_ids = ids_on(demo, demo.instance("bastion-1")["id"])  # already archived in the demo
    ids = web_ids + bastion_ids
    mark = demo.mark()
    result = demo.run_module(MODULE, {"finding_ids": ids, "state": "archived", "feedback": "USEFUL",
                                      "comment": "contained, imaged and replaced"}, diff=True)
    assert result["changed"] is True
    assert states(demo, ids) == {i: (True, "USEFUL") for i in ids}
    archive_calls = [e for e in writes(demo, mark) if e["action"] == "ArchiveFindings"]
    assert [sorted(e["params"]["findingIds"]) for e in archive_calls] == [sorted(web_ids)]  # only the active ones
    for finding_id in bastion_ids:
        assert result["findings"][finding_id]["before"]["archived"] is True
    assert sorted(result["diff"]["after"]) == sorted(ids)

    mark = demo.mark()
    again = demo.run_module(MODULE, {"finding_ids": ids, "state": "archived", "feedback": "USEFUL"})
    assert again["changed"] is False and again["calls"] == []
    assert writes(demo, mark) == []

    result = demo.run_module(MODULE, {"finding_ids": web_ids, "state": "active"})
    assert result["changed"] is True
    assert states(demo, web_ids) == {i: (False, "USEFUL") for i in web_ids}


def test_check_mode_makes_no_write_call(demo):
    ids = ids_on(demo, demo.instance("app-1")["id"])
    before = states(demo, ids)
    mark = demo.mark()
    result = demo.run_module(MODULE, {"finding_ids": ids, "state": "archived", "feedback": "NOT_USEFUL"}, check=True)
    assert result["changed"] is True
    assert [c["action"] for c in result["calls"]] == ["ArchiveFindings", "UpdateFindingsFeedback"]
    assert writes(demo, mark) == [] and states(demo, ids) == before


def test_member_account_cannot_archive_and_is_told_why(demo):
    worker_ids = ids_on(demo, demo.instance("worker-1")["id"], account=MEMBER)
    before = states(demo, worker_ids, account=MEMBER)
    mark = demo.mark()
    result = demo.run_module(MODULE, {"finding_ids": worker_ids, "state": "archived", "feedback": "USEFUL"},
                             account=MEMBER, expect_rc=(2,))
    assert result["failed"] is True and result["changed"] is False
    assert result["error"]["code"] == "BadRequestException" and result["error"]["action"] == "ArchiveFindings"
    assert "only the GuardDuty administrator account can archive findings" in result["msg"]
    assert states(demo, worker_ids, account=MEMBER) == before  # nothing half-done: feedback was not sent either
    assert [e["outcome"] for e in writes(demo, mark)] == ["BadRequestException"]
    # the administrator archives the member's findings
    done = demo.run_module(MODULE, {"finding_ids": worker_ids, "state": "archived"})
    assert done["changed"] is True
    assert all(archived for archived, _ in states(demo, worker_ids, account=MEMBER).values())


def test_unknown_finding_fails_before_any_change(demo):
    ids = ids_on(demo, demo.instance("app-1")["id"])
    mark = demo.mark()
    result = demo.run_module(MODULE, {"finding_ids": ids + ["f" * 32], "state": "archived"}, expect_rc=(2,))
    assert result["missing_finding_ids"] == ["f" * 32]
    assert writes(demo, mark) == []
