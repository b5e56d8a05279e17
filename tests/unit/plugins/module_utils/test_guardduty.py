from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty as gd


def state(archived=False, feedback=None):
    return {"archived": archived, "feedback": feedback}


def test_finding_state_reads_service():
    assert gd.finding_state({"Service": {"Archived": True, "UserFeedback": "USEFUL"}}) == state(True, "USEFUL")
    assert gd.finding_state({"Service": {}}) == state()


def test_only_what_differs_is_changed():
    current = {"a": state(), "b": state(True, "USEFUL"), "c": state(False, "NOT_USEFUL")}
    calls, after = gd.plan_finding_updates(["a", "b", "c"], current, archived=True, feedback="USEFUL", comment="done")
    assert calls == [("ArchiveFindings", {"FindingIds": ["a", "c"]}),
                     ("UpdateFindingsFeedback", {"FindingIds": ["a", "c"], "Feedback": "USEFUL", "Comments": "done"})]
    assert after == {i: state(True, "USEFUL") for i in "abc"}
    assert gd.plan_finding_updates(["b"], current, archived=True, feedback="USEFUL", comment="other") == \
        ([], {"b": state(True, "USEFUL")})


def test_unarchive_and_batches_of_fifty():
    ids = [f"f{n}" for n in range(120)]
    current = {i: state(True) for i in ids}
    calls, after = gd.plan_finding_updates(ids, current, archived=False)
    assert [(a, len(p["FindingIds"])) for a, p in calls] == [("UnarchiveFindings", 50)] * 2 + [("UnarchiveFindings", 20)]
    assert all(not s["archived"] for s in after.values())


def test_state_after_a_partial_run():
    current = {"a": state(), "b": state()}
    done = [("ArchiveFindings", {"FindingIds": ["a", "b"]})]
    assert gd.state_after_calls(current, done) == {"a": state(True), "b": state(True)}


class Refusal(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.response = {"Error": {"Code": code, "Message": message}}


def test_member_archive_refusal_is_explained():
    problem = gd.explain_update_error("ArchiveFindings", Refusal("BadRequestException", "member accounts cannot archive"))
    assert problem.code == "BadRequestException" and problem.action == "ArchiveFindings"
    assert "only the GuardDuty administrator account can archive findings" in str(problem)
    assert "member accounts cannot archive" in str(problem)
    other = gd.explain_update_error("UpdateFindingsFeedback", Refusal("BadRequestException", "bad feedback"))
    assert "administrator" not in str(other) and other.code == "BadRequestException"
