"""playbooks/release.yml against the lab: after playbooks/isolate.yml, release restores exactly what AWS
showed before the isolation, a second release changes nothing, check mode changes nothing, and an instance
never isolated is left alone with a note."""

import json
import pathlib

from tests.integration_lab.playbook_results import task

REPO = pathlib.Path(__file__).resolve().parents[2]
INCIDENT = "INC-REL"
WRITES = ("ModifyNetworkInterfaceAttribute", "AssociateAddress", "DisassociateAddress", "AssociateIamInstanceProfile",
          "ReplaceIamInstanceProfileAssociation", "RegisterTargets", "DeregisterTargets", "AttachInstances", "DetachInstances",
          "ExitStandby", "ModifyInstanceAttribute", "CreateTags", "DeleteTags", "PutRolePolicy", "DeleteRolePolicy",
          "ReplaceNetworkAclAssociation", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress")
# Containment only, so the test stays short: evidence, scan and triage have their own tests.
ISOLATE_VARS = {"incident_id": INCIDENT, "isolate_snapshots": False, "isolate_evidence": False, "isolate_scan": False,
                "isolate_triage": False, "isolate_report": False, "isolate_protection": True}
RELEASE_VARS = {"incident_id": INCIDENT, "release_confirm": INCIDENT, "release_report": False}


def inventory(lab, tmp_path, names):
    hosts = {}
    for name in names:
        inst = lab.instance(name)
        hosts[name] = {"instance_id": inst["id"], "region": inst["region"], "account_id": inst["account"]}
        if inst["account"] != lab.resources["administrator"]:
            hosts[name]["responder_role_arn"] = f"arn:aws:iam::{inst['account']}:role/{lab.resources['responder_role']}"
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"vars": {"ansible_connection": "local",
                                                 "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                                        "children": {"compromised": {"hosts": hosts}}}}))
    return path


def snapshot_of(lab, name):
    """What release must give back: ENI groups per ENI, Elastic IP, profile, ASG/TG membership, protection, tags."""
    inst = lab.instance(name)
    ec2 = lab.client("ec2", account=inst["account"], region=inst["region"])
    described = ec2.describe_instances(InstanceIds=[inst["id"]])["Reservations"][0]["Instances"][0]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=inst["enis"])["NetworkInterfaces"]
    addresses = [a for a in ec2.describe_addresses()["Addresses"] if a.get("NetworkInterfaceId") in inst["enis"]]
    state = {
        "groups": {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis},
        "eni_tags": {e["NetworkInterfaceId"]: sorted(t["Key"] for t in e.get("TagSet") or [] if t["Key"].startswith("guardduty:"))
                     for e in enis},
        "eips": sorted((a["AllocationId"], a["NetworkInterfaceId"], a["PrivateIpAddress"]) for a in addresses),
        "profile": (described.get("IamInstanceProfile") or {}).get("Arn"),
        "termination_protection": ec2.describe_instance_attribute(
            InstanceId=inst["id"], Attribute="disableApiTermination")["DisableApiTermination"]["Value"],
        "record_tags": sorted(t["Key"] for t in described.get("Tags") or [] if t["Key"].startswith("guardduty:")
                              and t["Key"] != "guardduty:isolation"),
    }
    if inst["region"] == "us-east-1" and inst["account"] == lab.resources["administrator"]:
        asg = lab.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[inst["id"]])["AutoScalingInstances"]
        state["asg"] = sorted((a["AutoScalingGroupName"], a["LifecycleState"]) for a in asg)
        elbv2 = lab.client("elbv2")
        targets = []
        for group in elbv2.describe_target_groups()["TargetGroups"]:
            health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
            targets += [(group["TargetGroupName"], t["Target"].get("Port")) for t in health
                        if t["Target"]["Id"] == inst["id"] and t["TargetHealth"]["State"] not in ("draining", "unused")]
        state["targets"] = sorted(targets)
    return state


def writes(lab, since):
    return [e for e in lab.journal(since=since) if e["action"] in WRITES]


def recap(result, host):
    return result["stats"][host]


