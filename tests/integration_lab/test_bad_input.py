"""The bad-input corpus: each case gives a clear message naming the instance (or the parameter) and the
cause, and changes nothing it should not; good instances in the same batch are still processed.

Cases share module runs where the module's contract allows (a batch reports per instance), so that the
corpus stays cheap: each case still asserts its own message and its own AWS state. docs/reliability.md
lists the cases and their messages.
"""

import copy
import json
import pathlib
import subprocess
import sys
import textwrap
import threading

from tests.integration_lab.reliability_lab import ADMIN
from tests.integration_lab.reliability_lab import MODULE
from tests.integration_lab.reliability_lab import RECORD_TAG
from tests.integration_lab.reliability_lab import assert_isolated
from tests.integration_lab.reliability_lab import build_fleet
from tests.integration_lab.reliability_lab import containment_groups
from tests.integration_lab.reliability_lab import describe_enis
from tests.integration_lab.reliability_lab import eni_groups
from tests.integration_lab.reliability_lab import instance_tags
from tests.integration_lab.reliability_lab import mentions
from tests.integration_lab.reliability_lab import recorded_groups
from tests.integration_lab.reliability_lab import regional
from tests.integration_lab.reliability_lab import tags_of
from tests.integration_lab.reliability_lab import writes

REPO = pathlib.Path(__file__).resolve().parents[2]
MEMBER = "111122223333"
UNKNOWN = "i-0123456789abcdef0"


def untouched(entries, *resources):
    """No write call, whatever its outcome, named any of `resources`."""
    return [e for e in writes(entries) if any(mentions(e, r) for r in resources)] == []


def playbook_of(tasks):
    """One ansible-playbook run for several cases: each task registers its result and the run goes on."""
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        dict({"name": name, "ignore_errors": True}, **{module: args}) for name, module, args in tasks]}], indent=1) + "\n"


def run_cases(lab, tasks):
    out = lab.run_playbook(playbook_of(tasks), expect_rc=(0, 2))
    return {name: out["tasks"][name]["localhost"] for name, _module, _args in tasks}


def message(result):
    """Everything the responder reads: the task's msg and every per-instance error."""
    items = (result.get("instances") or {}).values()
    return " | ".join([str(result.get("msg") or "")] + [str((i.get("error") or {}).get("message") or "") for i in items
                                                          if isinstance(i, dict)])


