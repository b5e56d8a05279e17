"""A released false positive stays released: release archives its findings (with the GuardDuty administrator's
credentials, the only account AWS lets archive), the inventory then skips it unless asked, and the next
`-l compromised` run does not contain it again."""

import json
import pathlib
import subprocess
import sys

from tests.integration_lab.playbook_results import writes

REPO = pathlib.Path(__file__).resolve().parents[2]
INVENTORY = REPO / "docs/examples/lab.guardduty.yml"
INCIDENT = "INC-FP"
ISOLATE_VARS = {"incident_id": INCIDENT, "isolate_snapshots": False, "isolate_evidence": False, "isolate_scan": False,
                "isolate_triage": False, "isolate_protection": False}


def inventory_hosts(lab, path):
    env = lab.env()
    proc = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-inventory"), "-i", str(path), "--list"],
                          cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300, check=True)
    data = json.loads(proc.stdout)
    return set((data.get("compromised") or {}).get("hosts") or [])


def archived(lab, name):
    """The Archived flag of the instance's findings, as the GuardDuty administrator sees them."""
    inst = lab.instance(name)
    guardduty = lab.client("guardduty", region=inst["region"])
    detector = guardduty.list_detectors()["DetectorIds"][0]
    ids = guardduty.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {
        "resource.instanceDetails.instanceId": {"Equals": [inst["id"]]}}})["FindingIds"]
    assert ids, name
    return {f["Service"]["Archived"] for f in guardduty.get_findings(DetectorId=detector, FindingIds=ids)["Findings"]}


def test_released_false_positive_is_not_contained_again(demo, tmp_path):
    reports = {"isolate_report_dir": str(tmp_path), "release_report_dir": str(tmp_path)}
    names = "web-1,worker-1"  # the administrator's own instance and a member's
    demo.run_playbook(REPO / "playbooks/isolate.yml", dict(ISOLATE_VARS, **reports), inventory=str(INVENTORY), limit=names)
    assert {"web-1", "worker-1"} <= inventory_hosts(demo, INVENTORY)

    released = demo.run_playbook(REPO / "playbooks/release.yml", dict(incident_id=INCIDENT, release_confirm=INCIDENT, **reports),
                                 inventory=str(INVENTORY), limit=names)
    assert all(s["failures"] == 0 for s in released["stats"].values()), released["stats"]
    assert archived(demo, "web-1") == {True} and archived(demo, "worker-1") == {True}

    # The next run over the inventory's compromised group leaves them alone; asked (archived: include), it sees them.
    hosts = inventory_hosts(demo, INVENTORY)
    assert not {"web-1", "worker-1"} & hosts and {"app-1", "api-1"} <= hosts
    mark = demo.mark()
    again = demo.run_playbook(REPO / "playbooks/isolate.yml", dict(ISOLATE_VARS, **reports), inventory=str(INVENTORY),
                              limit="compromised")
    assert not {"web-1", "worker-1"} & set(again["stats"])
    released_enis = set(demo.instance("web-1")["enis"]) | set(demo.instance("worker-1")["enis"])
    assert not [e for e in writes(demo.journal(mark)) if e["params"].get("NetworkInterfaceId") in released_enis]
    asked = tmp_path / "asked.guardduty.yml"
    asked.write_text(INVENTORY.read_text() + "\narchived: include\n")
    assert {"web-1", "worker-1"} <= inventory_hosts(demo, asked)
