"""The isolate, release and eradicate playbooks with their Security Hub option on, against the lab, through the
GuardDuty inventory plugin: the findings' workflow status and note as Security Hub reports them, and the calls
in the journal (one BatchUpdateFindings per account/region batch, after containment)."""

import json
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
INVENTORY = str(REPO / "docs/examples/lab.guardduty.yml")
ADMIN, MEMBER = "123456789012", "111122223333"
INCIDENT = "INC-SH"
COMPROMISED = {"web-1": (ADMIN, "us-east-1"), "app-1": (ADMIN, "us-east-1"), "api-1": (ADMIN, "eu-west-1"),
               "worker-1": (MEMBER, "us-east-1")}
ONLY_NETWORK = {"isolate_protection": False, "isolate_snapshots": False, "isolate_evidence": False, "isolate_detach": False,
                "isolate_public_ip": False, "isolate_credentials": False, "isolate_scan": False, "isolate_triage": False}


def hub_findings(lab, name):
    """{finding id: (workflow status, note text)} of the instance's GuardDuty findings, as Security Hub reports them."""
    inst = lab.instance(name)
    account, region = inst["account"], inst["region"]
    client = lab.client("securityhub", account, region)
    resource = f"arn:aws:ec2:{region}:{account}:instance/{inst['id']}"
    found = client.get_findings(Filters={
        "ProductArn": [{"Value": f"arn:aws:securityhub:{region}::product/aws/guardduty", "Comparison": "EQUALS"}],
        "ResourceId": [{"Value": resource, "Comparison": "EQUALS"}]})["Findings"]
    return {f["Id"].rsplit("/", 1)[1]: (f["Workflow"]["Status"], (f.get("Note") or {}).get("Text")) for f in found}


@pytest.fixture(scope="module")
def isolated(lab, tmp_path_factory):
    lab.reset("demo")
    tmp = tmp_path_factory.mktemp("securityhub")
    mark = lab.mark()
    run = lab.run_playbook(str(REPO / "playbooks/isolate.yml"), inventory=INVENTORY, limit="compromised",
                           extra_vars=dict(ONLY_NETWORK, incident_id=INCIDENT, isolate_securityhub_update=True,
                                           isolate_report_dir=str(tmp / "reports")))
    return lab, tmp, run, lab.journal(since=mark)


def test_isolate_marks_the_findings_notified_with_the_incident_the_stages_and_the_report(isolated):
    lab, tmp, unused_run, journal = isolated
    for name in COMPROMISED:
        found = hub_findings(lab, name)
        active = {i: s for i, s in found.items() if s[0] != "NEW"}
        assert active, name
        for status, note in active.values():
            assert status == "NOTIFIED"
            assert note == (f"Incident {INCIDENT}: contained by cloudsec.guardduty.isolate (contain_network). "
                            f"Report: {tmp / 'reports'}/{INCIDENT}/")
    # bastion-1's only finding is archived, so the inventory leaves it out: its finding stays NEW
    assert {s for s, unused_note in hub_findings(lab, "bastion-1").values()} == {"NEW"}
    updates = [e for e in journal if e["action"] == "BatchUpdateFindings"]
    assert sorted((e["account"], e["region"]) for e in updates) == sorted(
        [(ADMIN, "us-east-1"), (ADMIN, "eu-west-1"), (MEMBER, "us-east-1")])  # one call per batch
    # after containment, never before
    last_isolation = max(e["seq"] for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute")
    assert min(e["seq"] for e in updates) > last_isolation


def test_release_resolves_the_released_instances_findings(isolated):
    lab, tmp, unused_run, unused_journal = isolated
    lab.run_playbook(str(REPO / "playbooks/release.yml"), inventory=INVENTORY, limit="web-1",
                     extra_vars={"incident_id": INCIDENT, "release_confirm": INCIDENT, "release_securityhub_update": True,
                                 "release_report_dir": str(tmp / "release")})
    released = hub_findings(lab, "web-1")
    assert {s for s, unused_note in released.values()} == {"RESOLVED"}
    assert all(note == f"Incident {INCIDENT}: released as a false positive by cloudsec.guardduty.release. "
                       f"Report: {tmp / 'release'}/{INCIDENT}/" for unused_status, note in released.values())
    assert {s for s, unused_note in hub_findings(lab, "app-1").values() if s != "NEW"} == {"NOTIFIED"}


def test_eradicate_resolves_the_terminated_instances_findings(isolated):
    lab, tmp, unused_run, unused_journal = isolated
    instance_id = lab.instance("app-1")["id"]
    lab.run_playbook(str(REPO / "playbooks/eradicate.yml"), inventory=INVENTORY, limit="app-1",
                     extra_vars={"incident_id": INCIDENT, "eradicate_confirm": instance_id, "eradicate_snapshots": True,
                                 "eradicate_snapshots_wait_timeout": 120, "eradicate_securityhub_update": True,
                                 "eradicate_report_dir": str(tmp / "eradicate")})
    state = lab.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] in ("shutting-down", "terminated")
    resolved = hub_findings(lab, "app-1")
    assert resolved and {s for s, unused_note in resolved.values()} == {"RESOLVED"}
    assert all("eradicated (terminated" in note and "cloudsec.guardduty.eradicate" in note
               for unused_status, note in resolved.values())


def test_the_isolate_report_links_each_finding_to_the_consoles(isolated):
    lab, tmp, unused_run, unused_journal = isolated
    report = json.loads(sorted((tmp / "reports" / INCIDENT / "runs").glob("*-isolate/report.json"))[-1].read_text())
    web = next(i for i in report["instances"] if i["instance_id"] == lab.instance("web-1")["id"])
    links = {link["finding_id"]: link for link in web["finding_links"]}
    assert set(links) == {i for i, (status, unused_note) in hub_findings(lab, "web-1").items() if status != "NEW"}
    for finding_id, link in links.items():
        assert link["guardduty"].endswith(f"#/findings?macros=current&fId={finding_id}")
        assert link["detective"].endswith(f"#findings/GuardDuty/{finding_id}")
        assert finding_id in link["securityhub"] and "securityhub/home?region=us-east-1" in link["securityhub"]
