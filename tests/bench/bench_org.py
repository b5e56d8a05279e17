"""`make bench-org`: an organization's worth of compromised instances, our inventory and isolate playbook
beside Cloud Custodian run as c7n-org runs it, on the same generated lab, in one run.

Lab: `generated:N:ACCOUNTS:REGIONS` with `unit=instances` (tests/lab/generator.py): N compromised instances
(default 5,000, each with two GuardDuty findings) over ACCOUNTS accounts (default 20: the GuardDuty
administrator and 19 members, each with its GuardDutyResponder role) x REGIONS regions (default 4), one VPC
per account and region, ENIS network interfaces per instance (default 1). Every contender runs from a freshly
reset lab with EC2's token buckets (per account and region, as "Request throttling for the Amazon EC2 API"
documents them: mutating 200 / 5 per s, non-mutating 100 / 20 per s; tests/lab/faults.py) and an AWS-like
answer time on every call (80-200 ms, uniform).

Contenders:
- ours: one `ansible-playbook playbooks/isolate.yml -i org.guardduty.yml`: the cloudsec.guardduty.guardduty
  inventory (administrator credentials: it lists the members' findings, then checks each member's instances
  through its responder role), then the isolate playbook with network containment only (as bench_isolate's
  playbook_network), forks from ansible.cfg (20) unless --forks;
- c7n: Cloud Custodian as c7n-org runs it: one `custodian run` per account, all at once, each over its
  regions, `--assume` the member's GuardDutyResponder role (tests/bench/c7n/isolate.yml, .build/bench-venv),
  the isolation group made in each VPC beforehand.

Measured:
- wall time (process start to exit; ours includes the inventory), beside the slowest bucket's floor: for
  each account and region, the EC2 calls answered in the run (lab journal), mutating / 5 per s and
  non-mutating / 20 per s; the floor is the busiest account/region's (the brief's floor: buckets empty at the
  start). The floor with the buckets' burst credited (max(0, (n - capacity) / refill)) is printed beside it;
- controller memory: the summed PSS of the whole process tree (ansible-playbook and its workers; the 20
  custodian trees together), from /proc/*/smaps_rollup every 0.5 s, the peak;
- failures: ENIs of the compromised instances not on exactly their VPC's isolation group afterwards, the
  hosts failed in the recap, the exit codes;
- Ansible's own cost (ours): a callback (tests/bench/callback_plugins/bench_timings.py) times every play and
  task: process start to the first play (Python, the inventory, the playbook's parsing), the place play
  and the outcome play (the per-host plays, where Ansible's per-host work is and no AWS call is made), the
  leaders' play (the AWS work), the recap. The per-host cost is the place and outcome plays' time, as a share
  of the wall time; the tasks that ran on every host are listed with their times.

Printed, and written to .build/bench/org.json. A benchmark, not a test: nothing asserts a timing.
`--instances 500 --accounts 4 --regions 2` is a development size.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

import yaml

from tests.bench.bench_isolate import (BENCH_VENV, NETWORK_ONLY, OUR_GROUP, THEIR_GROUP, baseline_collection, c7n_commands,
                                       check_isolated, compromised, create_their_groups, vpcs)
from tests.lab.faults import DEFAULT_BUCKETS, category
from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab

REPO = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
OUT = REPO / ".build" / "bench" / "org.json"
LATENCY_MS = (80, 200)
SAMPLE_SECONDS = 0.5
CONTENDERS = ("ours", "c7n", "ours_baseline")
DEFAULT_CONTENDERS = ("ours", "c7n")
BASELINE = {"ref": None}  # --baseline REF: ours_baseline runs the collection as it was at REF (bench_isolate.baseline_collection)
TARGETS = {"wall_over_floor": 1.2, "peak_tree_pss_mb": 1536, "per_host_share": 0.10}


# -- the controller's memory: summed PSS of process trees -----------------------------------------
def _children():
    children = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry))
    return children


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as smaps:
            for line in smaps:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss(roots):
    """(summed PSS in bytes, processes) of `roots` and all their descendants now."""
    children, total, count, todo = _children(), 0, 0, list(roots)
    while todo:
        pid = todo.pop()
        total += _pss_kib(pid) * 1024
        count += 1
        todo.extend(children.get(pid, ()))
    return total, count


class MemorySampler(threading.Thread):
    def __init__(self, pids, interval=SAMPLE_SECONDS):
        super().__init__(daemon=True)
        self.pids, self.interval, self.stop = pids, interval, threading.Event()
        self.peak, self.peak_processes, self.samples = 0, 0, 0

    def run(self):
        while not self.stop.wait(self.interval):
            total, count = tree_pss(self.pids)
            self.samples += 1
            if total > self.peak:
                self.peak, self.peak_processes = total, count


def process_cpu(pid):
    """User + system CPU seconds of one process so far (/proc/PID/stat), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_processes(commands, env, log_prefix, lab_pid=None):
    """Start every command at once, sample their trees' memory, wait for all. Returns {wall_seconds, rc,
    cpu_seconds (theirs), lab_cpu_seconds (the lab's meanwhile), peak_tree_pss_mb, processes_at_peak, started}."""
    lab_cpu = process_cpu(lab_pid) if lab_pid else 0.0
    started_epoch, started = time.time(), time.perf_counter()
    procs, logs = [], []
    for index, cmd in enumerate(commands):
        log = open(f"{log_prefix}{'-' + str(index) if len(commands) > 1 else ''}.log", "w", encoding="utf-8")
        logs.append(log)
        procs.append(subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT))
    sampler = MemorySampler([p.pid for p in procs])
    sampler.start()
    rcs, cpu = [], 0.0
    for proc in procs:
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        rcs.append(proc.returncode)
        cpu += usage.ru_utime + usage.ru_stime
    wall = time.perf_counter() - started
    lab_cpu = process_cpu(lab_pid) - lab_cpu if lab_pid else None
    sampler.stop.set()
    sampler.join()
    for log in logs:
        log.close()
    return {"wall_seconds": round(wall, 2), "rc": rcs, "cpu_seconds": round(cpu, 1),
            "lab_cpu_seconds": round(lab_cpu, 1) if lab_cpu is not None else None,
            "peak_tree_pss_mb": round(sampler.peak / 2**20, 1), "processes_at_peak": sampler.peak_processes,
            "memory_samples": sampler.samples, "started": started_epoch}