# -- one batch, many bad ids: per-instance messages, the good ones still isolated -----------------------
def test_bad_ids_in_one_batch(demo):
    ec2 = demo.client("ec2")
    fleet = build_fleet(demo, 4, seed=8)
    terminated, stopped, tampered, good = list(fleet)
    ec2.terminate_instances(InstanceIds=[terminated])
    ec2.stop_instances(InstanceIds=[stopped])
    app = demo.instance("app-1")
    managed = app["enis"][2]
    ec2.create_tags(Resources=[managed], Tags=[{"Key": "lab:requester-managed", "Value": "true"}])
    ec2.create_tags(Resources=[fleet[tampered][0]], Tags=[{"Key": RECORD_TAG, "Value": "{\"sg\": [broken"}])
    web, bastion = demo.instance("web-1")["id"], demo.instance("bastion-1")["id"]
    api, worker = demo.instance("api-1")["id"], demo.instance("worker-1")["id"]
    huge = [f"i-{n:017x}" for n in range(1, 1491)]  # well-formed, unknown: the batch is accepted whole
    all_enis = [e for enis in fleet.values() for e in enis] + list(app["enis"]) + list(demo.instance("web-1")["enis"])
    originals = eni_groups(demo, all_enis + list(demo.instance("bastion-1")["enis"]))
    ids = ["i-123", "web-1", "", UNKNOWN, api, worker, terminated, stopped, app["id"], tampered, web, web,
           bastion, good] + huge
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": ids, "incident_id": "IR-BAD"}, expect_rc=(2,))
    entries = demo.journal(mark)
    # {instance_id: part}, every id given once; each error names the instance, the action and the cause.
    assert result["failed"] and sorted(result["instances"]) == sorted(set(ids))
    by_id = result["instances"]
    expect = {
        "i-123": "i-123: validate: malformed instance id: expected i- followed by 8 or 17 hexadecimal characters",
        "web-1": "web-1: validate: malformed instance id",
        "": "malformed instance id",
        UNKNOWN: f"{UNKNOWN}: DescribeInstances: instance not found in this account and region (us-east-1)",
        api: f"{api}: DescribeInstances: instance not found in this account and region (us-east-1)",
        worker: f"{worker}: DescribeInstances: instance not found in this account and region (us-east-1)",
        terminated: f"{terminated}: DescribeInstances: instance is terminated",
        app["id"]: f"{managed}: requester-managed",
    }
    for instance_id, text in expect.items():
        item = by_id[instance_id]
        assert text in item["error"]["message"], (instance_id, item["error"])
        assert text in result["msg"]
    for instance_id in ("i-123", "web-1", "", UNKNOWN, api, worker, terminated):
        assert by_id[instance_id]["state"] == "failed" and by_id[instance_id]["changed"] is False
        assert untouched(entries, instance_id, *fleet.get(instance_id, [])), instance_id
    # A tag record the incident store does not know is never adopted (anyone with ec2:CreateTags can write it):
    # the ENI's true groups are recorded, the tag overwritten with them, and a warning names the ENI and the tag.
    assert by_id[tampered]["state"] == "isolated" and not by_id[tampered]["error"]
    assert any(fleet[tampered][0] in w and RECORD_TAG in w and "ignored" in w for w in by_id[tampered]["warnings"])
    # The requester-managed ENI is reported and untouched; the instance's other ENIs are isolated.
    assert by_id[app["id"]]["state"] != "released" and untouched(entries, managed)
    assert eni_groups(demo, [managed])[managed] == originals[managed]
    # A stopped instance still has its ENIs: it is isolated like a running one. Duplicates count once.
    assert_isolated(demo, {i: fleet.get(i) or demo_enis(demo, i) for i in (stopped, web, bastion, good, tampered)},
                    originals, incident_id="IR-BAD")
    assert by_id[web]["state"] == "isolated"
    web_eni = demo.instance("web-1")["enis"][0]
    assert len([e for e in entries if e["action"] == "ModifyNetworkInterfaceAttribute"
                and e["params"]["NetworkInterfaceId"] == web_eni]) == 2
    # 1500 ids: accepted, described by filter in pages of at most 200 ids (not one call per id).
    assert all(by_id[i]["error"]["message"] == f"{i}: DescribeInstances: instance not found in this account and region "
               "(us-east-1)" for i in huge)
    assert len([e for e in entries if e["action"] == "DescribeInstances"]) == 8


def demo_enis(lab, instance_id):
    return next(list(v["enis"]) for v in lab.resources["instances"].values() if v["id"] == instance_id)