def test_release_restores_exactly_then_is_idempotent(demo, tmp_path):
    names = ["web-1", "app-1", "worker-1"]
    hosts = inventory(demo, tmp_path, names)
    before = {n: snapshot_of(demo, n) for n in names}
    assert before["web-1"]["eips"] and before["web-1"]["profile"] and before["web-1"]["asg"] and before["web-1"]["targets"]

    demo.run_playbook(REPO / "playbooks/isolate.yml", ISOLATE_VARS, inventory=hosts)
    isolated = {n: snapshot_of(demo, n) for n in names}
    for name in names:
        assert isolated[name]["groups"] != before[name]["groups"], name
        assert isolated[name]["record_tags"], name
    assert isolated["web-1"]["eips"] == [] and isolated["web-1"]["profile"] is None and isolated["web-1"]["targets"] == []

    # Without confirmation: every host refused, nothing written.
    mark = demo.mark()
    refused = demo.run_playbook(REPO / "playbooks/release.yml", dict(RELEASE_VARS, release_confirm=None), inventory=hosts,
                                expect_rc=(2,))
    assert all(recap(refused, n)["failures"] == 1 for n in names)
    messages = [r["msg"] for r in task(refused, "Preflight | refuse to release without confirmation (release_confirm)").values()]
    assert all("release refused" in m and INCIDENT in m for m in messages)
    assert writes(demo, mark) == []

    # Check mode runs the whole chain, reports changes, and writes nothing.
    mark = demo.mark()
    checked = demo.run_playbook(REPO / "playbooks/release.yml", RELEASE_VARS, inventory=hosts, check=True)
    assert all(recap(checked, n)["changed"] > 0 for n in ["web-1", "worker-1"])
    assert writes(demo, mark) == []
    assert {n: snapshot_of(demo, n) for n in names} == isolated

    demo.run_playbook(REPO / "playbooks/release.yml", RELEASE_VARS, inventory=hosts)
    after = {n: snapshot_of(demo, n) for n in names}
    for name in names:
        assert after[name] == before[name], name
    tags = demo.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [demo.instance("web-1")["id"]]},
                                                     {"Name": "key", "Values": ["guardduty:isolation"]}])["Tags"]
    assert [t["Value"] for t in tags] == ["released"]

    # A second release finds nothing left to do.
    mark = demo.mark()
    again = demo.run_playbook(REPO / "playbooks/release.yml", RELEASE_VARS, inventory=hosts)
    assert all(recap(again, n)["changed"] == 0 and recap(again, n)["failures"] == 0 for n in names)
    assert writes(demo, mark) == []


def test_release_of_an_instance_never_isolated_is_a_noop_with_a_note(demo, tmp_path):
    hosts = inventory(demo, tmp_path, ["healthy-1"])
    mark = demo.mark()
    result = demo.run_playbook(REPO / "playbooks/release.yml", dict(RELEASE_VARS, release_confirm=None), inventory=hosts)
    assert recap(result, "healthy-1")["changed"] == 0 and recap(result, "healthy-1")["failures"] == 0
    note = task(result, "Preflight | show the instances with nothing to release")["healthy-1"]["msg"]
    assert "nothing to release" in note and demo.instance("healthy-1")["id"] in note
    assert writes(demo, mark) == []
    # no module of the chain ran for it
    assert "Release | put every network interface back on its recorded groups (ec2_isolation)" not in result["tasks"] or \
        all(r.get("skipped") or not r.get("results") for r in
            task(result, "Release | put every network interface back on its recorded groups (ec2_isolation)").values())


def test_subnet_containment_is_recorded_in_the_role_s_incident_store_and_released_from_it(demo, tmp_path):
    """The isolate and release roles hand their incident store to ec2_subnet_containment: the subnet's original
    network ACL is recorded there (not only in the tag the member account can rewrite) and given back from it."""
    store = tmp_path / "store"
    hosts = inventory(demo, tmp_path, ["web-1"])
    subnet_id = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]["app-a"]
    ec2 = demo.client("ec2")

    def acl_id():
        acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
        return acls[0]["NetworkAclId"]

    original = acl_id()
    record = store / "records" / "123456789012" / "us-east-1" / f"{subnet_id}.json"
    demo.run_playbook(REPO / "playbooks/isolate.yml", dict(ISOLATE_VARS, isolate_subnet_containment=True,
                                                             isolate_incident_store=str(store)), inventory=hosts)
    assert acl_id() != original
    assert json.loads(record.read_text())["records"] == {"nacl": original}
    demo.run_playbook(REPO / "playbooks/release.yml", dict(RELEASE_VARS, release_subnet_containment=True,
                                                             release_incident_store=str(store)), inventory=hosts)
    assert acl_id() == original and not record.exists()