# -- journal arithmetic ---------------------------------------------------------------------------
def bucket_floor(journal):
    """The slowest EC2 bucket's floor for the calls answered: per account and region, mutating calls / their
    refill rate and non-mutating calls / theirs (buckets drain in parallel: the largest is the floor). The
    burst-credited floor counts the buckets' capacity as free (they start full, in the lab as on AWS)."""
    counts = defaultdict(Counter)
    for e in journal:
        if e["service"] == "ec2" and e["action"] and e["injected"] != "bucket" and e["status"] < 400:
            counts[(e["account"], e["region"])][category(e["action"])] += 1
    rows = []
    for (account, region), by_category in counts.items():
        sustained = {c: n / DEFAULT_BUCKETS[c][1] for c, n in by_category.items()}
        burst = {c: max(0.0, (n - DEFAULT_BUCKETS[c][0]) / DEFAULT_BUCKETS[c][1]) for c, n in by_category.items()}
        rows.append({"account_region": f"{account}/{region}", "mutating": by_category.get("mutating", 0),
                     "describe": by_category.get("describe", 0), "floor_seconds": round(max(sustained.values()), 2),
                     "burst_floor_seconds": round(max(burst.values()), 2)})
    if not rows:
        return {"floor_seconds": None, "burst_floor_seconds": None, "busiest": None, "by_account_region": []}
    rows.sort(key=lambda r: (r["floor_seconds"], r["mutating"]), reverse=True)
    return {"floor_seconds": rows[0]["floor_seconds"], "burst_floor_seconds": max(r["burst_floor_seconds"] for r in rows),
            "busiest": rows[0], "by_account_region": rows}