# -- refused before any AWS call: parameters ---------------------------------------------------------
def test_bad_parameters_are_refused_before_any_call(demo):
    web = demo.instance("web-1")["id"]
    cases = [
        ("empty list", MODULE, {"instance_ids": []}, "instance_ids is empty"),
        ("malformed cidr", MODULE, {"instance_ids": [web], "allowed_access": [{"cidr": "10.0.0.300/32", "port": 22}]},
         "allowed_access[0]: cidr '10.0.0.300/32' is not an IPv4 or IPv6 network"),
        ("open cidr", MODULE, {"instance_ids": [web], "allowed_access": [{"cidr": "0.0.0.0/0", "port": 22}]},
         "allowed_access[0]: cidr 0.0.0.0/0 is open to everyone"),
        ("tcp without port", MODULE, {"instance_ids": [web], "allowed_access": [{"cidr": "10.9.9.9/32"}]},
         "allowed_access[0]: protocol tcp needs a port"),
        ("port out of range", MODULE, {"instance_ids": [web],
                                       "allowed_access": [{"cidr": "10.9.9.9/32", "port": 22, "to_port": 70000}]},
         "allowed_access[0]: port range 22-70000 is not within 0-65535"),
        ("incident id too long for a tag", MODULE, {"instance_ids": [web], "incident_id": "IR-" + "x" * 300},
         "incident_id is 303 characters long; an EC2 tag value holds at most 256"),
        ("same group names", MODULE, {"instance_ids": [web], "isolation_group_name": "g", "conversion_group_name": "g"},
         "isolation_group_name and conversion_group_name must differ"),
        ("public examiner range", MODULE, {"instance_ids": [web], "allowed_access": [{"cidr": "198.51.100.7/32", "port": 22}]},
         "allowed_access[0]: cidr 198.51.100.7/32 is not a private range"),
        ("internet in two halves", MODULE, {"instance_ids": [web], "allowed_access_acknowledge_public": True,
                                            "allowed_access": [{"cidr": "0.0.0.0/1", "port": 22}, {"cidr": "128.0.0.0/1", "port": 22}]},
         "allowed_access[0]: cidr 0.0.0.0/1 is broader than /8"),
        ("ipv6 half", MODULE, {"instance_ids": [web], "allowed_access_acknowledge_public": True,
                               "allowed_access": [{"cidr": "::/1", "protocol": "all"}]},
         "allowed_access[0]: cidr ::/1 is broader than /32"),
        ("icmp type out of range", MODULE, {"instance_ids": [web],
                                            "allowed_access": [{"cidr": "10.9.9.9/32", "protocol": "icmp", "port": 256}]},
         "allowed_access[0]: ICMP type 256 is not within -1 (all) to 255"),
        ("icmp code without type", MODULE, {"instance_ids": [web],
                                            "allowed_access": [{"cidr": "10.9.9.9/32", "protocol": "icmp", "to_port": 3}]},
         "with type -1 (all types) the code must be -1 too"),
        ("group name over 255 characters", MODULE, {"instance_ids": [web], "isolation_group_name": "g" * 256},
         "isolation_group_name is 256 characters long; AWS accepts at most 255"),
        ("group name starting with sg-", MODULE, {"instance_ids": [web], "conversion_group_name": "sg-conversion"},
         "conversion_group_name 'sg-conversion' starts with 'sg-'"),
        ("isolation: bad incident id", MODULE, {"instance_ids": [web], "incident_id": "INC 42/../x"},
         "incident_id 'INC 42/../x' is not a valid incident id"),
        ("snapshots: quoted incident id", "cloudsec.guardduty.ec2_forensic_snapshot",
         {"instance_ids": [web], "incident_id": '"INC-42"'}, """incident_id '"INC-42"' is not a valid incident id"""),
        ("snapshots: negative wait timeout", "cloudsec.guardduty.ec2_forensic_snapshot",
         {"instance_ids": [web], "incident_id": "INC-42", "wait": True, "wait_timeout": -1}, "wait_timeout is -1; it must be >= 0"),
        ("evidence: bad incident id", "cloudsec.guardduty.ec2_instance_evidence",
         {"instance_ids": [web], "incident_id": "../INC", "evidence_dir": "/tmp/never-written"}, "incident_id '../INC' is not a valid"),
        ("eradicate: bad incident id", "cloudsec.guardduty.ec2_eradicate",
         {"instance_ids": [web], "incident_id": "INC 42", "confirm": ["terminate-INC 42"]}, "incident_id 'INC 42' is not a valid"),
        ("support case: bad incident id", "cloudsec.guardduty.guardduty_support_case",
         {"incident_id": "[INC-42]", "summary": "x"}, "incident_id '[INC-42]' is not a valid"),
        ("scan: negative wait timeout", "cloudsec.guardduty.guardduty_malware_scan",
         {"instance_ids": [web], "wait": True, "wait_timeout": -5}, "wait_timeout is -5; it must be >= 0"),
        ("eradicate without confirmation", "cloudsec.guardduty.ec2_eradicate",
         {"instance_ids": [web], "confirm": [], "incident_id": "IR-BAD"}, "refusing to terminate without confirmation"),
        ("eradicate confirming another instance", "cloudsec.guardduty.ec2_eradicate",
         {"instance_ids": [web], "confirm": [UNKNOWN], "incident_id": "IR-BAD"},
         "refusing to terminate without confirmation"),
    ]
    mark = demo.mark()
    results = run_cases(demo, [(name, module, args) for name, module, args, _text in cases])
    for name, _module, _args, text in cases:
        assert results[name].get("failed") and text in message(results[name]), (name, message(results[name]))
    assert demo.journal(mark) == []  # no AWS call at all, not even a Describe
    state = demo.client("ec2").describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "running"


# -- refused before any change: the isolate playbook's options -------------------------------------------
ISOLATE = str(REPO / "playbooks/isolate.yml")


