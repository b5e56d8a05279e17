"""Containment never waits on evidence (playbooks/isolate.yml against the lab).

An evidence stage that AWS refuses (a snapshot quota, a denied console output, a refused termination
protection) must not leave the instance on its original groups: the network, the Elastic IPs, the
credentials and the detachment are done all the same, the failure is in the report, and the host fails at
the end, naming the evidence stage and AWS's error code. AWS state and the lab's journal are the evidence.
"""

import json

import pytest

from tests.integration_lab.playbook_results import task, writes
from tests.integration_lab.test_playbook_isolate import ADMIN, eni_groups, run_isolate, static_inventory

# (stage, forced error, AWS error code, the hosts it hits): the lab answers that one action with AWS's error.
CASES = {
    # EC2's snapshot quota: CreateSnapshots answers SnapshotLimitExceeded (EC2 API error codes).
    "snapshot-quota": ("snapshots", {"action": "CreateSnapshots", "resource": "web-1", "code": "SnapshotLimitExceeded",
                                     "message": "You have reached the maximum number of snapshots allowed."}, ("web-1",)),
    "console-output-denied": ("evidence", {"action": "GetConsoleOutput", "resource": "web-1", "code": "UnauthorizedOperation",
                                           "status": 403}, ("web-1",)),
    # Termination protection refused (what AWS answers for a Spot instance, UnsupportedOperation): every
    # DisableApiTermination call of the run, so both instances of the batch.
    "termination-protection-refused": ("protection", {"action": "ModifyInstanceAttribute", "resource": "DisableApiTermination",
                                                      "code": "UnsupportedOperation",
                                                      "message": "Modifying 'disableApiTermination' is not supported."},
                                       ("web-1", "app-1")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_evidence_failure_still_contains_the_instance_and_fails_its_host_by_name(lab, tmp_path, case):
    stage, forced, failing = CASES[case]
    lab.reset("demo")
    names = {"web-1": (ADMIN, "us-east-1", None), "app-1": (ADMIN, "us-east-1", None)}   # one batch
    inventory = static_inventory(lab, tmp_path, names)
    ids = {name: lab.instance(name)["id"] for name in names}
    if forced["resource"] in ids:
        forced = dict(forced, resource=ids[forced["resource"]])
    lab.faults({"forced": [forced]})
    mark = lab.mark()
    run = run_isolate(lab, {"incident_id": "INC-EVIDENCE", "isolate_scan": False, "isolate_triage": False,
                            "isolate_evidence_screenshot": False, "isolate_evidence_dir": str(tmp_path / "evidence"),
                            "isolate_report_dir": str(tmp_path / "reports")},
                      inventory=str(inventory), expect_rc=(2,))
    journal = lab.journal(mark)
    assert any(e["outcome"] == forced["code"] for e in journal), "the forced error was not answered"

    # Contained all the same: every ENI on the isolation group only (AWS state) ...
    for name in names:
        for eni_id, on in eni_groups(lab, name, ADMIN, "us-east-1").items():
            assert [g[1] for g in on] == ["guardduty-isolation"], (case, name, eni_id, on)
    # ... each moved by a successful call, after the refused evidence call; the Elastic IP and credentials cut.
    done = [e for e in writes(journal) if e["status"] < 400]
    refused = min(e["seq"] for e in journal if e["outcome"] == forced["code"])
    moved = {e["params"].get("NetworkInterfaceId") for e in done if e["action"] == "ModifyNetworkInterfaceAttribute"
             and e["seq"] > refused}
    assert set(lab.instance("web-1")["enis"]) <= moved, case
    assert any(e["action"] == "DisassociateAddress" for e in done), case
    address = lab.client("ec2").describe_addresses(AllocationIds=[lab.instance("web-1")["allocation_id"]])["Addresses"][0]
    assert not address.get("InstanceId"), address
    associations = lab.client("ec2").describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [ids["web-1"]]}])["IamInstanceProfileAssociations"]
    assert [a for a in associations if a["State"] in ("associated", "associating")] == [], associations
    web = lab.client("ec2").describe_instances(InstanceIds=[ids["web-1"]])["Reservations"][0]["Instances"][0]
    assert {t["Key"]: t["Value"] for t in web["Tags"]}["guardduty:isolation"] == "isolated"

    # The host fails at the end, by name, naming the evidence stage and AWS's error code; the others pass.
    failed = task(run, "Batches | fail the instances whose stage failed")
    for name in names:
        if name in failing:
            assert run["stats"][name]["failures"] == 1, run["stats"]
            message = failed[name]["msg"]
            assert message.startswith(f"{name} ({ids[name]}): {stage} failed:"), message
            assert forced["code"] in message, message
        else:
            assert run["stats"][name]["failures"] == 0, run["stats"]
    # The report has the failure, and the containment stages done for that instance.
    report = json.loads(sorted((tmp_path / "reports").rglob("runs/*/report.json"))[-1].read_text())
    rows = {row["host"]: row for row in report["instances"]}
    for name in failing:
        assert [e["stage"] for e in rows[name]["errors"]] == [stage], rows[name]["errors"]
        assert forced["code"] in json.dumps(rows[name]["errors"])
        assert rows[name]["stages"][stage]["status"] == "failed", rows[name]["stages"]
        for later in ("detach", "isolation", "public_ip", "credentials"):
            assert rows[name]["stages"][later]["status"] in ("changed", "ok"), (name, later, rows[name]["stages"][later])