def calls_summary(journal, epoch_started):
    ok = [e for e in journal if e["status"] < 400]
    moves = [e["time"] for e in ok if e["action"] == "ModifyNetworkInterfaceAttribute"]
    return {
        "aws_calls": len(ok),
        "aws_errors": dict(Counter(f"{e['action']}:{e['outcome']}" for e in journal if e["status"] >= 400)),
        "calls_by_action": dict(sorted(Counter(f"{e['service']}:{e['action']}" for e in ok).items())),
        "aws_window_seconds": round(max(e["time"] for e in journal) - min(e["started"] for e in journal), 2) if journal else None,
        "first_call_seconds": round(min(e["started"] for e in journal) - epoch_started, 2) if journal else None,
        "contained_seconds": round(max(moves) - epoch_started, 2) if moves else None,
    }


# -- Ansible's own cost, from the bench_timings callback --------------------------------------------
def ansible_cost(timings, started, wall, hosts):
    """Where ours spends its wall time: start-up and inventory, each play, the recap; the per-host plays
    (place, outcome: Ansible's per-host work, no AWS call) as a share of the run."""
    plays = timings.get("plays") or []
    end = timings.get("stats_time") or (started + wall)
    spans = []
    for index, play in enumerate(plays):
        stop = plays[index + 1]["start"] if index + 1 < len(plays) else end
        every_host = [t for t in play["tasks"] if t["results"] >= hosts > 1]
        spans.append({"play": play["name"], "seconds": round(stop - play["start"], 2), "tasks": len(play["tasks"]),
                      "tasks_on_every_host": len(every_host),
                      "every_host_task_seconds": round(sum(t["end"] - t["start"] for t in every_host), 2),
                      "slowest_tasks": [{"task": t["name"], "seconds": round(t["end"] - t["start"], 2), "results": t["results"]}
                                        for t in sorted(play["tasks"], key=lambda t: t["end"] - t["start"], reverse=True)[:4]],
                      # every task in order, from the play's start: what lies between the tasks is Ansible's own walk
                      "timeline": [{"task": t["name"], "from": round(t["start"] - play["start"], 2),
                                    "seconds": round(t["end"] - t["start"], 2)} for t in play["tasks"]]})
    first_play = plays[0]["start"] if plays else end
    # the isolate playbook's first and last plays run on every host (place, outcome); the middle on leaders
    per_host = [s for i, s in enumerate(spans) if i in (0, len(spans) - 1)] if len(spans) >= 2 else spans
    per_host_seconds = sum(s["seconds"] for s in per_host)
    every_host_seconds = sum(s["every_host_task_seconds"] for s in spans)
    return {
        "startup_and_inventory_seconds": round(first_play - started, 2),
        "plays": spans,
        "recap_and_exit_seconds": round(started + wall - end, 2),
        "per_host_plays_seconds": round(per_host_seconds, 2),
        "per_host_share": round(per_host_seconds / wall, 3) if wall else None,
        "per_host_ms_per_host": round(1000 * per_host_seconds / hosts, 2) if hosts else None,
        "every_host_tasks_seconds": round(every_host_seconds, 2),
        "every_host_tasks_share": round(every_host_seconds / wall, 3) if wall else None,
        "recap": timings.get("stats", {}),
    }