def isolate_playbook(lab, tmp_path, extra):
    hosts = {name: {"instance_id": lab.instance(name)["id"], "region": "us-east-1", "account_id": ADMIN}
             for name in ("web-1", "app-1")}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"children": {"compromised": {"hosts": hosts}}}}))
    return lab.run_playbook(ISOLATE, extra_vars=dict({"isolate_evidence_dir": str(tmp_path / "evidence"),
                                                      "isolate_report_dir": str(tmp_path / "reports")}, **extra),
                            inventory=str(inventory), limit="compromised", expect_rc=(2,))


def refusal(run):
    """The failed task's message (the options are checked once, on the first host)."""
    return " | ".join(str(r.get("msg")) for hosts in run["tasks"].values() for r in hosts.values() if r.get("failed"))


def test_a_bad_incident_id_makes_no_change_at_all(demo, tmp_path):
    """Before: the snapshots and the instance tags were made with it, and only the report refused it."""
    for bad in ("INC 42", '"INC-42"', "../../etc"):
        mark = demo.mark()
        run = isolate_playbook(demo, tmp_path, {"incident_id": bad})
        assert writes(demo.journal(mark)) == [], bad
        assert f"incident_id {bad!r} is not a valid incident id" in refusal(run), (bad, refusal(run))
        assert run["rc"] == 2 and any(s["failures"] for s in run["stats"].values()), run["stats"]
        assert not (tmp_path / "evidence").exists() and not (tmp_path / "reports").exists()


def test_the_scan_playbook_refuses_a_bad_incident_id_before_any_call(demo, tmp_path):
    """scan has no option guards of its own: the place stage refuses the incident id, nothing placed."""
    hosts = {"web-1": {"instance_id": demo.instance("web-1")["id"], "region": "us-east-1", "account_id": ADMIN}}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"children": {"compromised": {"hosts": hosts}}}}))
    mark = demo.mark()
    run = demo.run_playbook(str(REPO / "playbooks/scan.yml"), inventory=str(inventory), limit="compromised",
                            extra_vars={"incident_id": "../../etc"}, expect_rc=(2,))
    assert demo.journal(mark) == []  # not even the preflight's GetCallerIdentity
    assert "incident_id '../../etc' is not a valid incident id" in refusal(run) and "nothing was changed" in refusal(run)


def test_isolate_refuses_public_examiner_access_and_bad_group_names_before_any_change(demo, tmp_path):
    cases = [({"isolate_network_allowed_access": [{"cidr": "0.0.0.0/1", "port": 22}, {"cidr": "128.0.0.0/1", "port": 22}],
               "isolate_network_allowed_access_acknowledge_public": True},
              "isolate_network_allowed_access[0]: cidr 0.0.0.0/1 is broader than /8"),
             ({"isolate_network_allowed_access": [{"cidr": "203.0.113.9/32", "port": 22}]},
              "isolate_network_allowed_access[0]: cidr 203.0.113.9/32 is not a private range"),
             ({"isolate_network_group_name": "sg-isolation"}, "isolate_network_group_name 'sg-isolation' starts with 'sg-'"),
             ({"isolate_scan_wait_timeout": -1}, "isolate_scan_wait_timeout is -1; it must be >= 0")]
    for extra, text in cases:
        mark = demo.mark()
        run = isolate_playbook(demo, tmp_path, dict(extra, incident_id="INC-GUARD"))
        assert writes(demo.journal(mark)) == [], extra
        assert text in refusal(run), (text, refusal(run))


def test_the_role_on_every_host_refuses_the_same_values_before_any_call(demo, tmp_path):
    """roles: [cloudsec.guardduty.isolate] checks the values once for the play (tasks/guards.yml), read from the
    variables vars/main.yml isolate_option_values names, as the playbook's leaders' check reads them."""
    playbook = tmp_path / "role.yml"
    playbook.write_text(json.dumps([{"hosts": "compromised", "gather_facts": False, "connection": "local",
                                     "roles": ["cloudsec.guardduty.isolate"]}]))
    hosts = {"web-1": {"instance_id": demo.instance("web-1")["id"], "region": "us-east-1", "account_id": ADMIN}}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"children": {"compromised": {"hosts": hosts}}}}))
    cases = [({"isolate_network_group_name": "sg-isolation"}, "isolate_network_group_name 'sg-isolation' starts with 'sg-'"),
             ({"isolate_network_max_concurrency": 0}, "isolate_network_max_concurrency is 0; it must be >= 1"),
             ({"isolate_network_allowed_access": [{"cidr": "203.0.113.9/32", "port": 22}]},
              "isolate_network_allowed_access[0]: cidr 203.0.113.9/32 is not a private range")]
    for extra, text in cases:
        mark = demo.mark()
        run = demo.run_playbook(str(playbook), extra_vars=dict(extra, incident_id="INC-GUARD"), inventory=str(inventory),
                                limit="compromised", expect_rc=(2,))
        assert demo.journal(mark) == [], extra  # not even the preflight's GetCallerIdentity
        assert text in refusal(run) and "nothing was changed" in refusal(run), (text, refusal(run))


