"""`make demo`: the lab with the demo incident, the GuardDuty inventory's view of it, and its containment.

Starts the lab (demo scenario) on a free port, runs
`ansible-inventory -i docs/examples/lab.guardduty.yml --graph`, prints one line per host (instance,
account, region, highest severity, finding types), runs
`ansible-playbook cloudsec.guardduty.isolate -i docs/examples/lab.guardduty.yml -l compromised`
(report and evidence under .build/demo/), prints the report's summary, then proves the isolation by
reading back every network interface of every host and its security groups, and stops the lab.
Exits non-zero if any step fails or any interface is not on the isolation group only.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import boto3

from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab
from tests.lab.scenario import LAB_CREDENTIALS

REPO = pathlib.Path(__file__).resolve().parents[2]
INVENTORY = "docs/examples/lab.guardduty.yml"
DEMO_DIR = REPO / ".build" / "demo"


def lab_env(endpoint):
    env = dict(os.environ)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env.update({"AWS_URL": endpoint, "AWS_ACCESS_KEY_ID": LAB_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": LAB_CREDENTIALS["aws_secret_access_key"], "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true", "ANSIBLE_NOCOLOR": "1"})
    return env


def ansible_inventory(env, *args):
    cmd = [str(pathlib.Path(sys.executable).parent / "ansible-inventory"), "-i", INVENTORY, *args]
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def unwrap(value):
    # --list marks untrusted (AWS-supplied) strings as {"__ansible_unsafe": ...}
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def summary(hostvars):
    rows = [("HOST", "INSTANCE", "ACCOUNT", "REGION", "SEVERITY", "FINDING TYPES")]
    for host in sorted(hostvars, key=lambda h: (-hostvars[h]["guardduty_max_severity"], h)):
        v = hostvars[host]
        rows.append((host, v["instance_id"], v["account_id"], v["region"],
                     f"{v['guardduty_max_severity']:.1f} {v['guardduty_severity_label']}",
                     ", ".join(v["guardduty_finding_types"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def isolate(env):
    """Run the isolate playbook (FQCN form) against the lab, its output streamed; raise if it fails."""
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    incident = "demo-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "cloudsec.guardduty.isolate",
           "-i", INVENTORY, "-l", "compromised", "-e", f"incident_id={incident}",
           "-e", f"isolate_evidence_dir={DEMO_DIR / 'evidence'}", "-e", f"isolate_report_dir={DEMO_DIR / 'reports'}"]
    print(f"== ansible-playbook {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, check=False, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the isolate playbook failed (rc={proc.returncode})")
    print(f"== evidence and report under {DEMO_DIR}", flush=True)


def prove_isolation(endpoint, hostvars):
    """Read back each host's network interfaces and their groups from the lab; True if all are isolated."""
    print("== the isolation, read back from the lab (DescribeNetworkInterfaces)")
    creds = {"aws_access_key_id": LAB_CREDENTIALS["aws_access_key_id"],
             "aws_secret_access_key": LAB_CREDENTIALS["aws_secret_access_key"]}
    sessions = {}
    isolated = True
    for host in sorted(hostvars):
        v = hostvars[host]
        key = (v["account_id"], v["region"])
        if key not in sessions:
            role = v.get("responder_role_arn")
            account_creds = dict(creds)
            if role:
                sts = boto3.client("sts", region_name=v["region"], endpoint_url=endpoint, **creds)
                c = sts.assume_role(RoleArn=role, RoleSessionName="guardduty-demo")["Credentials"]
                account_creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                                 "aws_session_token": c["SessionToken"]}
            sessions[key] = boto3.client("ec2", region_name=v["region"], endpoint_url=endpoint, **account_creds)
        nics = sessions[key].describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [v["instance_id"]]}])["NetworkInterfaces"]
        for nic in sorted(nics, key=lambda n: n["Attachment"]["DeviceIndex"]):
            names = [g["GroupName"] for g in nic["Groups"]]
            ok = names == ["guardduty-isolation"]
            isolated = isolated and ok
            groups = ", ".join(f"{g['GroupId']} ({g['GroupName']})" for g in nic["Groups"])
            print(f"{'ISOLATED ' if ok else 'NOT ISOLATED '} {host:<10} {v['instance_id']}  {nic['NetworkInterfaceId']}  "
                  f"{nic['VpcId']}  {groups}")
    print("== every network interface is on its VPC's isolation group only" if isolated
          else "DEMO FAILED: some network interfaces are not isolated", flush=True)
    return isolated


def open_attacker_flows(endpoint, hostvars):
    """A C&C connection out of every ENI of each compromised instance, in the lab's flow table (tracked by
    EC2's rules: the groups let nothing in from everywhere)."""
    lab = LabClient(endpoint)
    lab.resources = lab._call("GET", "/_lab/scenario")["resources"]
    ids = {v.get("instance_id") for v in hostvars.values()}
    flows = []
    for name, inst in lab.resources["instances"].items():
        if inst["id"] in ids:
            for index in range(len(inst["enis"])):
                try:
                    flows.append(lab.open_flow(name, index, name=name, direction="outbound", protocol="tcp",
                                               port=443, remote="203.0.113.77"))
                except RuntimeError:  # an ENI whose groups let nothing out
                    pass
    tracked = sum(f["tracked"] for f in flows)
    print(f"== connection tracking: {len(flows)} established C&C flows before isolation, {tracked} tracked "
          "(a plain swap to a group with no rules would leave those open for 5 days idle)", flush=True)
    return lab, {f["eni"] for f in flows}


def prove_flows_cut(lab, enis):
    live = [f for f in lab.flows() if f["eni"] in enis]
    print(f"== connection tracking: {len(live)} established flows after isolation (the conversion step "
          "untracked them, the isolation group cut them)", flush=True)
    return not live


def main():
    print("== starting the lab (scenario: demo)", flush=True)
    endpoint, proc = start_lab("demo")
    try:
        env = lab_env(endpoint)
        print(f"== lab at {endpoint}\n== ansible-inventory -i {INVENTORY} --graph", flush=True)
        graph = ansible_inventory(env, "--graph")
        sys.stderr.write(graph.stderr)
        print(graph.stdout, flush=True)
        listed = unwrap(json.loads(ansible_inventory(env, "--list").stdout))
        hostvars = listed.get("_meta", {}).get("hostvars", {})
        if not hostvars:
            raise RuntimeError("the inventory has no hosts: the demo incident should give four")
        print(f"== {len(hostvars)} potentially compromised instance(s)")
        print(summary(hostvars), flush=True)
        lab, enis = open_attacker_flows(endpoint, hostvars)
        isolate(env)
        isolated = prove_isolation(endpoint, hostvars)
        return 0 if prove_flows_cut(lab, enis) and isolated else 1
    except Exception as exc:  # the demo's whole point is a readable outcome
        print(f"DEMO FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_lab(proc)
        print("== lab stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
