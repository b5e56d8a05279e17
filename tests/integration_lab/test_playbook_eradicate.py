"""playbooks/eradicate.yml end to end against the lab: the guards, check mode, --limit and the replacement.

AWS state (boto3 against the lab) and the lab's journal are the evidence. Four runs on one static inventory
serve every test (module-scoped fixture):
  refused  no valid confirmation on any host (each host carries a different wrong one): all fail, nothing written;
  check    confirmed, eradicate_snapshots off: web-1 (snapshotted beforehand) would go, app-1 and worker-1 are
           refused by name for lack of evidence; nothing written;
  check_snapshots  the same with eradicate_snapshots on: all three would go (app-1 and worker-1 once snapshotted);
           nothing written, not even a snapshot;
  real     confirmed by the run's instance ids (comma-separated, as on a command line), eradicate_snapshots on,
           --limit web-1,worker-1: both snapshotted then terminated (web-1 replaced by web-asg, worker-1 in the
           member account), app-1 untouched.
"""

import json
import pathlib
import time
import types

import pytest
import yaml

from tests.integration_lab.playbook_results import between, task, writes

REPO = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = str(REPO / "playbooks/eradicate.yml")
ADMIN, MEMBER = "123456789012", "111122223333"
MEMBER_ROLE = f"arn:aws:iam::{MEMBER}:role/GuardDutyResponder"
INCIDENT = "INC-ERADP"
HOSTS = {"web-1": (ADMIN, "us-east-1"), "app-1": (ADMIN, "us-east-1"), "worker-1": (MEMBER, "us-east-1")}
LIMIT = ["web-1", "worker-1"]
PREFLIGHT_TASK = "Preflight | refuse to terminate without confirmation (eradicate_confirm)"
ERADICATE_TASK = "Eradicate | terminate and replace the instances (ec2_eradicate)"
REPORT_TASK = "Report | write the incident report (incident_report)"
SNAPSHOT_TAGS = ("guardduty:incident", "guardduty:volume")


# -- helpers -----------------------------------------------------------------------------------
def describe(lab, name):
    account, region = HOSTS[name]
    ec2 = lab.client("ec2", account, region)
    return ec2.describe_instances(InstanceIds=[lab.instance(name)["id"]])["Reservations"][0]["Instances"][0]


def state(lab, name):
    return describe(lab, name)["State"]["Name"]


def incident_snapshots(lab, name):
    """{volume_id: state} of the snapshots tagged for the incident and one of the instance's volumes."""
    account, region = HOSTS[name]
    snapshots = lab.client("ec2", account, region).describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:guardduty:incident", "Values": [INCIDENT]},
        {"Name": "tag:guardduty:volume", "Values": lab.instance(name)["volumes"]}])["Snapshots"]
    return {s["VolumeId"]: s["State"] for s in snapshots}


def take_evidence(lab, name):
    """Snapshots as isolate's ec2_forensic_snapshot tags them, taken with boto3 (a playbook run costs more)."""
    account, region = HOSTS[name]
    ec2 = lab.client("ec2", account, region)
    for volume_id in lab.instance(name)["volumes"]:
        ec2.create_snapshot(VolumeId=volume_id, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
            {"Key": "guardduty:incident", "Value": INCIDENT}, {"Key": "guardduty:volume", "Value": volume_id}]}])
    deadline = time.monotonic() + 60
    while set(incident_snapshots(lab, name).values()) != {"completed"} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert set(incident_snapshots(lab, name).values()) == {"completed"}
    assert sorted(incident_snapshots(lab, name)) == sorted(lab.instance(name)["volumes"])


