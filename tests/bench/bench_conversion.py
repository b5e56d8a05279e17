"""`make bench-conversion`: how long each ENI stays on the all-traffic conversion group, under faults.

Between its two moves an ENI is open to every port, in and out, IPv4 and IPv6: that window is the price of
cutting tracked connections. Measured from the lab's journal, per ENI: from the answered move onto the
conversion group to the answered move onto the isolation group (ModifyNetworkInterfaceAttribute).

Lab: `generated:2N:A:R` with `enis=3` (N instances tagged Service=web with 1-3 ENIs, A accounts x R
regions), the same as bench_isolate. Our module runs once per account/region batch, the batches in
parallel (tests/bench/playbooks/module_isolate.yml), with the lab injecting 10% throttling and 2% 5xx on
every call (`--throttle-rate`, `--error-rate`), and again with AWS-like answer times added (80-200 ms,
`--latency-ms`; `--no-latency` skips that run).

Printed per run: the ENIs' time on the conversion group (median, p99, max), the moves refused, and the
conversion calls that reached AWS while another ENI waited on the conversion group for its isolation move
(the module lets isolation moves go first: expected 0). Written to .build/bench/conversion.json. A
benchmark: it prints, it asserts nothing (the order is asserted by tests/integration_lab/test_conversion_exposure.py).
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

from tests.bench.bench_isolate import HERE, OUR_CONVERSION_GROUP, OUR_GROUP, REPO, ansible_command, ansible_env
from tests.bench.bench_isolate import check_isolated, compromised, module_inventory, run_processes, vpcs
from tests.integration_lab.reliability_lab import conversion_windows, conversions_while_isolation_waits, percentile
from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab

OUT = REPO / ".build" / "bench" / "conversion.json"


def our_groups(lab, resources):
    """(conversion group ids, isolation group ids) over every account/region."""
    conversion, isolation = set(), set()
    for (account, region), vpc_id in vpcs(resources).items():
        found = lab.client("ec2", account, region).describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [OUR_GROUP, OUR_CONVERSION_GROUP]}])["SecurityGroups"]
        for group in found:
            (conversion if group["GroupName"] == OUR_CONVERSION_GROUP else isolation).add(group["GroupId"])
    return conversion, isolation


def run(lab, scenario, enis, faults, tmp, logs, label):
    resources = lab.reset(scenario, enis=enis)
    inventory = tmp / "module.yml"
    module_inventory(lab, resources, inventory)
    extra = tmp / "vars.json"
    extra.write_text(json.dumps({"incident_id": "bench-conversion"}))
    lab.faults(faults)
    mark = lab.mark()
    wall, rcs, _cpu, _rss, _pss = run_processes([ansible_command(HERE / "playbooks" / "module_isolate.yml", inventory,
                                                                 extra)], ansible_env(lab), str(logs / label))
    journal = lab.journal(since=mark)
    counts = lab.faults().get("counts", {})
    lab.faults({})
    conversion, isolation = our_groups(lab, resources)
    windows = conversion_windows(journal, conversion, isolation)
    dwell = [closed - opened for opened, closed in windows.values() if closed is not None]
    moves = [e for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute"]
    return {
        "wall_seconds": round(wall, 2), "rc": rcs,
        "enis": sum(len(i["enis"]) for i in compromised(resources).values()),
        "enis_not_isolated": len(check_isolated(lab, resources, OUR_GROUP)),
        "enis_measured": len(dwell), "enis_never_moved_on": sum(1 for _o, c in windows.values() if c is None),
        "conversion_seconds": {
            "median": round(statistics.median(dwell), 3) if dwell else None,
            "p99": round(percentile(dwell, 0.99), 3) if dwell else None,
            "max": round(max(dwell), 3) if dwell else None,
            "over_1s": sum(1 for d in dwell if d > 1.0),
        },
        "moves": len(moves), "moves_refused": sum(1 for e in moves if e["outcome"] != "ok"),
        "conversions_while_an_isolation_move_waits": len(conversions_while_isolation_waits(journal, conversion,
                                                                                           isolation)),
        "faults": dict(faults.items()), "fault_counts": counts,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_conversion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200", help="instance counts, comma separated (default 200)")
    parser.add_argument("--enis", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--regions", type=int, default=2)
    parser.add_argument("--throttle-rate", type=float, default=0.10)
    parser.add_argument("--error-rate", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", default="80,200", help="LOW,HIGH of the second run (default %(default)s)")
    parser.add_argument("--no-latency", action="store_true", help="skip the run with AWS-like answer times")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out).resolve()
    logs = out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    faults = {"throttle_rate": args.throttle_rate, "error_rate": args.error_rate, "seed": args.seed}
    runs = [("faults", faults)]
    if not args.no_latency:
        runs.append(("faults_latency", dict(faults, latency_ms=[float(v) for v in args.latency_ms.split(",")])))
    endpoint, proc = start_lab("empty")
    lab = LabClient(endpoint, proc)
    output = {"machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()}, "sizes": {},
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        print(f"{'N':>5s} {'run':15s} {'ENIs':>5s} {'median s':>9s} {'p99 s':>7s} {'max s':>7s} {'>1 s':>5s} "
              f"{'refused':>8s} {'conv. while isol. waits':>24s} {'not isol.':>9s} {'wall s':>7s}", flush=True)
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            scenario = f"generated:{2 * size}:{args.accounts}:{args.regions}"
            results = {}
            for label, config in runs:
                with tempfile.TemporaryDirectory(prefix="bench-conversion-") as tmp:
                    r = results[label] = run(lab, scenario, args.enis, config, pathlib.Path(tmp), logs,
                                             f"conversion-{label}-{size}")
                c = r["conversion_seconds"]
                print(f"{size:5d} {label:15s} {r['enis_measured']:5d} {c['median']:9.3f} {c['p99']:7.3f} {c['max']:7.3f} "
                      f"{c['over_1s']:5d} {r['moves_refused']:8d} {r['conversions_while_an_isolation_move_waits']:24d} "
                      f"{r['enis_not_isolated']:9d} {r['wall_seconds']:7.1f}", flush=True)
            output["sizes"][str(size)] = {"scenario": scenario, "runs": results}
            out.write_text(json.dumps(output, indent=2) + "\n")
        print(f"written to {out}")
        return 0
    finally:
        stop_lab(proc)


if __name__ == "__main__":
    sys.exit(main())
