"""playbooks/isolate.yml end to end against the lab, through the GuardDuty inventory plugin.

AWS state (boto3 against the lab) and the lab's journal are the evidence. One module-scoped run sequence
(check mode, real run, second run) on the demo incident serves most assertions, to keep this file short.
"""

import json
import pathlib
import types

import pytest
import yaml

from tests.integration_lab.playbook_results import between, responder_sessions, task, writes
from tests.integration_lab.reliability_lab import recorded_groups

REPO = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = str(REPO / "playbooks/isolate.yml")
INVENTORY = str(REPO / "docs/examples/lab.guardduty.yml")
ADMIN, MEMBER = "123456789012", "111122223333"
MEMBER_ROLE = f"arn:aws:iam::{MEMBER}:role/GuardDutyResponder"
# The demo incident's compromised instances (bastion-1's only finding is archived) and the others.
COMPROMISED = {"web-1": (ADMIN, "us-east-1"), "app-1": (ADMIN, "us-east-1"), "api-1": (ADMIN, "eu-west-1"),
               "worker-1": (MEMBER, "us-east-1")}
UNTOUCHED = {"bastion-1": (ADMIN, "us-east-1"), "healthy-1": (ADMIN, "us-east-1"), "worker-2": (MEMBER, "us-east-1"),
             "idle-1": (MEMBER, "eu-west-1")}
ISOLATION_TASK = "Contain | isolate every network interface (ec2_isolation)"
BATCHED_TASKS = [
    "Evidence | protect the instances and their volumes from deletion (ec2_instance_protection)",
    "Evidence | snapshot every volume (ec2_forensic_snapshot)",
    "Contain | take the instances out of Auto Scaling and load balancers (ec2_instance_detach)",
    ISOLATION_TASK,
    "Contain | take the Elastic IPs off (ec2_public_ip)",
    "Contain | cut the instance credentials (ec2_instance_credentials)",
    "Scan | start a GuardDuty malware scan of each instance (guardduty_malware_scan)",
    "Find the source | recommend how to stop the reported activity (guardduty_find_source)",
]
ONLY_NETWORK = {"isolate_protection": False, "isolate_snapshots": False, "isolate_evidence": False, "isolate_detach": False,
                "isolate_public_ip": False, "isolate_credentials": False, "isolate_scan": False, "isolate_triage": False,
                "isolate_report": False}


# -- helpers -----------------------------------------------------------------------------------
def eni_groups(lab, name, account, region):
    """{eni_id: [(group_id, group_name)]} of an instance, read back from the lab."""
    ec2 = lab.client("ec2", account, region)
    nics = ec2.describe_network_interfaces(NetworkInterfaceIds=lab.instance(name)["enis"])["NetworkInterfaces"]
    return {n["NetworkInterfaceId"]: sorted((g["GroupId"], g["GroupName"]) for g in n["Groups"]) for n in nics}


def all_groups(lab):
    return {name: eni_groups(lab, name, *where) for name, where in {**COMPROMISED, **UNTOUCHED}.items()}


def instance(lab, name, account, region):
    ec2 = lab.client("ec2", account, region)
    return ec2.describe_instances(InstanceIds=[lab.instance(name)["id"]])["Reservations"][0]["Instances"][0]


def batch_items(run, name):
    """The loop items a batched task ran (one per module call), over every host."""
    return [item for host in task(run, name).values() for item in host.get("results", []) if not item.get("skipped")]


def static_inventory(lab, tmp_path, names):
    """A static inventory of the named demo instances, {name: (account, region, responder role or None)}."""
    hosts = {}
    for name, (account, region, role) in names.items():
        hosts[name] = {"instance_id": lab.instance(name)["id"], "region": region, "account_id": account}
        if role:
            hosts[name]["responder_role_arn"] = role
    inventory = tmp_path / "static.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": hosts}}}}))
    return inventory


def run_isolate(lab, extra_vars, **kwargs):
    kwargs.setdefault("inventory", INVENTORY)
    kwargs.setdefault("limit", "compromised")
    return lab.run_playbook(PLAYBOOK, extra_vars=extra_vars, **kwargs)