def asg_members(lab):
    group = lab.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]
    return group["DesiredCapacity"], {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def report_of(run):
    written = [r for r in task(run, REPORT_TASK).values() if not r.get("skipped")]
    assert len(written) == 1, written   # once for the play
    return json.loads(pathlib.Path(written[0]["files"]["json"]).read_text())


def module_results(run):
    """{instance_id: per-instance result} of every ec2_eradicate call of the run."""
    out = {}
    for host in task(run, ERADICATE_TASK).values():
        for item in host.get("results", []):
            if not item.get("skipped"):
                out.update(item.get("instances") or {})
    return out


@pytest.fixture(scope="module")
def eradication(lab, tmp_path_factory):
    lab.reset("demo")
    tmp = tmp_path_factory.mktemp("eradicate")
    ids = {name: lab.instance(name)["id"] for name in HOSTS}
    hosts = {}
    for name, (account, region) in HOSTS.items():
        hosts[name] = {"instance_id": ids[name], "region": region, "account_id": account}
        if account == MEMBER:
            hosts[name]["responder_role_arn"] = MEMBER_ROLE
    # Wrong confirmations, one per host (extra vars override them in the confirmed runs): none, another
    # incident's, and a list naming only part of the run's instances.
    hosts["app-1"]["eradicate_confirm"] = "terminate-INC-OTHER"
    hosts["worker-1"]["eradicate_confirm"] = [ids["worker-1"]]
    inventory = tmp / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": hosts}}}}))
    # One report directory per run: the runs share the incident, so each would overwrite the previous report.
    base = {"incident_id": INCIDENT}

    take_evidence(lab, "web-1")
    # Termination protection on, as the isolate role leaves it: the role's default turns it off, recorded.
    lab.client("ec2").modify_instance_attribute(InstanceId=ids["web-1"], DisableApiTermination={"Value": True})
    _unused, members_before = asg_members(lab)
    states_before = {name: state(lab, name) for name in HOSTS}

    marks = [lab.mark()]
    refused = lab.run_playbook(PLAYBOOK, extra_vars=dict(base, eradicate_report_dir=str(tmp / "refused")),
                               inventory=str(inventory), expect_rc=(2,))
    marks.append(lab.mark())
    states_after_refused = {name: state(lab, name) for name in HOSTS}
    check = lab.run_playbook(PLAYBOOK, extra_vars=dict(base, eradicate_confirm=f"terminate-{INCIDENT}",
                                                       eradicate_report_dir=str(tmp / "check")),
                             inventory=str(inventory), check=True, expect_rc=(2,))
    marks.append(lab.mark())
    check_snapshots = lab.run_playbook(PLAYBOOK, extra_vars=dict(base, eradicate_confirm=f"terminate-{INCIDENT}",
                                                                 eradicate_snapshots=True,
                                                                 eradicate_report_dir=str(tmp / "check_snapshots")),
                                       inventory=str(inventory), check=True)
    marks.append(lab.mark())
    states_after_check = {name: state(lab, name) for name in HOSTS}
    evidence_after_check = {name: incident_snapshots(lab, name) for name in HOSTS}
    real = lab.run_playbook(PLAYBOOK, extra_vars=dict(base, eradicate_confirm=",".join(ids[n] for n in reversed(LIMIT)),
                                                      eradicate_snapshots=True, eradicate_snapshots_wait_timeout=120,
                                                      eradicate_report_dir=str(tmp / "real")),
                            inventory=str(inventory), limit=",".join(LIMIT))
    marks.append(lab.mark())
    return types.SimpleNamespace(
        lab=lab, ids=ids, refused=refused, check=check, check_snapshots=check_snapshots, real=real,
        members_before=members_before, evidence_after_check=evidence_after_check,
        states_before=states_before, states_after_refused=states_after_refused, states_after_check=states_after_check,
        refused_journal=between(lab, marks[0], marks[1]), check_journal=between(lab, marks[1], marks[3]),
        real_journal=between(lab, marks[3], marks[4]))


# -- the confirmation guard --------------------------------------------------------------------
def test_without_the_confirmation_every_host_fails_before_any_change(eradication):
    run = eradication.refused
    assert sorted(run["stats"]) == sorted(HOSTS)
    assert all(s["failures"] == 1 and s["changed"] == 0 for s in run["stats"].values()), run["stats"]
    refusals = task(run, PREFLIGHT_TASK)
    for name in HOSTS:
        message = refusals[name]["msg"]
        assert refusals[name]["failed"] and eradication.ids[name] in message and name in message, message
        assert "eradicate refused" in message and f"terminate-{INCIDENT}" in message and "nothing was changed" in message
    assert writes(eradication.refused_journal) == []
    # The module never ran: the preflight stopped every host.
    ran = [h for key, hosts in run["tasks"].items() if key.endswith(ERADICATE_TASK) for h in hosts.values() if h.get("results")]
    assert ran == []
    assert eradication.states_after_refused == eradication.states_before
    # The refused hosts are reported too, with the cause.
    rows = {row["host"]: row for row in report_of(run)["instances"]}
    assert sorted(rows) == sorted(HOSTS)
    for name, row in rows.items():
        assert row["stages"]["confirmation"]["status"] == "failed" and "eradicate" not in row["stages"], row["stages"]
        assert any("eradicate refused" in e["message"] for e in row["errors"]), row["errors"]


# -- check mode and the evidence guard --------------------------------------------------------
def test_check_mode_refuses_instances_without_evidence_by_name_and_changes_nothing(eradication):
    lab, run = eradication.lab, eradication.check
    assert writes(eradication.check_journal) == []
    assert eradication.states_after_check == eradication.states_before == {name: "running" for name in HOSTS}
    results = module_results(run)
    # web-1 has its evidence: check mode shows the protection turned off, then the Auto Scaling termination.
    web = results[eradication.ids["web-1"]]
    assert web["changed"] is True and "error" not in web
    assert [c.split(" ")[0] for c in web["calls"]] == ["CreateTags", "ModifyInstanceAttribute",
                                                       "TerminateInstanceInAutoScalingGroup"]
    assert run["stats"]["web-1"]["failures"] == 0
    # app-1 and worker-1 have none: refused, each naming its instance and its volumes.
    for name in ("app-1", "worker-1"):
        error = results[eradication.ids[name]]["error"]
        assert error["code"] == "Refused" and all(v in error["message"] for v in lab.instance(name)["volumes"]), error
        assert run["stats"][name]["failures"] == 1
    report = report_of(run)
    assert report["check_mode"] is True
    rows = {row["host"]: row for row in report["instances"]}
    assert rows["web-1"]["stages"]["eradicate"]["status"] == "changed"
    for name in ("app-1", "worker-1"):
        assert rows[name]["stages"]["eradicate"]["status"] == "failed" and rows[name]["errors"], rows[name]


def test_check_mode_with_eradicate_snapshots_counts_the_snapshots_it_would_take(eradication):
    lab, run = eradication.lab, eradication.check_snapshots
    # (The recap counts a batch's change on its first host only: the per-instance truth is in the report.)
    assert run["rc"] == 0 and all(s["failures"] == 0 for s in run["stats"].values()), run["stats"]
    # Nothing written (the journal covers both check runs): no snapshot, no termination.
    assert writes(eradication.check_journal) == []
    assert eradication.evidence_after_check == {"web-1": {v: "completed" for v in lab.instance("web-1")["volumes"]},
                                                "app-1": {}, "worker-1": {}}
    rows = {row["host"]: row for row in report_of(run)["instances"]}
    assert sorted(rows) == sorted(HOSTS)
    for name in HOSTS:
        assert rows[name]["errors"] == [] and rows[name]["stages"]["eradicate"]["status"] == "changed", rows[name]
        assert rows[name]["stages"]["snapshots"]["status"] in ("changed", "ok"), rows[name]["stages"]
    # web-1 has its evidence: the module's own plan; the others: what the real run does first.
    web = rows["web-1"]["stages"]["eradicate"]["result"]
    assert [c.split(" ")[0] for c in web["calls"]][-1] == "TerminateInstanceInAutoScalingGroup", web
    for name in ("app-1", "worker-1"):
        assert "snapshots" in rows[name]["stages"]["eradicate"]["result"]["note"], rows[name]


# -- the real run ------------------------------------------------------------------------------
def test_limited_run_snapshots_then_terminates_and_replaces(eradication):
    lab, run, ids = eradication.lab, eradication.real, eradication.ids
    assert run["rc"] == 0 and sorted(run["stats"]) == sorted(LIMIT)
    assert all(s["failures"] == 0 for s in run["stats"].values()), run["stats"]
    journal = eradication.real_journal
    for name in LIMIT:
        assert state(lab, name) in ("shutting-down", "terminated"), name
        # eradicate_snapshots: every volume has a completed snapshot of the incident, taken before the termination.
        assert incident_snapshots(lab, name) == {v: "completed" for v in lab.instance(name)["volumes"]}, name
    # worker-1: snapshotted and terminated in the member account, through its responder role.
    member = [e for e in journal if e["account"] == MEMBER]
    snapshot_seqs = [e["seq"] for e in member if e["action"] in ("CreateSnapshot", "CreateSnapshots")]
    terminations = [e for e in member if e["action"] == "TerminateInstances"]
    assert snapshot_seqs and len(terminations) == 1 and max(snapshot_seqs) < terminations[0]["seq"]
    assert ids["worker-1"] in json.dumps(terminations[0]["params"])
    assert [e["params"].get("RoleArn") for e in journal if e["action"] == "AssumeRole"] == [MEMBER_ROLE]
    # web-1: protection recorded then turned off, terminated in web-asg without decrementing: the group replaces it.
    tags = {t["Key"]: t["Value"] for t in describe(lab, "web-1").get("Tags", [])}
    assert tags.get("guardduty:termination-protection-was") == "true"
    in_asg = [e for e in journal if e["action"] == "TerminateInstanceInAutoScalingGroup"]
    assert len(in_asg) == 1 and ids["web-1"] in json.dumps(in_asg[0]["params"])
    assert "false" in json.dumps(in_asg[0]["params"]).lower()
    desired, members = asg_members(lab)
    assert desired == 1
    live = [i for i, s in members.items() if s in ("Pending", "InService")]
    assert live and ids["web-1"] not in live and ids["web-1"] in eradication.members_before
    assert module_results(run)[ids["web-1"]]["replacement"]["source"] == {"kind": "autoscaling", "group": "web-asg"}


def test_limit_is_respected(eradication):
    lab, ids = eradication.lab, eradication.ids
    assert state(lab, "app-1") == "running"
    assert ids["app-1"] not in json.dumps([e["params"] for e in writes(eradication.real_journal)])
    assert incident_snapshots(lab, "app-1") == {}
    # Only the limited instances were terminated, in one call each (one batch per account).
    terminated = [e for e in eradication.real_journal
                  if e["action"] in ("TerminateInstances", "TerminateInstanceInAutoScalingGroup")]
    assert sorted(e["account"] for e in terminated) == sorted([ADMIN, MEMBER])


def test_report_lists_the_limited_instances_with_their_stages(eradication):
    report = report_of(eradication.real)
    assert report["incident_id"] == INCIDENT and report["check_mode"] is False
    rows = {row["host"]: row for row in report["instances"]}
    assert sorted(rows) == sorted(LIMIT)
    for name in LIMIT:
        row = rows[name]
        assert (row["instance_id"], row["account_id"], row["region"]) == (eradication.ids[name], *HOSTS[name])
        assert row["errors"] == [] and row["stages"]["eradicate"]["status"] == "changed", row["stages"]
        assert {"preflight", "confirmation", "snapshots", "eradicate"} <= set(row["stages"]), row["stages"]