# -- contenders -----------------------------------------------------------------------------------
def inventory_config(path, regions, concurrency):
    config = {"plugin": "cloudsec.guardduty.guardduty", "region": "us-east-1", "regions": list(regions)}
    if concurrency:
        config["max_concurrency"] = concurrency
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def run_ours(lab, resources, tmp, logs, args, tag, faults, baseline=None):
    inventory = tmp / "org.guardduty.yml"
    inventory_config(inventory, sorted({r for _a, r in vpcs(resources)}), args.inventory_concurrency)
    extra = tmp / "vars.json"
    extra.write_text(json.dumps(dict(NETWORK_ONLY, incident_id="bench-org", isolate_evidence_dir=str(tmp / "evidence"))))
    timings_file = tmp / "timings.json"
    env = lab.env()
    env.update({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", "ANSIBLE_DISPLAY_OK_HOSTS": "false",
                "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false", "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
                "ANSIBLE_CALLBACKS_ENABLED": "bench_timings", "BENCH_TIMINGS_FILE": str(timings_file),
                "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"})
    if args.forks:
        env["ANSIBLE_FORKS"] = str(args.forks)
    collection = REPO
    if baseline:  # (collections path, collection) of another tree: bench_isolate.baseline_collection
        collections_path, collection = baseline
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path)
    cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(collection / "playbooks" / "isolate.yml"),
           "-i", str(inventory), "-e", f"@{extra}"]
    if args.profile:  # where the controller's own CPU goes (the workers are not profiled); slows the run
        cmd = [sys.executable, "-m", "cProfile", "-o", args.profile] + cmd
    mark = lab.mark()
    lab.faults(faults)
    result = run_processes([cmd], env, str(logs / f"org-ours-{tag}"), lab.process.pid)
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    result["ansible"] = ansible_cost(timings, result["started"], result["wall_seconds"], len(compromised(resources)))
    result["forks"] = args.forks or 20
    return result, OUR_GROUP, mark


def run_c7n(lab, resources, tmp, logs, _args, tag, faults):
    made = create_their_groups(lab, resources)  # set-up, before the faults and the clock
    commands, env = c7n_commands(lab, tmp, set(vpcs(resources)))
    mark = lab.mark()
    lab.faults(faults)
    result = run_processes(commands, env, str(logs / f"org-c7n-{tag}"), lab.process.pid)
    result.update({"processes": len(commands), "isolation_groups_made": len(made)})
    return result, THEIR_GROUP, mark


def run_ours_baseline(lab, resources, tmp, logs, args, tag, faults):
    """ours with the collection as it was at --baseline REF: a change and the tree before it on one lab, interleaved."""
    if not BASELINE["ref"]:
        raise SystemExit("ours_baseline needs --baseline REF")
    return run_ours(lab, resources, tmp, logs, args, tag + "-baseline", faults, baseline_collection(BASELINE["ref"]))


RUNNERS = {"ours": run_ours, "c7n": run_c7n, "ours_baseline": run_ours_baseline}


def run_contender(name, lab, scenario, args, tmp, logs):
    started = time.perf_counter()
    resources = lab.reset(scenario, enis=args.enis, unit="instances")
    reset_seconds = time.perf_counter() - started
    tag = f"{args.instances}-{args.accounts}x{args.regions}"
    faults = {"token_buckets": True, "latency_ms": list(args.latency_ms), "seed": 1}
    try:
        result, group, mark = RUNNERS[name](lab, resources, tmp, logs, args, tag, faults)
        result["throttled_answers"] = lab.faults().get("counts", {}).get("bucket_throttled", 0)
    finally:
        lab.faults({})
    journal = lab.journal(since=mark)
    wrong = check_isolated(lab, resources, group)
    instances = compromised(resources)
    result.update(calls_summary(journal, result["started"]))
    result.update({"reset_seconds": round(reset_seconds, 1), "instances": len(instances),
                   "enis": sum(len(i["enis"]) for i in instances.values()), "enis_not_isolated": len(wrong),
                   "token_buckets": bucket_floor(journal)})
    floor_s = result["token_buckets"]["floor_seconds"]
    result["wall_over_floor"] = round(result["wall_seconds"] / floor_s, 3) if floor_s else None
    del result["started"]
    return result


# -- report ---------------------------------------------------------------------------------------
def _fmt(value, spec=".2f", none="-"):
    return none if value is None else format(value, spec)


