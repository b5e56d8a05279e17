"""`make demo`: the lab with the demo incident, and what the GuardDuty inventory makes of it.

Starts the lab (demo scenario) on a free port, runs
`ansible-inventory -i docs/examples/lab.guardduty.yml --graph`, then prints one line per host
(instance, account, region, highest severity, finding types), and stops the lab.
Exits non-zero if any step fails.
"""

import json
import os
import pathlib
import subprocess
import sys

from tests.lab.pytest_plugin import start_lab
from tests.lab.scenario import LAB_CREDENTIALS

REPO = pathlib.Path(__file__).resolve().parents[2]
INVENTORY = "docs/examples/lab.guardduty.yml"


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
        return 0
    except Exception as exc:  # the demo's whole point is a readable outcome
        print(f"DEMO FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("== lab stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
