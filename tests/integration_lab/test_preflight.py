"""The run's preflight (batch_stage stage=preflight, one cloudsec.guardduty.sts_responder_sessions process): each
responder role assumed once, each batch's credentials proven with sts:GetCallerIdentity in its region, and nothing
else read; an instance whose credentials are another account's leaves the run, its host failing by name."""

import pathlib

import yaml

from tests.integration_lab.playbook_results import responder_sessions, writes

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::{account}:role/GuardDutyResponder"
MEMBER = "111122223333"
NETWORK_ONLY = {"isolate_protection": False, "isolate_snapshots": False, "isolate_evidence": False, "isolate_detach": False,
                "isolate_public_ip": False, "isolate_credentials": False, "isolate_scan": False, "isolate_triage": False,
                "isolate_report": False}


def inventory(lab, path, hosts, account_of=None):
    """A static inventory of the lab's instances; `account_of` overrides the account a host claims."""
    entries = {}
    for name in hosts:
        instance = lab.instance(name)
        account = (account_of or {}).get(name, instance["account"])
        entries[name] = {"instance_id": instance["id"], "region": instance["region"], "account_id": account}
        if instance["account"] == MEMBER:
            entries[name]["responder_role_arn"] = ROLE.format(account=MEMBER)
    path.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": entries}}}}))
    return str(path)


def test_each_role_is_assumed_once_and_each_batch_proven_by_its_caller_identity_alone(lab, tmp_path):
    lab.reset("demo")
    hosts = ["web-1", "api-1", "worker-1", "worker-2", "idle-1"]  # 4 batches: 2 accounts x 2 regions, one role
    mark = lab.mark()
    run = lab.run_playbook(str(REPO / "playbooks/isolate.yml"), inventory=inventory(lab, tmp_path / "hosts.yml", hosts),
                           check=True, extra_vars=dict(NETWORK_ONLY, incident_id="INC-PREFLIGHT"))
    journal = lab.journal(mark)
    sessions = responder_sessions(journal)
    assert [s["params"].get("RoleArn") for s in sessions] == [ROLE.format(account=MEMBER)]
    assert sessions[0]["params"].get("RoleSessionName") == "cloudsec-guardduty-INC-PREFLIGHT"
    proven = sorted((e["account"], e["region"]) for e in journal if e["action"] == "GetCallerIdentity")
    assert proven == sorted({(lab.instance(h)["account"], lab.instance(h)["region"]) for h in hosts})
    assert not [e for e in journal if e["service"] == "iam"]  # no ListAccountAliases (aws_caller_info read it)
    assert writes(journal) == []  # check mode
    assert all(s["failures"] == 0 for s in run["stats"].values()), run["stats"]


def test_an_instance_claimed_by_another_account_than_its_credentials_fails_by_name_and_is_left_alone(lab, tmp_path):
    lab.reset("demo")
    wrong = "999999999999"
    mark = lab.mark()
    run = lab.run_playbook(str(REPO / "playbooks/isolate.yml"), expect_rc=(2,),
                           inventory=inventory(lab, tmp_path / "hosts.yml", ["web-1", "app-1"], account_of={"web-1": wrong}),
                           extra_vars=dict(NETWORK_ONLY, incident_id="INC-PREFLIGHT"))
    assert run["stats"]["web-1"]["failures"] == 1 and run["stats"]["app-1"]["failures"] == 0, run["stats"]
    outcome = [r for task, results in run["tasks"].items() if task.endswith("fail the instances whose stage failed")
               for host, r in results.items() if host == "web-1"][0]
    assert outcome["msg"] == (f"web-1 ({lab.instance('web-1')['id']}): preflight failed: the credentials are account "
                              f"123456789012's, the instance is in account {wrong}"), outcome["msg"]
    moved = {e["params"].get("NetworkInterfaceId") for e in lab.journal(mark) if e["action"] == "ModifyNetworkInterfaceAttribute"}
    web, app = (lab.client("ec2").describe_instances(InstanceIds=[lab.instance(h)["id"]])["Reservations"][0]["Instances"][0]
                for h in ("web-1", "app-1"))
    assert not {eni["NetworkInterfaceId"] for eni in web["NetworkInterfaces"]} & moved  # web-1 left alone
    assert {eni["NetworkInterfaceId"] for eni in app["NetworkInterfaces"]} <= moved  # app-1 contained


