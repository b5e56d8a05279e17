"""`make bench-inventory`: cloudsec.guardduty.guardduty beside amazon.aws.aws_ec2 on the same lab, same run.

A generated lab scenario (default 10,000 findings over 2 accounts x 4 regions, two findings per
compromised instance, see tests/lab/generator.py) is listed by:
- our plugin, defaults (instances checked with DescribeInstances), current credentials: the GuardDuty
  administrator sees its member's findings; and again with `check_instances: false`;
- amazon.aws.aws_ec2, which takes one role per source: one source for the administrator account and one
  assuming GuardDutyResponder in the member account, filtered on the compromised instances' tag, so both
  list the same instances (checked: the run fails if the sets differ).
Each is timed with `ansible-inventory --list` (wall time, process start included for both), alternately,
ROUNDS times; medians and their ratio are printed and written to .build/bench/inventory.json, with the
AWS calls each made (from the lab journal). A benchmark, not a test: nothing asserts a timing.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

from tests.lab.generator import ACCOUNTS, REGIONS
from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab
from tests.lab.scenario import LAB_CREDENTIALS, RESPONDER_ROLE

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT = REPO / ".build" / "bench" / "inventory.json"


def configs(tmp, accounts, regions):
    regions_yaml = "[" + ", ".join(regions) + "]"
    ours = tmp / "bench.guardduty.yml"
    ours.write_text(f"plugin: cloudsec.guardduty.guardduty\nregion: us-east-1\nregions: {regions_yaml}\n")
    unchecked = tmp / "bench-unchecked.guardduty.yml"
    unchecked.write_text(ours.read_text() + "check_instances: false\n")
    theirs = []
    for account in accounts:
        path = tmp / f"bench-{account}.aws_ec2.yml"
        text = (f"plugin: amazon.aws.aws_ec2\nregion: us-east-1\nregions: {regions_yaml}\n"
                "filters:\n  tag:Service: web\nhostnames: [instance-id]\n")
        if account != ACCOUNTS[0]:
            text += f"assume_role_arn: arn:aws:iam::{account}:role/{RESPONDER_ROLE}\n"
        path.write_text(text)
        theirs.append(path)
    return [ours], [unchecked], theirs


def run(env, sources):
    cmd = [str(pathlib.Path(sys.executable).parent / "ansible-inventory"), "--list"]
    for source in sources:
        cmd += ["-i", str(source)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or "Failed to parse" in proc.stderr:
        raise RuntimeError(f"ansible-inventory {' '.join(map(str, sources))} failed:\n{proc.stderr[-4000:]}")
    data = json.loads(proc.stdout)
    hosts = set(data.get("_meta", {}).get("hostvars", {}))
    return elapsed, hosts, proc.stderr


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_inventory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=10000)
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    scenario = f"generated:{args.findings}:{args.accounts}:{args.regions}"
    print(f"== lab: {scenario} (loading)", flush=True)
    started = time.perf_counter()
    endpoint, proc = start_lab(scenario)
    lab = LabClient(endpoint, proc)
    print(f"== lab ready at {endpoint} in {time.perf_counter() - started:.1f}s", flush=True)
    try:
        env = dict(os.environ)
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(key, None)
        env.update({"AWS_URL": endpoint, "AWS_ACCESS_KEY_ID": LAB_CREDENTIALS["aws_access_key_id"],
                    "AWS_SECRET_ACCESS_KEY": LAB_CREDENTIALS["aws_secret_access_key"], "AWS_REGION": "us-east-1",
                    "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"})
        with tempfile.TemporaryDirectory() as tmp:
            ours, unchecked, theirs = configs(pathlib.Path(tmp), ACCOUNTS[:args.accounts], REGIONS[:args.regions])
            contenders = (("guardduty", ours), ("guardduty_unchecked", unchecked), ("aws_ec2", theirs))
            times = {name: [] for name, _command in contenders}
            calls = {}
            hosts = {}
            for round_index in range(args.rounds):
                for name, sources in contenders:
                    mark = lab.mark()
                    elapsed, found, stderr = run(env, sources)
                    times[name].append(elapsed)
                    hosts[name] = found
                    if round_index == 0:
                        journal = lab.journal(since=mark)
                        calls[name] = dict(Counter(f"{e['service']}:{e['action']}" for e in journal))
                        sys.stderr.write(stderr)
                    print(f"   round {round_index + 1}: {name:19s} {elapsed:7.2f}s  {len(found)} hosts", flush=True)
        for name in ("guardduty", "guardduty_unchecked"):
            if hosts[name] != hosts["aws_ec2"]:
                raise RuntimeError(f"{name} and aws_ec2 listed different instances: {len(hosts[name] - hosts['aws_ec2'])} "
                                   f"only ours, {len(hosts['aws_ec2'] - hosts[name])} only aws_ec2")
        medians = {name: statistics.median(values) for name, values in times.items()}
        result = {
            "scenario": scenario,
            "findings": args.findings,
            "hosts": len(hosts["guardduty"]),
            "rounds": args.rounds,
            "seconds": {name: [round(v, 3) for v in values] for name, values in times.items()},
            "median_seconds": {name: round(v, 3) for name, v in medians.items()},
            "ratio_aws_ec2_over_guardduty": round(medians["aws_ec2"] / medians["guardduty"], 3),
            "ratio_aws_ec2_over_guardduty_unchecked": round(medians["aws_ec2"] / medians["guardduty_unchecked"], 3),
            "aws_calls": calls,
            "note": "wall time of `ansible-inventory --list`, process start included; aws_ec2 lists instances only, "
                    "ours lists findings, gets them 50 at a time and checks the instances still exist",
        }
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"== {result['hosts']} hosts from {args.findings} findings; median guardduty "
              f"{medians['guardduty']:.2f}s (check_instances: false {medians['guardduty_unchecked']:.2f}s), "
              f"aws_ec2 {medians['aws_ec2']:.2f}s")
        print(f"== ratio aws_ec2 / guardduty = {result['ratio_aws_ec2_over_guardduty']:.2f} "
              f"(unchecked: {result['ratio_aws_ec2_over_guardduty_unchecked']:.2f}); above 1 means ours is faster")
        print(f"== AWS calls: {json.dumps(calls)}")
        print(f"== written to {OUT.relative_to(REPO)}")
        return 0
    finally:
        stop_lab(proc)


if __name__ == "__main__":
    sys.exit(main())