@pytest.fixture(scope="module")
def incident(lab, tmp_path_factory):
    """The demo incident: a check-mode run, the real run, then a second run, with journal marks around each."""
    lab.reset("demo")
    tmp = tmp_path_factory.mktemp("isolate")
    extra = {"incident_id": "INC-7", "isolate_evidence_dir": str(tmp / "evidence"),
             "isolate_report_dir": str(tmp / "reports")}
    before = all_groups(lab)
    marks = [lab.mark()]
    # its own report directory: the real runs write the same incident's report again
    check = run_isolate(lab, dict(extra, isolate_report_dir=str(tmp / "reports-check")), check=True)
    marks.append(lab.mark())
    after_check = all_groups(lab)
    evidence_after_check = sorted(p for p in (tmp / "evidence").rglob("*") if p.is_file())
    first = run_isolate(lab, extra)
    marks.append(lab.mark())
    second = run_isolate(lab, dict(extra, isolate_report_dir=str(tmp / "reports-second")))
    marks.append(lab.mark())
    return types.SimpleNamespace(
        lab=lab, tmp=tmp, before=before, after_check=after_check, evidence_after_check=evidence_after_check,
        check=check, first=first, second=second,
        check_journal=between(lab, marks[0], marks[1]), first_journal=between(lab, marks[1], marks[2]),
        second_journal=between(lab, marks[2], marks[3]))


# -- the demo incident -------------------------------------------------------------------------
def test_check_mode_runs_the_whole_chain_and_changes_nothing(incident):
    assert incident.check["rc"] == 0
    assert writes(incident.check_journal) == []
    assert incident.after_check == incident.before
    assert incident.evidence_after_check == []
    # ... yet it ran every stage and says what would change.
    for name in BATCHED_TASKS:
        assert batch_items(incident.check, name), name
    assert any(item["changed"] for item in batch_items(incident.check, ISOLATION_TASK))


def test_every_eni_of_every_compromised_instance_is_on_the_isolation_group_only(incident):
    lab = incident.lab
    assert incident.first["rc"] == 0
    assert all(s["failures"] == 0 for s in incident.first["stats"].values()), incident.first["stats"]
    assert sorted(incident.first["stats"]) == sorted(COMPROMISED)
    for name, (account, region) in COMPROMISED.items():
        groups = eni_groups(lab, name, account, region)
        assert len(groups) == len(lab.instance(name)["enis"])
        for eni_id, on in groups.items():
            assert [g[1] for g in on] == ["guardduty-isolation"], (name, eni_id, on)
            original = [g for g in incident.before[name][eni_id]]
            nic = lab.client("ec2", account, region).describe_network_interfaces(NetworkInterfaceIds=[eni_id])
            tags = {t["Key"]: t["Value"] for t in nic["NetworkInterfaces"][0]["TagSet"]}
            assert sorted(recorded_groups(tags)) == sorted(g[0] for g in original)
        tags = {t["Key"]: t["Value"] for t in instance(lab, name, account, region)["Tags"]}
        assert tags["guardduty:incident"] == "INC-7" and tags["guardduty:isolation"] == "isolated", name
    # The others keep their groups.
    after = all_groups(lab)
    for name in UNTOUCHED:
        assert after[name] == incident.before[name], name