def test_a_run_outliving_its_responder_session_assumes_the_role_again_before_a_stage(lab, tmp_path):
    """A session that ends within 15 minutes of a stage (here the shortest AWS allows, 900 s) is assumed again
    before that stage, and the stage works with the new one; a one-hour session is assumed once (the test above)."""
    lab.reset("demo")
    hosts = ["worker-1", "worker-2", "web-1"]  # worker-*: the member account, through its role
    mark = lab.mark()
    run = lab.run_playbook(str(REPO / "playbooks/isolate.yml"), inventory=inventory(lab, tmp_path / "hosts.yml", hosts),
                           extra_vars=dict(NETWORK_ONLY, incident_id="INC-RENEW", batches_session_duration=900))
    assert all(s["failures"] == 0 for s in run["stats"].values()), run["stats"]
    journal = lab.journal(mark)
    sessions = responder_sessions(journal)
    assert [s["params"].get("RoleArn") for s in sessions] == [ROLE.format(account=MEMBER)] * len(sessions)
    assert len(sessions) >= 2 and all(s["params"].get("DurationSeconds") == "900" for s in sessions)
    moved = [e for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute" and e["account"] == MEMBER]
    assert moved and moved[0]["seq"] > sessions[1]["seq"]  # the member's containment ran on the renewed session
    assert all(e["status"] < 400 for e in moved)


def test_a_role_that_cannot_be_assumed_again_keeps_its_session_and_says_so(lab, tmp_path):
    """Renewal refused (the lab answers AccessDenied to every AssumeRole after the preflight's): the stages go on
    with the session the preflight got, which still lasts, and each renewal that failed is a warning naming the role."""
    lab.reset("demo", faults={"forced": [{"action": "AssumeRole", "code": "AccessDenied", "status": 403, "skip": 1,
                                          "message": "User is not authorized to perform: sts:AssumeRole"}]})
    hosts = ["worker-1", "worker-2"]
    run = lab.run_playbook(str(REPO / "playbooks/isolate.yml"), inventory=inventory(lab, tmp_path / "hosts.yml", hosts),
                           extra_vars=dict(NETWORK_ONLY, incident_id="INC-RENEW", batches_session_duration=900))
    lab.faults({})
    assert all(s["failures"] == 0 for s in run["stats"].values()), run["stats"]
    warnings = [w for results in run["tasks"].values() for r in results.values() for w in r.get("warnings") or []]
    role = ROLE.format(account=MEMBER)
    assert any(w.startswith(f"{role}: the session ends at ") and "could not be assumed again" in w
               and "AccessDenied" in w for w in warnings), warnings


def test_the_preflight_runs_in_the_controllers_process_not_a_module_process(lab, tmp_path):
    """On the controller, batch_stage makes the preflight's STS calls itself (plugin_utils/controller_module.py), with
    the options and environment the sts_responder_sessions module would read: with no interpreter able to run a module,
    the roles are still assumed and the batches proven, and then no module stage reaches AWS."""
    lab.reset("demo")
    hosts = ["web-1", "worker-1"]  # the administrator's account and the member's, through its role
    mark = lab.mark()
    run = lab.run_playbook(str(REPO / "playbooks/isolate.yml"), inventory=inventory(lab, tmp_path / "hosts.yml", hosts),
                           expect_rc=(2,), extra_vars=dict(NETWORK_ONLY, incident_id="INC-PREFLIGHT",
                                                           ansible_python_interpreter="/bin/false"))
    journal = lab.journal(mark)
    assert [s["params"].get("RoleArn") for s in responder_sessions(journal)] == [ROLE.format(account=MEMBER)]
    proven = sorted((e["account"], e["region"]) for e in journal if e["action"] == "GetCallerIdentity")
    assert proven == sorted({(lab.instance(h)["account"], lab.instance(h)["region"]) for h in hosts})
    assert not [e for e in journal if e["service"] == "ec2"]  # every module process failed to start
    assert all(run["stats"][h]["failures"] == 1 for h in hosts), run["stats"]


def test_the_module_a_remote_connection_runs_makes_the_same_calls_and_answers(lab):
    """With a remote connection batch_stage runs cloudsec.guardduty.sts_responder_sessions itself: one AssumeRole per
    role and one GetCallerIdentity per batch, a role it cannot assume named in role_errors, nothing else."""
    lab.reset("demo")
    member_role, wrong_role = ROLE.format(account=MEMBER), "arn:aws:iam::111122223333:role/NotThere"
    mark = lab.mark()
    run = lab.run_playbook(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: sessions
      cloudsec.guardduty.sts_responder_sessions:
        session_name: cloudsec-guardduty-INC-MODULE
        roles: [{{role_arn: "{member_role}", region: us-east-1}}, {{role_arn: "{wrong_role}", region: us-east-1}}]
        batches:
          - {{key: "0", region: us-east-1, role_arn: "{member_role}"}}
          - {{key: "1", region: eu-west-1}}
          - {{key: "2", region: us-east-1, role_arn: "{wrong_role}"}}
""")
    result = run["tasks"]["sessions"]["localhost"]
    journal = lab.journal(mark)
    assert sorted(s["params"].get("RoleArn") for s in responder_sessions(journal)) == sorted([member_role, wrong_role])
    assert set(result["credentials"]) == {member_role} and set(result["role_errors"]) == {wrong_role}
    assert [(i["key"], i["account"]) for i in result["identities"]] == [("0", MEMBER), ("1", "123456789012"), ("2", None)]
    assert result["identities"][2]["msg"].startswith(f"cannot assume {wrong_role}")
    assert sorted((e["account"], e["region"]) for e in journal if e["action"] == "GetCallerIdentity") == sorted([
        ("123456789012", "eu-west-1"), (MEMBER, "us-east-1")])
    assert {e["service"] for e in journal} == {"sts"}