def print_table(output):
    res = output["contenders"]
    print(f"\n== {output['scenario']} ({output['instances']} instances over {output['accounts']} accounts x "
          f"{output['regions']} regions), EC2 token buckets per account and region, answers held "
          f"{output['latency_ms'][0]:g}-{output['latency_ms'][1]:g} ms; load average at start "
          f"{output['machine']['load_at_start']}, at end {output['machine'].get('load_at_end')}")
    print(f"   {'contender':9s} {'wall s':>8s} {'floor s':>8s} {'wall/floor':>10s} {'burst floor':>11s} {'contained s':>11s} "
          f"{'calls':>7s} {'throttled':>9s} {'not isol.':>9s} {'failed':>6s} {'tree PSS MB':>11s} {'cpu s':>7s} {'lab cpu s':>9s}  rc")
    for name, r in res.items():
        tb = r["token_buckets"]
        failed = r.get("ansible", {}).get("recap", {}).get("failed_hosts", "-")
        print(f"   {name:9s} {r['wall_seconds']:8.2f} {_fmt(tb['floor_seconds']):>8s} {_fmt(r['wall_over_floor'], '.3f'):>10s} "
              f"{_fmt(tb['burst_floor_seconds']):>11s} {_fmt(r['contained_seconds']):>11s} {r['aws_calls']:7d} "
              f"{r['throttled_answers']:9d} {r['enis_not_isolated']:9d} {str(failed):>6s} {r['peak_tree_pss_mb']:11.1f} "
              f"{r['cpu_seconds']:7.1f} {_fmt(r['lab_cpu_seconds'], '.1f'):>9s}  {r['rc'] if len(r['rc']) < 4 else sorted(set(r['rc']))}")
    for name, r in res.items():
        busy = r["token_buckets"]["busiest"]
        if busy:
            print(f"   busiest bucket, {name}: {busy['account_region']}: {busy['mutating']} mutating (/5 per s), "
                  f"{busy['describe']} non-mutating (/20 per s)")
    for name, ours in res.items():
        if not (name.startswith("ours") and ours.get("ansible")):
            continue
        a = ours["ansible"]
        plays = ", ".join(f"{p['play']!r} {p['seconds']}s" for p in a["plays"])
        print(f"   {name}, where the time goes: start-up and inventory {a['startup_and_inventory_seconds']}s; {plays}; "
              f"recap and exit {a['recap_and_exit_seconds']}s")
        print(f"   {name}, Ansible's per-host cost (place + outcome plays): {a['per_host_plays_seconds']}s = "
              f"{_fmt(a['per_host_share'] and 100 * a['per_host_share'], '.1f')}% of the run, "
              f"{a['per_host_ms_per_host']} ms a host (forks {ours['forks']}); tasks on every host "
              f"{a['every_host_tasks_seconds']}s ({_fmt(a['every_host_tasks_share'] and 100 * a['every_host_tasks_share'], '.1f')}%)")
    if "ours" in res and "c7n" in res:
        print(f"   ratio ours / c7n wall = {output['ratios']['ours_over_c7n']} (below 1: ours faster)")
    print("   targets: ours wall/floor <= 1.2, controller tree PSS < 1536 MB, 0 ENIs not isolated, per-host share < 10%")


def round_medians(rounds):
    """Per contender, the median of its rounds' wall time and wall/floor; with ours_baseline, ours / ours_baseline per
    round (each pair ran back to back on the same lab) and its median."""
    if len(rounds) < 2:
        return {}
    names = list(rounds[0])
    medians = {n: {"wall_seconds": statistics.median(r[n]["wall_seconds"] for r in rounds),
                   "wall_over_floor": statistics.median(r[n]["wall_over_floor"] or 0 for r in rounds),
                   "rounds": [r[n]["wall_seconds"] for r in rounds]} for n in names}
    if "ours" in names and "ours_baseline" in names:
        ratios = [round(r["ours"]["wall_seconds"] / r["ours_baseline"]["wall_seconds"], 3) for r in rounds]
        medians["ours_over_ours_baseline"] = {"median": statistics.median(ratios), "rounds": ratios}
    return medians


