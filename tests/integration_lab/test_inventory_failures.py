"""An inventory that fails makes the run fail, naming the cause; it never ends green with nothing contained.

Ansible only warns about an inventory source it cannot parse, and a play then reports "no hosts matched" with
rc 0. Each case runs the isolate playbook as a user would (`-l compromised`) and asserts the exit code, the
message, and that the lab saw no write call.
"""

import pathlib
import subprocess
import sys

import boto3

from tests.lab.pytest_plugin import REPO

INVENTORY = """plugin: cloudsec.guardduty.guardduty
regions: [{regions}]
min_severity: 4
responder_role_arn: "arn:aws:iam::{{account_id}}:role/GuardDutyResponder"
hostnames: [tag:Name, instance-id]
"""
WRITES = ("ModifyNetworkInterfaceAttribute", "CreateSecurityGroup", "CreateTags", "CreateSnapshots")


def isolate(lab, inventory_path, env_changes=None, tmp=None):
    env = lab.env()
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    env["CLOUDSEC_GUARDDUTY_INCIDENT_STORE"] = str(tmp / "store")
    for key, value in (env_changes or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "playbooks/isolate.yml", "-i", str(inventory_path),
           "-l", "compromised", "-e", "incident_id=INC-7", "-e", f"isolate_report_dir={tmp / 'reports'}"]
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def writes_since(lab, mark):
    return [e for e in lab.journal(since=mark) if e["action"] in WRITES]


def test_inventory_file_not_named_guardduty_yml_still_loads(demo, tmp_path):
    path = tmp_path / "prod.yml"  # the plugin is named inside; the suffix is no longer required
    path.write_text(INVENTORY.format(regions="us-east-1"))
    rc, out = isolate(demo, path, tmp=tmp_path)
    assert rc == 0, out[-3000:]
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=demo.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    web_1 = demo.resources["instances"]["web-1"]["id"]
    groups = {g["GroupName"] for r in ec2.describe_instances(InstanceIds=[web_1])["Reservations"]
              for i in r["Instances"] for n in i["NetworkInterfaces"] for g in n["Groups"]}
    assert groups and all(name.startswith("guardduty-isolation") for name in groups), groups


def test_no_credentials_fail_the_run_by_name(demo, tmp_path):
    path = tmp_path / "prod.guardduty.yml"
    path.write_text(INVENTORY.format(regions="us-east-1"))
    mark = demo.mark()
    rc, out = isolate(demo, path, {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
                                   "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                                   "AWS_CONFIG_FILE": str(tmp_path / "none")}, tmp=tmp_path)
    assert rc != 0, out[-3000:]
    assert "the GuardDuty inventory did not load" in out and str(path) in out
    assert "cannot identify the current credentials" in out
    assert writes_since(demo, mark) == []


def test_misspelt_region_refused_by_name(demo, tmp_path):
    path = tmp_path / "prod.guardduty.yml"
    path.write_text(INVENTORY.format(regions="us-east-1, eu-west1"))
    mark = demo.mark()
    rc, out = isolate(demo, path, tmp=tmp_path)
    assert rc != 0, out[-3000:]
    assert "'eu-west1' is not an AWS region name" in out
    assert "the GuardDuty inventory did not load" in out
    assert demo.journal(since=mark) == []  # refused before any call


def test_inventory_without_findings_is_a_green_run(demo, tmp_path):
    # loaded, nothing compromised: rc 0 is right (a region where the lab has no finding)
    path = tmp_path / "prod.guardduty.yml"
    path.write_text(INVENTORY.format(regions="us-east-1").replace("min_severity: 4", "min_severity: 8.9"))
    mark = demo.mark()
    rc, out = isolate(demo, path, tmp=tmp_path)
    assert rc == 0, out[-3000:]
    assert "no hosts matched" in out
    assert writes_since(demo, mark) == []


def test_invalid_key_fails_the_run_naming_the_credentials(demo, tmp_path):
    # Under IAM enforcement the lab refuses an unknown access key as AWS does (InvalidClientTokenId on
    # sts:GetCallerIdentity): the run fails naming the credentials, not "the region is not enabled".
    path = tmp_path / "prod.guardduty.yml"
    path.write_text(INVENTORY.format(regions="us-east-1"))
    demo.iam_enforcement(True)
    mark = demo.mark()
    rc, out = isolate(demo, path, {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7INVALID", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
                                   "AWS_SESSION_TOKEN": None}, tmp=tmp_path)
    assert rc != 0, out[-3000:]
    assert "cannot identify the current credentials" in out and "InvalidClientTokenId" in out, out[-3000:]
    assert "region is not enabled" not in out
    assert writes_since(demo, mark) == []