def test_evidence_is_kept_before_containment(incident):
    lab = incident.lab
    for name, (account, region) in COMPROMISED.items():
        ec2 = lab.client("ec2", account, region)
        instance_id = lab.instance(name)["id"]
        snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": "tag:guardduty:incident", "Values": ["INC-7"]},
            {"Name": "tag:guardduty:instance", "Values": [instance_id]}])["Snapshots"]
        assert sorted(s["VolumeId"] for s in snapshots) == sorted(lab.instance(name)["volumes"]), name
        protection = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
        assert protection["DisableApiTermination"]["Value"] is True, name
        manifests = list((incident.tmp / "evidence" / "INC-7").glob(f"*/{region}/{instance_id}/*/manifest.json"))
        assert len(manifests) == 1, (name, manifests)   # captured once: the second run kept the first capture
        assert manifests[0].stat().st_mode & 0o077 == 0
    # the incident's first run has no evidence directory yet: that is no capture, not a warning
    for run in (incident.check, incident.first):
        assert "is not a directory" not in run["stderr"], run["stderr"][-2000:]
    # Evidence first: every snapshot was requested before the first security group move.
    journal = incident.first_journal
    first_move = min(e["seq"] for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute")
    assert max(e["seq"] for e in journal if e["action"] in ("CreateSnapshot", "CreateSnapshots")) < first_move


def test_elastic_ips_load_balancers_and_credentials_are_cut(incident):
    lab = incident.lab
    for name in ("web-1", "worker-1"):
        account, region = COMPROMISED[name]
        address = lab.client("ec2", account, region).describe_addresses(
            AllocationIds=[lab.instance(name)["allocation_id"]])["Addresses"][0]
        assert not address.get("AssociationId") and not address.get("InstanceId"), (name, address)
        associations = lab.client("ec2", account, region).describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [lab.instance(name)["id"]]}])["IamInstanceProfileAssociations"]
        assert [a for a in associations if a["State"] in ("associated", "associating")] == [], name
    web = lab.instance("web-1")["id"]
    asg = lab.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]
    assert web not in [i["InstanceId"] for i in asg["Instances"]]
    resources = lab.resources["accounts"][ADMIN]["regions"]
    health = lab.client("elbv2").describe_target_health(TargetGroupArn=resources["us-east-1"]["target_groups"]["web-tg"])
    assert web not in [t["Target"]["Id"] for t in health["TargetHealthDescriptions"]
                       if t["TargetHealth"]["State"] != "draining"]
    elb = lab.client("elb", ADMIN, "eu-west-1").describe_load_balancers(LoadBalancerNames=["api-elb"])
    assert lab.instance("api-1")["id"] not in [i["InstanceId"] for i in elb["LoadBalancerDescriptions"][0]["Instances"]]
    # healthy-1 shares web-1's instance profile and keeps it.
    kept = lab.client("ec2").describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [lab.instance("healthy-1")["id"]]}])["IamInstanceProfileAssociations"]
    assert [a["State"] for a in kept] == ["associated"]