def test_a_run_without_allowed_access_keeps_another_incidents_examiner_access(demo):
    """The isolation group is shared: incident A's examiner SSH stays when incident B isolates without it,
    unless B asks for exclusive rules."""
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    examiner = {"cidr": "10.99.0.10/32", "port": 22}
    run_cases(demo, [("A", MODULE, {"instance_ids": [web], "incident_id": "INC-A", "allowed_access": [examiner]})])
    mark = demo.mark()
    results = run_cases(demo, [("B", MODULE, {"instance_ids": [app], "incident_id": "INC-B"})])
    assert not results["B"].get("failed"), results["B"]
    # (the new group of app-1's other VPC loses its default egress; the examiner's rule is never revoked)
    assert [e for e in demo.journal(mark) if e["action"].startswith("RevokeSecurityGroup") and mentions(e, "10.99.0.10/32")] == []
    ec2 = demo.client("ec2")
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["guardduty-isolation"]}])["SecurityGroups"]
    kept = [r for g in group for p in g["IpPermissions"] for r in p.get("IpRanges", [])]
    assert [r["CidrIp"] for r in kept] == ["10.99.0.10/32"]
    results = run_cases(demo, [("B exclusive", MODULE, {"instance_ids": [app], "incident_id": "INC-B",
                                                        "allowed_access_exclusive": True})])
    assert not results["B exclusive"].get("failed"), results["B exclusive"]
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["guardduty-isolation"]}])["SecurityGroups"]
    assert [p for g in group for p in g["IpPermissions"]] == []


# -- limits: security group quota, rules per group ---------------------------------------------------
def test_group_quota_and_rule_limit_fail_before_any_eni_is_touched(demo):
    prod = regional(demo)["vpcs"]["prod"]
    web, bastion = demo.instance("web-1"), demo.instance("bastion-1")
    originals = eni_groups(demo, web["enis"] + bastion["enis"])
    # AWS's default quota is 2500 VPC security groups per region: the lab answers as AWS does once it is reached.
    demo.faults({"forced": [{"action": "CreateSecurityGroup", "resource": prod, "code": "SecurityGroupLimitExceeded",
                             "message": "You have exceeded the number of VPC security groups allowed per region.",
                             "count": 2}]})
    sixty_one = [{"cidr": f"10.99.{n // 250}.{n % 250}/32", "port": 22} for n in range(61)]
    mark = demo.mark()
    results = run_cases(demo, [
        ("quota", MODULE, {"instance_ids": [web["id"]]}),
        ("rules", MODULE, {"instance_ids": [bastion["id"]], "allowed_access": sixty_one}),
    ])
    entries = demo.journal(mark)
    quota, rules = message(results["quota"]), message(results["rules"])
    assert web["id"] in quota and f"containment groups of {prod} not ready" in quota
    assert "ec2:CreateSecurityGroup" in quota and "SecurityGroupLimitExceeded" in quota and "guardduty-isolation" in quota
    assert bastion["id"] in rules and "ec2:AuthorizeSecurityGroupIngress" in rules
    assert "RulesPerSecurityGroupLimitExceeded" in rules
    # No record written, no ENI moved, no instance marked: the groups were not ready.
    assert eni_groups(demo, list(originals)) == originals
    for eni_id, eni in describe_enis(demo, list(originals)).items():
        assert RECORD_TAG not in tags_of(eni), eni_id
    assert not [e for e in writes(entries) if e["action"] in ("ModifyNetworkInterfaceAttribute", "CreateTags")
                and e["outcome"] == "ok"]
    assert all("guardduty:isolation" not in t for t in instance_tags(demo, [web["id"], bastion["id"]]).values())