def print_medians(output):
    medians = output.get("medians") or {}
    if not medians:
        return
    print(f"\n== medians of {len(output['rounds'])} interleaved rounds")
    for name, m in medians.items():
        if name == "ours_over_ours_baseline":
            print(f"   median ratio ours / ours_baseline ({output['baseline']}) = {m['median']} (rounds: "
                  f"{', '.join(map(str, m['rounds']))})")
        else:
            print(f"   {name:13s} wall {m['wall_seconds']:.2f} s, wall/floor {m['wall_over_floor']:.3f} (rounds: "
                  f"{', '.join(f'{w:.2f}' for w in m['rounds'])})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_org", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--enis", type=int, default=1, help="instances get 1..ENIS network interfaces (default 1)")
    parser.add_argument("--forks", type=int, default=None, help="ANSIBLE_FORKS for ours (default: ansible.cfg's, 20)")
    parser.add_argument("--inventory-concurrency", type=int, default=None,
                        help="the inventory's max_concurrency (default: the plugin's)")
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS),
                        help=f"comma separated, from {', '.join(CONTENDERS)} (default %(default)s)")
    parser.add_argument("--baseline", default=None, help="git ref whose collection ours_baseline runs")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the contenders this many times, interleaved; each round's results and the medians are written")
    parser.add_argument("--latency-ms", default=",".join(map(str, LATENCY_MS)), help="LOW,HIGH (default %(default)s)")
    parser.add_argument("--profile", default=None, help="write a cProfile of ours' controller process to this file")
    parser.add_argument("--out", default=str(OUT), help=f"the JSON written (default {OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    args.latency_ms = tuple(float(v) for v in args.latency_ms.split(","))
    BASELINE["ref"] = args.baseline
    contenders = [c for c in args.contenders.split(",") if c]
    if set(contenders) - set(CONTENDERS):
        parser.error(f"unknown contenders: {', '.join(sorted(set(contenders) - set(CONTENDERS)))}")
    if "c7n" in contenders and not (BENCH_VENV / "bin" / "custodian").exists():
        raise SystemExit(f"no {BENCH_VENV}/bin/custodian: `make bench-org` installs tests/bench/requirements-c7n.txt there")
    out = pathlib.Path(args.out).resolve()
    logs = out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    scenario = f"generated:{args.instances}:{args.accounts}:{args.regions}"
    output = {"scenario": scenario, "unit": "instances", "instances": args.instances, "accounts": args.accounts,
              "regions": args.regions, "enis_max": args.enis, "latency_ms": list(args.latency_ms),
              "token_buckets": DEFAULT_BUCKETS, "targets": TARGETS, "contenders": {},
              "machine": {"cpus": os.cpu_count(), "load_at_start": [round(v, 2) for v in os.getloadavg()],
                          "python": sys.version.split()[0]},
              "baseline": args.baseline,
              "command": "python -m tests.bench.bench_org " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(f"== lab starting: {scenario} (unit=instances, enis {args.enis}); contenders {', '.join(contenders)}; "
          f"logs in {logs}", flush=True)
    endpoint, proc = start_lab("empty")
    lab = LabClient(endpoint, proc)
    try:
        rounds = output["rounds"] = []
        for number in range(max(1, args.rounds)):
            rounds.append({})
            for name in contenders:
                with tempfile.TemporaryDirectory(prefix=f"bench-org-{name}-") as tmp:
                    print(f"   {name}: resetting the lab, then running...", flush=True)
                    r = rounds[number][name] = output["contenders"][name] = run_contender(name, lab, scenario, args,
                                                                                          pathlib.Path(tmp), logs)
                    print(f"   {name}: {r['wall_seconds']:.2f}s (floor {r['token_buckets']['floor_seconds']}s), "
                          f"{r['aws_calls']} calls, {r['enis_not_isolated']} ENIs not isolated, rc {sorted(set(r['rc']))}, "
                          f"tree PSS {r['peak_tree_pss_mb']} MB (reset {r['reset_seconds']}s)", flush=True)
                out.write_text(json.dumps(output, indent=2) + "\n")
        output["medians"] = round_medians(rounds)
        res = output["contenders"]
        output["ratios"] = {"ours_over_c7n": round(res["ours"]["wall_seconds"] / res["c7n"]["wall_seconds"], 3)
                            if "ours" in res and "c7n" in res else None}
        output["machine"]["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
        out.write_text(json.dumps(output, indent=2) + "\n")
        print_table(output)
        print_medians(output)
        print(f"\n== written to {out}")
        return 0
    finally:
        stop_lab(proc)


if __name__ == "__main__":
    sys.exit(main())
