"""`make bench-slicing`: the isolate playbook as an AWX job template sliced into K jobs, on one machine.

AWX slice n of K (1-based) is the inventory's enabled hosts ordered by name, every K-th from the (n-1)-th
(ansible/awx, awx/main/models/inventory.py: get_script_data's `order_by('name')`, get_sliced_hosts's
`host_queryset[slice_number - 1::slice_count]`); each slice job is one ansible-playbook over an inventory
holding only its hosts, all with the same extra variables, started together when capacity allows.

Here: for K in --slices (default 1,2,4), the same lab (`generated:2N:2:2`, enis=3: N instances with 1-3 ENIs
over 2 accounts x 2 regions, as bench_isolate), reset before each K, the lab answering each call after an
AWS-like time (--latency-ms, default 80-200 ms); K ansible-playbook processes of playbooks/isolate.yml
(network containment only, as bench_isolate's playbook_latency) started at once, each with its slice's static
inventory, the same incident id and the same S3 incident store (what slices on several AWX nodes share).
Printed side by side: wall time (all K processes done), time to contain (to the last ENI moved, lab journal),
speed-up over K=1, controller CPU, ENIs not isolated. Written to .build/bench/slicing.json. A benchmark, not a
test: nothing asserts a timing.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import yaml

from tests.bench.bench_isolate import (LATENCY_MS, NETWORK_ONLY, OUR_GROUP, OUT_DIR, REPO, ansible_command, ansible_env,
                                       check_isolated, compromised, contained_seconds, run_processes)
from tests.lab.generator import ACCOUNTS
from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab
from tests.lab.scenario import RESPONDER_ROLE

OUT = OUT_DIR / "slicing.json"
BUCKET = "security-incidents"
STORE = f"s3://{BUCKET}/guardduty"


def awx_slice(host_names, slice_number, slice_count):
    """AWX's slice `slice_number` (1-based) of `slice_count`: the hosts ordered by name, every K-th from n-1.

    ansible/awx awx/main/models/inventory.py (commit e21dd0a): get_script_data orders the hosts with
    `order_by('name')`, get_sliced_hosts takes `host_queryset[offset::slice_count]`, `offset = slice_number - 1`,
    when slice_count > 1 (the database's collation orders names; for ASCII host names, code-point order).
    """
    ordered = sorted(host_names)
    if slice_count > 1 and slice_number > 0:
        return ordered[slice_number - 1::slice_count]
    return ordered


def slice_inventory(instances, names, path):
    """A slice's inventory as AWX hands it to ansible-playbook: the same group and host variables, its hosts only."""
    hosts = {}
    for name in names:
        inst = instances[name]
        hosts[name] = {"instance_id": inst["id"], "region": inst["region"], "account_id": inst["account"]}
        if inst["account"] != ACCOUNTS[0]:
            hosts[name]["responder_role_arn"] = f"arn:aws:iam::{inst['account']}:role/{RESPONDER_ROLE}"
    path.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": hosts}}}}))
    return path


def run_sliced(lab, scenario, enis, slices, latency_ms, tmp, logs, size):
    resources = lab.reset(scenario, enis=enis)
    lab.client("s3").create_bucket(Bucket=BUCKET)
    instances = compromised(resources)
    variables = dict(NETWORK_ONLY, incident_id=f"bench-sliced-{size}", isolate_incident_store=STORE)
    extra = tmp / "vars.json"
    extra.write_text(json.dumps(variables))
    commands = [ansible_command(REPO / "playbooks" / "isolate.yml",
                                slice_inventory(instances, awx_slice(instances, n, slices), tmp / f"slice-{n}.yml"), extra)
                for n in range(1, slices + 1)]
    lab.faults({"latency_ms": list(latency_ms), "seed": 1})
    mark = lab.mark()
    epoch_started = time.time()
    wall, rcs, cpu, _maxrss, tree_peak = run_processes(commands, ansible_env(lab), str(logs / f"slicing-k{slices}-{size}"))
    journal = lab.journal(since=mark)
    lab.faults({})
    moves = [e for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute" and e["status"] < 400]
    return {"slices": slices, "hosts_per_slice": [len(awx_slice(instances, n, slices)) for n in range(1, slices + 1)],
            "wall_seconds": round(wall, 3), "contained_seconds": contained_seconds(journal, epoch_started), "rc": rcs,
            "instances": len(instances), "enis": sum(len(i["enis"]) for i in instances.values()),
            "enis_not_isolated": len(check_isolated(lab, resources, OUR_GROUP)), "eni_moves": len(moves),
            "aws_calls": sum(1 for e in journal if e["status"] < 400),
            "controller": {"cpu_seconds": round(cpu, 2), "peak_tree_pss_mb": round(tree_peak / 2**20, 1)}}


def print_table(size, results):
    first = results[0]
    base = results[0] if results[0]["slices"] == 1 else None
    print(f"\n== N={size}: {first['instances']} instances, {first['enis']} ENIs, 2 accounts x 2 regions, "
          f"lab answer time {results[0].get('latency_ms')} ms; K slices = K ansible-playbook at once")
    print(f"   {'K':>2s} {'hosts/slice':>12s} {'wall s':>8s} {'speed-up':>8s} {'contained s':>11s} {'speed-up':>8s} "
          f"{'ENI moves':>9s} {'not isol.':>9s} {'cpu s':>7s} {'tree PSS MB':>11s}  rc")
    for r in results:
        up = f"{base['wall_seconds'] / r['wall_seconds']:8.2f}" if base else f"{'-':>8s}"
        cup = (f"{base['contained_seconds'] / r['contained_seconds']:8.2f}"
               if base and base.get("contained_seconds") and r.get("contained_seconds") else f"{'-':>8s}")
        contained = f"{r['contained_seconds']:11.2f}" if r.get("contained_seconds") is not None else f"{'-':>11s}"
        per = "/".join(str(n) for n in r["hosts_per_slice"])
        print(f"   {r['slices']:2d} {per:>12s} {r['wall_seconds']:8.2f} {up} {contained} {cup} {r['eni_moves']:9d} "
              f"{r['enis_not_isolated']:9d} {r['controller']['cpu_seconds']:7.1f} "
              f"{r['controller']['peak_tree_pss_mb']:11.1f}  {r['rc']}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_slicing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200, help="compromised instances (default 200)")
    parser.add_argument("--slices", default="1,2,4", help="slice counts K, comma separated (default 1,2,4)")
    parser.add_argument("--enis", type=int, default=3, help="instances get 1..ENIS network interfaces (default 3)")
    parser.add_argument("--latency-ms", default=",".join(map(str, LATENCY_MS)),
                        help="LOW,HIGH: the lab's AWS-like answer time per call (default %(default)s)")
    parser.add_argument("--out", default=str(OUT), help=f"the JSON written (default {OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    slice_counts = [int(k) for k in args.slices.split(",") if k.strip()]
    latency_ms = tuple(float(v) for v in args.latency_ms.split(","))
    out = pathlib.Path(args.out).resolve()
    logs = OUT_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    scenario = f"generated:{2 * args.size}:2:2"
    print(f"== lab starting; N={args.size}, K in {slice_counts}; logs in {logs.relative_to(REPO)}", flush=True)
    endpoint, proc = start_lab("empty")
    lab = LabClient(endpoint, proc)
    output = {"size": args.size, "scenario": scenario, "enis_max": args.enis, "latency_ms": list(latency_ms),
              "machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg(), "python": sys.version.split()[0]},
              "store": STORE, "results": []}
    try:
        for slices in slice_counts:
            with tempfile.TemporaryDirectory(prefix=f"bench-slicing-k{slices}-") as tmp:
                print(f"   K={slices}: resetting the lab and running {slices} slice(s) at once...", flush=True)
                result = run_sliced(lab, scenario, args.enis, slices, latency_ms, pathlib.Path(tmp), logs, args.size)
                result["latency_ms"] = list(latency_ms)
                output["results"].append(result)
                print(f"   K={slices}: {result['wall_seconds']:.2f}s, {result['enis_not_isolated']} ENIs not isolated, "
                      f"rc {result['rc']}", flush=True)
        print_table(args.size, output["results"])
        base = next((r for r in output["results"] if r["slices"] == 1), None)
        if base:
            output["speed_up_wall"] = {str(r["slices"]): round(base["wall_seconds"] / r["wall_seconds"], 2)
                                       for r in output["results"]}
        output["load_at_end"] = os.getloadavg()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(output, indent=2) + "\n")
        print(f"\n== written to {out}")
        return 0
    finally:
        stop_lab(proc)


if __name__ == "__main__":
    sys.exit(main())