# -- release refuses what it cannot restore exactly -------------------------------------------------
def test_release_refuses_without_a_sound_record_and_changes_nothing(demo):
    app, web, bastion = demo.instance("app-1"), demo.instance("web-1"), demo.instance("bastion-1")
    healthy = demo.instance("healthy-1")
    originals = eni_groups(demo, app["enis"] + web["enis"] + bastion["enis"])
    demo.run_module(MODULE, {"instance_ids": [app["id"], web["id"], bastion["id"]]})
    ec2 = demo.client("ec2")
    # app-1: one of its three records damaged by hand; web-1: a record naming a group that does not exist (deleted
    # since), in the incident store and in the tag alike.
    ec2.create_tags(Resources=[app["enis"][1]], Tags=[{"Key": RECORD_TAG, "Value": "two"}])
    ec2.create_tags(Resources=[web["enis"][0]], Tags=[{"Key": RECORD_TAG, "Value": json.dumps(["sg-0000dead0000beef0"])}])
    stored = pathlib.Path(demo.incident_store) / "records" / ADMIN / "us-east-1" / f"{web['id']}.json"
    document = json.loads(stored.read_text())
    document["records"]["network"]["enis"][web["enis"][0]]["groups"] = ["sg-0000dead0000beef0"]
    stored.write_text(json.dumps(document))
    before = {i: eni_groups(demo, demo.instance(n)["enis"]) for i, n in ((app["id"], "app-1"), (web["id"], "web-1"))}
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [healthy["id"], app["id"], web["id"], bastion["id"]],
                                      "state": "released"}, expect_rc=(2,))
    entries = demo.journal(mark)
    by_id = {i: dict(r, error=(r.get("error") or {}).get("message")) for i, r in result["instances"].items()}
    assert f"{healthy['id']}: ReleaseInstance: no isolation record" in by_id[healthy["id"]]["error"]
    assert f"{app['enis'][1]}: tag {RECORD_TAG} is damaged" in by_id[app["id"]]["error"]
    assert web["enis"][0] in by_id[web["id"]]["error"] and "sg-0000dead0000beef0" in by_id[web["id"]]["error"]
    assert "InvalidGroup.NotFound" in by_id[web["id"]]["error"]
    assert untouched(entries, healthy["id"], *healthy["enis"])
    # Nothing of app-1 changed: no ENI restored while another cannot be, no record deleted, still isolated.
    assert untouched(entries, app["id"], *app["enis"]), [e for e in writes(entries) if mentions(e, app["enis"][0])]
    assert eni_groups(demo, app["enis"]) == before[app["id"]]
    assert instance_tags(demo, [app["id"]])[app["id"]]["guardduty:isolation"] == "isolated"
    # web-1: the refused move left the ENI isolated and its record in place.
    assert eni_groups(demo, web["enis"]) == before[web["id"]]
    assert RECORD_TAG in tags_of(describe_enis(demo, web["enis"])[web["enis"][0]])
    assert instance_tags(demo, [web["id"]])[web["id"]]["guardduty:isolation"] == "isolated"
    # The good one in the same batch is released exactly.
    assert by_id[bastion["id"]]["state"] == "released"
    assert eni_groups(demo, bastion["enis"]) == {e: originals[e] for e in bastion["enis"]}