def test_each_module_runs_once_per_account_and_region_batch(incident):
    ids = {name: incident.lab.instance(name)["id"] for name in COMPROMISED}
    expected = sorted([sorted([ids["web-1"], ids["app-1"]]), [ids["api-1"]], [ids["worker-1"]]])
    for name in BATCHED_TASKS:
        items = batch_items(incident.first, name)
        assert sorted(sorted(i["item"]["instance_ids"]) for i in items) == expected, name
    journal = incident.first_journal
    # Each responder role is assumed once for the run, not once per host or per stage.
    assumed = sorted(e["params"].get("RoleArn") for e in responder_sessions(journal))
    assert assumed == sorted([f"arn:aws:iam::{ADMIN}:role/GuardDutyResponder", MEMBER_ROLE])
    # The instances of a batch are described together: no DescribeInstances names a single instance of web-1's batch.
    for entry in journal:
        if entry["action"] == "DescribeInstances":
            named = [v for k, v in entry["params"].items() if k.startswith("InstanceId")]
            assert named != [ids["web-1"]] and named != [ids["app-1"]], entry
    # The calls went to each account and region with that batch's credentials.
    moved = {(e["account"], e["region"]) for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute"}
    assert moved == set(COMPROMISED.values())


def test_report_lists_every_instance_with_its_stages(incident):
    report_task = "Report | write the incident report (incident_report)"
    for run, check_mode in ((incident.check, True), (incident.first, False)):
        written = [r for r in task(run, report_task).values() if not r.get("skipped")]
        assert len(written) == 1   # once for the play
        report = json.loads(pathlib.Path(written[0]["files"]["json"]).read_text())
        assert report["incident_id"] == "INC-7" and report["check_mode"] is check_mode
        rows = {row["host"]: row for row in report["instances"]}
        assert sorted(rows) == sorted(COMPROMISED)
        for name, (account, region) in COMPROMISED.items():
            row = rows[name]
            assert (row["instance_id"], row["account_id"], row["region"]) == (incident.lab.instance(name)["id"], account, region)
            assert row["errors"] == [] and row["stages"]["isolation"]["status"] == "changed", row["stages"]
            assert {"preflight", "protection", "snapshots", "evidence", "detach", "isolation", "public_ip", "credentials",
                    "scan", "triage"} <= set(row["stages"])
        summary = task(run, "Report | summary")
        shown = "\n".join(next(r for r in summary.values() if not r.get("skipped"))["msg"])
        assert all(incident.lab.instance(name)["id"] in shown for name in COMPROMISED)


def test_second_run_changes_nothing(incident):
    assert incident.second["rc"] == 0
    assert all(s["changed"] == 0 and s["failures"] == 0 for s in incident.second["stats"].values()), incident.second["stats"]
    attempted = writes(incident.second_journal)
    assert [e for e in attempted if e["status"] < 400] == []
    # guardduty_malware_scan starts first and reuses on AWS's refusal (one call, no describe): a rerun within
    # the hour is refused with ConflictException, which changes nothing. No other write is even attempted.
    assert {(e["action"], e["outcome"]) for e in attempted} <= {("StartMalwareScan", "ConflictException")}


# -- selection and scale -----------------------------------------------------------------------
def test_limit_selects_exactly_what_is_isolated(lab):
    lab.reset("demo")
    before = all_groups(lab)
    mark = lab.mark()
    run = run_isolate(lab, dict(ONLY_NETWORK, incident_id="INC-LIMIT"), limit="web-1")
    journal = lab.journal(mark)
    assert list(run["stats"]) == ["web-1"]
    web_enis = set(lab.instance("web-1")["enis"])
    touched = {e["params"].get("NetworkInterfaceId") for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute"}
    assert touched == web_enis
    after = all_groups(lab)
    assert [g[1] for g in after["web-1"][next(iter(web_enis))]] == ["guardduty-isolation"]
    for name in [n for n in after if n != "web-1"]:
        assert after[name] == before[name], name   # app-1 shares web-1's batch in a full run, not here


def test_two_accounts_and_two_regions_in_one_run(lab, tmp_path):
    """Any inventory works: here a static one, one account through its responder role, both in two regions."""
    lab.reset("demo")
    names = {"web-1": (ADMIN, "us-east-1", None), "api-1": (ADMIN, "eu-west-1", None),
             "worker-1": (MEMBER, "us-east-1", MEMBER_ROLE), "idle-1": (MEMBER, "eu-west-1", MEMBER_ROLE)}
    inventory = static_inventory(lab, tmp_path, names)
    mark = lab.mark()
    run = run_isolate(lab, dict(ONLY_NETWORK, incident_id="INC-2X2", isolate_public_ip=True), inventory=str(inventory))
    journal = lab.journal(mark)
    assert all(s["failures"] == 0 for s in run["stats"].values()) and sorted(run["stats"]) == sorted(names)
    assert [e["params"].get("RoleArn") for e in responder_sessions(journal)] == [MEMBER_ROLE]
    moved = {(e["account"], e["region"]) for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute"}
    assert moved == {(a, r) for a, r, _unused in names.values()}
    assert len(batch_items(run, ISOLATION_TASK)) == 4
    for name, (account, region, _unused) in names.items():
        for eni_id, on in eni_groups(lab, name, account, region).items():
            assert [g[1] for g in on] == ["guardduty-isolation"], (name, eni_id, on)


def test_an_account_whose_responder_role_does_not_exist_fails_only_its_own_hosts_by_name(lab, tmp_path):
    """Bad input: the wrong role for one member account. AWS refuses the AssumeRole (AccessDenied): that
    account's hosts fail, each naming its instance, the preflight and the role; nothing is changed there;
    the other account's instances are isolated all the same, and the report says what happened to both."""
    lab.reset("demo")
    wrong_role = f"arn:aws:iam::{MEMBER}:role/NoSuchResponder"
    names = {"web-1": (ADMIN, "us-east-1", None), "worker-1": (MEMBER, "us-east-1", wrong_role),
             "idle-1": (MEMBER, "eu-west-1", wrong_role)}
    inventory = static_inventory(lab, tmp_path, names)
    before = {name: eni_groups(lab, name, account, region) for name, (account, region, _r) in names.items()}
    mark = lab.mark()
    run = run_isolate(lab, dict(ONLY_NETWORK, incident_id="INC-ROLE", isolate_report=True,
                                isolate_report_dir=str(tmp_path / "reports")), inventory=str(inventory), expect_rc=(2,))
    journal = lab.journal(mark)

    assert run["stats"]["web-1"]["failures"] == 0
    failed = task(run, "Batches | fail the instances whose stage failed")
    for name in ("worker-1", "idle-1"):
        assert run["stats"][name]["failures"] == 1, run["stats"]
        message = failed[name]["msg"]
        assert message.startswith(f"{name} ({lab.instance(name)['id']}): preflight failed: cannot assume {wrong_role}"), message
        assert "AccessDenied" in message or "not authorized" in message, message
        assert eni_groups(lab, name, *names[name][:2]) == before[name]
    assert not [e for e in writes(journal) if e["account"] == MEMBER], "nothing may change in the account without a role"
    assert [e["outcome"] for e in responder_sessions(journal)] == ["AccessDenied"]  # assumed once, not per host
    for eni_id, on in eni_groups(lab, "web-1", ADMIN, "us-east-1").items():
        assert [g[1] for g in on] == ["guardduty-isolation"], (eni_id, on)
    report = json.loads(sorted((tmp_path / "reports").rglob("runs/*/report.json"))[-1].read_text())
    rows = {row["host"]: row for row in report["instances"]}
    assert rows["worker-1"]["stages"]["preflight"]["status"] == "failed", rows["worker-1"]["stages"]
    assert [e["stage"] for e in rows["worker-1"]["errors"]] == ["preflight"]
    assert f"cannot assume {wrong_role}" in rows["worker-1"]["errors"][0]["message"]
    assert "isolation" not in rows["worker-1"]["stages"]
    assert rows["web-1"]["stages"]["isolation"]["status"] == "changed" and rows["web-1"]["errors"] == []


def test_a_second_wave_in_the_same_incident_keeps_the_earlier_evidence_and_captures_the_new(lab, tmp_path):
    """web-1 is contained with its evidence first; app-1 (same account and region, so the same batch) is
    reported later in the same incident. The second run captures app-1 only, records web-1's earlier
    capture, and fails neither (an instance the evidence module was not given has no error of its batch)."""
    lab.reset("demo")
    extra = dict(ONLY_NETWORK, incident_id="INC-WAVE", isolate_evidence=True, isolate_evidence_screenshot=False,
                 isolate_evidence_dir=str(tmp_path / "evidence"), isolate_report=True,
                 isolate_report_dir=str(tmp_path / "reports"))
    first = run_isolate(lab, extra, limit="web-1")
    assert first["stats"]["web-1"]["failures"] == 0
    web_capture = sorted((tmp_path / "evidence").rglob("manifest.json"))
    assert len(web_capture) == 1 and lab.instance("web-1")["id"] in str(web_capture[0])

    second = run_isolate(lab, extra, limit="web-1,app-1")
    assert all(s["failures"] == 0 for s in second["stats"].values()), second["stats"]
    captures = sorted((tmp_path / "evidence").rglob("manifest.json"))
    assert len(captures) == 2 and web_capture[0] in captures   # web-1's first capture kept, not redone
    report = json.loads(sorted((tmp_path / "reports").rglob("runs/*/report.json"))[-1].read_text())
    rows = {row["host"]: row for row in report["instances"]}
    assert rows["web-1"]["stages"]["evidence"]["result"]["note"].startswith("captured earlier"), rows["web-1"]["stages"]
    assert rows["app-1"]["stages"]["evidence"]["status"] == "changed", rows["app-1"]["stages"]
    for name in ("web-1", "app-1"):
        assert rows[name]["errors"] == [] and rows[name]["stages"]["isolation"]["status"] in ("changed", "ok")


def test_a_batch_goes_on_when_its_leaders_own_instance_cannot_be_contained(lab, tmp_path):
    """The playbook runs each batch's stages on its leader (its first host) in a play of the leaders only.
    app-1 leads the batch (first in the inventory) and its instance is terminated: isolation fails for app-1
    alone, the leader still runs the later stage (credentials) for web-1, and only app-1's host fails, naming
    its instance."""
    lab.reset("demo")
    names = {"app-1": (ADMIN, "us-east-1", None), "web-1": (ADMIN, "us-east-1", None)}
    inventory = static_inventory(lab, tmp_path, names)
    app_id, web_id = lab.instance("app-1")["id"], lab.instance("web-1")["id"]
    lab.client("ec2", ADMIN, "us-east-1").terminate_instances(InstanceIds=[app_id])
    mark = lab.mark()
    run = run_isolate(lab, dict(ONLY_NETWORK, incident_id="INC-LEADER", isolate_credentials=True, isolate_report=True,
                                isolate_report_dir=str(tmp_path / "reports")), inventory=str(inventory), expect_rc=(2,))
    journal = lab.journal(mark)

    assert sorted(run["stats"]) == ["app-1", "web-1"]   # the recap lists every host, not only the leader
    assert run["stats"]["app-1"]["failures"] == 1 and run["stats"]["web-1"]["failures"] == 0, run["stats"]
    # every host has its own outcome (AWX's host view): ok=1 with its instance, not ok=0 for a host whose batch ran elsewhere
    outcome = task(run, "Batches | fail the instances whose stage failed")
    assert run["stats"]["web-1"]["ok"] >= 1 and outcome["web-1"]["msg"].endswith("no stage failed"), outcome["web-1"]
    assert list(task(run, ISOLATION_TASK)) == ["app-1"]   # the leaders' play: the batch's module calls on app-1 only
    credentials = batch_items(run, "Contain | cut the instance credentials (ec2_instance_credentials)")
    assert [item["item"]["instance_ids"] for item in credentials] == [[web_id]]
    failed = task(run, "Batches | fail the instances whose stage failed")
    assert failed["app-1"]["msg"].startswith(f"app-1 ({app_id}): isolation failed:"), failed["app-1"]["msg"]
    assert "terminated" in failed["app-1"]["msg"], failed["app-1"]["msg"]
    web_groups = [g[1] for on in eni_groups(lab, "web-1", ADMIN, "us-east-1").values() for g in on]
    assert web_groups == ["guardduty-isolation"] * len(lab.instance("web-1")["enis"])
    assert not [e for e in writes(journal) if app_id in json.dumps(e["params"])]
    report = json.loads(sorted((tmp_path / "reports").rglob("runs/*/report.json"))[-1].read_text())
    rows = {row["host"]: row for row in report["instances"]}
    assert [e["stage"] for e in rows["app-1"]["errors"]] == ["isolation"] and "credentials" not in rows["app-1"]["stages"]
    assert rows["web-1"]["errors"] == [] and {"isolation", "credentials"} <= set(rows["web-1"]["stages"])


def test_a_batch_whose_leaders_options_are_refused_fails_all_its_hosts_by_that_cause(lab, tmp_path):
    """Bad input: a stage switch that cannot be templated (an undefined variable) on web-1, the leader of the
    us-east-1 batch. One task of the first play checks every leader's options (not two tasks a leader in the
    leaders' play): web-1's batch is refused before any stage, web-1 never joins the leaders' play, and app-1, in
    the same batch, fails by name with web-1's options as the cause; api-1's batch (eu-west-1) is isolated all the
    same."""
    lab.reset("demo")
    names = {"api-1": (ADMIN, "eu-west-1", None), "app-1": (ADMIN, "us-east-1", None), "web-1": (ADMIN, "us-east-1", None)}
    inventory = static_inventory(lab, tmp_path, names)
    hosts = yaml.safe_load(inventory.read_text())
    # app-1 sorts first, but web-1 leads: the inventory's order makes the leader, and web-1 comes first here
    ordered = {name: hosts["all"]["children"]["compromised"]["hosts"][name] for name in ("api-1", "web-1", "app-1")}
    ordered["web-1"]["isolate_subnet_containment"] = "{{ no_such_variable }}"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": ordered}}}}, sort_keys=False))
    before = eni_groups(lab, "app-1", ADMIN, "us-east-1")
    run = run_isolate(lab, ONLY_NETWORK, inventory=str(inventory), expect_rc=(2,))

    assert run["stats"]["api-1"]["failures"] == 0 and run["stats"]["web-1"]["failures"] == 1, run["stats"]
    assert run["stats"]["app-1"]["failures"] == 1, run["stats"]
    cause = ("options failed: the options of web-1, the host that runs this batch, were refused: isolate_subnet_containment: "
             "'no_such_variable' is undefined: nothing was changed")
    failed = task(run, "Batches | fail the instances whose stage failed")
    assert failed["app-1"]["msg"] == f"app-1 ({lab.instance('app-1')['id']}): {cause}", failed["app-1"]
    assert failed["web-1"]["msg"] == f"web-1 ({lab.instance('web-1')['id']}): {cause}", failed["web-1"]
    checked = task(run, "Isolate | check the options of every batch's leader")
    assert list(checked) == ["api-1"], checked  # one task for every leader, run once
    assert list(checked["api-1"]["refused"]) == ["web-1"] and not checked["api-1"].get("failed"), checked
    assert not [name for name in run["tasks"] if "check the role's options" in name]  # no check a leader any more
    assert list(task(run, ISOLATION_TASK)) == ["api-1"]
    assert eni_groups(lab, "app-1", ADMIN, "us-east-1") == before
    for on in eni_groups(lab, "api-1", ADMIN, "eu-west-1").values():
        assert [g[1] for g in on] == ["guardduty-isolation"], on


def test_the_outcome_read_when_the_first_batchs_leader_was_refused_is_still_the_whole_runs(lab, tmp_path):
    """The last play reads the play-wide record from the first host of the leaders' play. Here the first batch's
    leader (api-1, whose eu-west-1 batch sorts first) has its options refused in the first play and never joins
    it; the record is read from web-1, which ran the stages after, so app-1's later isolation failure fails app-1,
    api-1 fails by its options, and web-1 passes."""
    lab.reset("demo")
    names = {"api-1": (ADMIN, "eu-west-1", None), "app-1": (ADMIN, "us-east-1", None), "web-1": (ADMIN, "us-east-1", None)}
    inventory = static_inventory(lab, tmp_path, names)
    hosts = yaml.safe_load(inventory.read_text())["all"]["children"]["compromised"]["hosts"]
    ordered = {name: hosts[name] for name in ("web-1", "app-1", "api-1")}   # api-1 still leads the first batch
    ordered["api-1"]["isolate_subnet_containment"] = "{{ no_such_variable }}"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": ordered}}}}, sort_keys=False))
    app_id = lab.instance("app-1")["id"]
    lab.client("ec2", ADMIN, "us-east-1").terminate_instances(InstanceIds=[app_id])
    run = run_isolate(lab, ONLY_NETWORK, inventory=str(inventory), expect_rc=(2,))

    assert run["stats"]["api-1"]["failures"] == 1 and run["stats"]["web-1"]["failures"] == 0, run["stats"]
    assert run["stats"]["app-1"]["failures"] == 1, run["stats"]
    failed = task(run, "Batches | fail the instances whose stage failed")
    # ec2_isolation's error is an InstanceProblem (action, code, message), shown as every module's is
    assert failed["app-1"]["msg"] == (f"app-1 ({app_id}): isolation failed: DescribeInstances {app_id}: DescribeInstances: "
                                      "instance is terminated"), failed["app-1"]
    assert failed["api-1"]["msg"].startswith(f"api-1 ({lab.instance('api-1')['id']}): options failed: the options of "
                                             "api-1, the host that runs this batch, were refused:"), failed["api-1"]
    assert list(task(run, ISOLATION_TASK)) == ["web-1"]  # the leaders' play: web-1 alone, api-1 never joined
    for on in eni_groups(lab, "web-1", ADMIN, "us-east-1").values():
        assert [g[1] for g in on] == ["guardduty-isolation"], on
