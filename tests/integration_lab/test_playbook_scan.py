"""playbooks/scan.yml end to end against the lab: malware scans only, once per account and region batch."""

import json
import pathlib

from tests.integration_lab.playbook_results import responder_sessions, task, writes

REPO = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = str(REPO / "playbooks/scan.yml")
INVENTORY = str(REPO / "docs/examples/lab.guardduty.yml")
ADMIN, MEMBER = "123456789012", "111122223333"
COMPROMISED = {"web-1": (ADMIN, "us-east-1"), "app-1": (ADMIN, "us-east-1"), "api-1": (ADMIN, "eu-west-1"),
               "worker-1": (MEMBER, "us-east-1")}
SCAN_TASK = "Scan | scan each instance with GuardDuty Malware Protection (guardduty_malware_scan)"


def scanned(entries):
    """{(account, region, instance_id)} of the StartMalwareScan requests that succeeded."""
    return {(e["account"], e["region"], str(e["params"].get("resourceArn") or e["params"].get("ResourceArn")).rsplit("/", 1)[-1])
            for e in entries if e["action"] == "StartMalwareScan" and e["outcome"] == "ok"}


def test_scan_playbook_scans_each_instance_in_its_account_and_changes_nothing_else(lab, tmp_path):
    lab.reset("demo")
    mark = lab.mark()
    check = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="compromised", check=True,
                             extra_vars={"incident_id": "INC-SCAN", "scan_report_dir": str(tmp_path)})
    assert check["rc"] == 0 and writes(lab.journal(mark)) == []

    mark = lab.mark()
    run = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="compromised",
                           extra_vars={"incident_id": "INC-SCAN", "scan_report_dir": str(tmp_path)})
    journal = lab.journal(mark)
    assert run["rc"] == 0 and sorted(run["stats"]) == sorted(COMPROMISED)
    expected = {(account, region, lab.instance(name)["id"]) for name, (account, region) in COMPROMISED.items()}
    assert scanned(journal) == expected
    # Scans only: no other write, and the scans of the member account ran with its role's credentials.
    assert {e["action"] for e in writes(journal)} == {"StartMalwareScan"}
    # (The inventory plugin assumes the member's role too, under its own session name: not the role's doing.)
    sessions = [e["params"] for e in responder_sessions(journal)]
    assert sorted(s.get("RoleArn") for s in sessions) == sorted(f"arn:aws:iam::{a}:role/GuardDutyResponder" for a in (ADMIN, MEMBER))
    assert {s.get("RoleSessionName") for s in sessions} == {"cloudsec-guardduty-INC-SCAN"}
    # One module call per account/region batch, and every host shows its own scan.
    items = [i for h in task(run, SCAN_TASK).values() for i in h.get("results", []) if not i.get("skipped")]
    assert sorted(len(i["item"]["instance_ids"]) for i in items) == [1, 1, 2]
    shown = task(run, "Scan | each instance's scan")
    for name in COMPROMISED:
        assert lab.instance(name)["id"] in shown[name]["msg"] and "scan " in shown[name]["msg"], shown[name]
        assert "scan - " not in shown[name]["msg"], shown[name]   # a scan id, not the placeholder


def test_scan_playbook_waits_and_fails_the_infected_instance_by_name(lab, tmp_path):
    """scan_wait and scan_fail_on_threats, under --limit: web-1 is infected in the demo (EICAR), app-1 is clean."""
    lab.reset("demo")
    mark = lab.mark()
    run = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="web-1,app-1", expect_rc=(2,),
                           extra_vars={"incident_id": "INC-SCANW", "scan_wait": True, "scan_wait_timeout": 120,
                                       "scan_fail_on_threats": True, "scan_report_dir": str(tmp_path)})
    journal = lab.journal(mark)
    web, app = lab.instance("web-1")["id"], lab.instance("app-1")["id"]
    assert sorted(run["stats"]) == ["app-1", "web-1"]
    assert run["stats"]["web-1"]["failures"] == 1 and run["stats"]["app-1"]["failures"] == 0
    # Both in one module call (one account/region batch), and nothing else scanned or written.
    assert scanned(journal) == {(ADMIN, "us-east-1", web), (ADMIN, "us-east-1", app)}
    assert {e["action"] for e in writes(journal)} == {"StartMalwareScan"}
    items = [i for h in task(run, SCAN_TASK).values() for i in h.get("results", []) if not i.get("skipped")]
    assert [sorted(i["item"]["instance_ids"]) for i in items] == [sorted([web, app])]
    shown = task(run, "Scan | each instance's scan")
    assert app in shown["app-1"]["msg"] and "COMPLETED" in shown["app-1"]["msg"] and "CLEAN" in shown["app-1"]["msg"]
    assert "INFECTED" in shown["web-1"]["msg"] and "1 threat(s)" in shown["web-1"]["msg"], shown["web-1"]
    failed = task(run, "Scan | fail the instances where malware was found")
    assert failed["web-1"]["failed"] and web in failed["web-1"]["msg"] and "EICAR-Test-File" in failed["web-1"]["msg"]
    assert failed["app-1"].get("skipped"), failed["app-1"]

    # The verdicts reach the incident's report: the scan run's own, and the incident's index (each instance's
    # newest verdict), not only the console.
    (run_report,) = (tmp_path / "INC-SCANW" / "runs").glob("*-scan/report.json")
    saved = json.loads(run_report.read_text())
    verdicts = {i["instance_id"]: i["scan"] for i in saved["instances"]}
    assert verdicts[web]["verdict"] == "INFECTED" and verdicts[web]["threats"] == ["EICAR-Test-File (not a virus)"]
    assert verdicts[app]["verdict"] == "CLEAN"
    index = json.loads((tmp_path / "INC-SCANW" / "report.json").read_text())
    assert {i["instance_id"]: i["scan"]["verdict"] for i in index["instances"]} == {web: "INFECTED", app: "CLEAN"}
    assert "INFECTED: EICAR-Test-File (not a virus)" in (tmp_path / "INC-SCANW" / "report.html").read_text()