# -- concurrent runs on the same instances ----------------------------------------------------------
def test_concurrent_runs_on_the_same_instances_keep_the_record(demo):
    names = ("web-1", "app-1")
    fleet = {demo.instance(n)["id"]: list(demo.instance(n)["enis"]) for n in names}
    originals = eni_groups(demo, [e for enis in fleet.values() for e in enis])
    outcomes = {}

    def run(incident):
        outcomes[incident] = demo.run_module(MODULE, {"instance_ids": list(fleet), "incident_id": incident},
                                             expect_rc=(0, 2))

    threads = [threading.Thread(target=run, args=(f"IR-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 3
    for incident, outcome in outcomes.items():
        # A run may lose a race (the other moved the ENI meanwhile); it then says so per ENI, naming the call.
        for instance_id, item in outcome["instances"].items():
            error = (item.get("error") or {}).get("message")
            assert error is None or instance_id in error or "eni-" in error, item
    incident = instance_tags(demo, fleet)[next(iter(fleet))]["guardduty:incident"]
    assert incident in outcomes
    # Whatever the interleaving: isolated, never on the conversion group, the record never overwritten
    # with a containment group; a rerun settles any run that lost a race.
    demo.run_module(MODULE, {"instance_ids": list(fleet), "incident_id": incident})
    assert_isolated(demo, fleet, originals, incident_id=incident)
    assert len(containment_groups(demo)) == 2


# -- missing permission, for each action the module uses ---------------------------------------------
ACTIONS = ["DescribeInstances", "DescribeNetworkInterfaces", "DescribeSecurityGroups", "DescribeVpcs",
           "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
           "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress", "CreateTags", "ModifyNetworkInterfaceAttribute",
           "DeleteTags"]


def policy_without(policy, action):
    narrowed = copy.deepcopy(policy)
    statements = []
    for statement in narrowed["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions = [a for a in actions if a != f"ec2:{action}"]
        if actions:
            statements.append(dict(statement, Action=actions))
    narrowed["Statement"] = statements
    return narrowed


def test_missing_permission_for_each_action_names_it_and_half_changes_nothing(demo):
    """One VPC and instance per action, a user holding docs/iam/ec2_isolation.json minus that action."""
    ec2, iam = demo.client("ec2"), demo.client("iam")
    policy = json.loads((REPO / "docs/iam/ec2_isolation.json").read_text())
    cases = {}
    for index, action in enumerate(ACTIONS):
        vpc = ec2.create_vpc(CidrBlock=f"10.{120 + index}.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{120 + index}.1.0/24",
                                   AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet,
                                     SecurityGroupIds=[group])["Instances"][0]
        user = f"no-{action.lower()}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy_without(policy, action)))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        cases[action] = {"vpc": vpc, "group": group, "id": instance["InstanceId"],
                         "eni": instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
                         "creds": {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}}
    # Revoking ingress is needed only when the isolation group holds a stray rule: someone added one by hand.
    stray = cases["RevokeSecurityGroupIngress"]
    for name, role in (("guardduty-isolation", "isolation"), ("guardduty-isolation-conversion", "conversion")):
        group_id = ec2.create_security_group(GroupName=name, Description="x", VpcId=stray["vpc"], TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "guardduty:role", "Value": role}]}])["GroupId"]
        if role == "isolation":
            # a reference to another group is never examiner access: revoked (examiner CIDRs are kept)
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": stray["group"]}]}])
    tasks = []
    for action, case in cases.items():
        if action == "DeleteTags":  # only release deletes tags: isolate first with full rights (operator key)
            tasks.append(("isolate before release", MODULE, {"instance_ids": [case["id"]]}))
            tasks.append((action, MODULE, dict(case["creds"], instance_ids=[case["id"]], state="released")))
        else:
            tasks.append((action, MODULE, dict(case["creds"], instance_ids=[case["id"]])))
    demo.iam_enforcement(True)
    try:
        mark = demo.mark()
        results = run_cases(demo, tasks)
        entries = demo.journal(mark)
    finally:
        demo.iam_enforcement(False)
    groups = containment_groups(demo)
    for action, case in cases.items():
        text = message(results[action])
        assert results[action].get("failed"), (action, results[action])
        assert f"ec2:{action}" in text and "UnauthorizedOperation" in text and case["id"] in text, (action, text)
        # Tags given at creation need ec2:CreateTags too (as in EC2): without it, the refused call is the create.
        refused_calls = (action, "CreateSecurityGroup") if action == "CreateTags" else (action,)
        assert any(e["action"] in refused_calls and e["status"] == 403 and e["injected"] == "iam" for e in entries), action
        eni = describe_enis(demo, [case["eni"]])[case["eni"]]
        now, record = [g["GroupId"] for g in eni["Groups"]], recorded_groups(tags_of(eni))
        marked = instance_tags(demo, [case["id"]])[case["id"]].get("guardduty:isolation")
        vpc_groups = groups.get(case["vpc"], {})
        assert now != [vpc_groups.get("conversion")], (action, "left on the conversion group")
        if action == "DeleteTags":
            # The groups were restored; the record stays (so a rerun can finish) and the instance is not
            # claimed released.
            assert now == [case["group"]] and record == [case["group"]] and marked == "isolated", (action, now, marked)
        else:
            assert now == [case["group"]], (action, now)  # never moved
            assert marked is None, (action, marked)
            assert record in (None, [case["group"]]), (action, record)  # a record, if any, is the true one
