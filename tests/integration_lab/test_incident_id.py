"""The incident a run belongs to is said at its start; a run given no incident_id never plans a second set of
evidence for instances already contained under another incident."""

import pathlib

from tests.integration_lab.playbook_results import task, writes

REPO = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = str(REPO / "playbooks/isolate.yml")
INVENTORY = str(REPO / "docs/examples/lab.guardduty.yml")
SAID = "Batches | the incident of this run"
PLACE = "Batches | place every host in an account, region and role batch"


def said(run, host="web-1"):
    """The incident lines the run printed: said after the hosts are placed, or in the place task's failure when it
    stopped the run."""
    for play in run["plays"]:
        for entry in play["tasks"]:
            result = entry["hosts"].get(host) or {}
            if entry["task"]["name"].endswith(SAID) and "msg" in result:
                return result["msg"]
            if entry["task"]["name"].endswith(PLACE) and result.get("failed") and "incident_lines" in result:
                return result["incident_lines"]
    raise AssertionError("the run did not say its incident")


def test_run_without_incident_id_stops_over_an_instance_contained_under_another(lab, tmp_path):
    lab.reset("demo")
    first = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="web-1",
                             extra_vars={"incident_id": "INC-41", "isolate_report_dir": str(tmp_path)})
    assert first["rc"] == 0
    assert said(first) == ["incident: INC-41 (given)"]

    for check in (True, False):
        mark = lab.mark()
        again = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="web-1", check=check, expect_rc=(2,),
                                 extra_vars={"isolate_report_dir": str(tmp_path)})
        lines = said(again)
        assert lines[0].startswith("incident: gd-") and "already under incident 'INC-41'" in lines[1], lines
        stopped = task(again, PLACE)
        assert "give -e incident_id=<that incident>" in stopped["web-1"]["msg"]
        assert writes(lab.journal(mark)) == [], "nothing planned, nothing changed"

    # Given, it goes on, and says which instances another incident contained.
    other = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="web-1", check=True,
                             extra_vars={"incident_id": "INC-42", "isolate_report_dir": str(tmp_path)})
    assert other["rc"] == 0
    assert "already under incident 'INC-41'" in said(other)[1]
