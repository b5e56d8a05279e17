"""`make bench-isolate`: network containment of N compromised instances, ours beside Cloud Custodian and a
naive per-host playbook, on the same generated lab, in the same run, the lab reset before each contender.

Lab: `generated:2N:2:2` with `enis=3` (tests/lab/generator.py): N instances tagged Service=web, each with
1, 2 or 3 ENIs (a third each), over 2 accounts x 2 regions, one VPC per account/region; the first account
is the current credentials', the second is reached through its GuardDutyResponder role.

Contenders (each from the same freshly reset lab):
- playbook_network: playbooks/isolate.yml (roles/isolate) with only `isolate_network` on (record,
  conversion group, isolation group, instance tags per ENI/instance; groups created by the module);
- playbook_evidence: the same plus protection, EBS snapshots and instance metadata (no console/screenshot);
- module: tests/bench/playbooks/module_isolate.yml, one ec2_isolation call per account/region batch, the
  batches in parallel (the module without the role's per-host bookkeeping);
- module_accounts: tests/bench/playbooks/module_isolate_accounts.yml, ec2_isolation as c7n-org runs Custodian: one
  process per account, its region batches through the module's `batches` option (as the playbook hands them over);
- c7n: Cloud Custodian (`custodian run`, .build/bench-venv, tests/bench/c7n/isolate.yml): ec2 filtered on
  the tag, modify-security-groups remove: all + isolation-group by name (one group per VPC, made
  beforehand); one process per account (the second with --assume), both at once as c7n-org would, each
  over both regions; AWS_ENDPOINT_URL points it at the lab (its calls are checked in the journal);
- naive: tests/bench/playbooks/naive_isolate.yml, per host ec2_instance_info then amazon.aws.ec2_eni per
  ENI (forks 20 from ansible.cfg);
- playbook_baseline: playbook_network with the collection as it was at `--baseline REF` (git archive): a change's
  playbook and the one before it, side by side in one run; playbook_baseline_latency: the same at AWS-like answer
  times (as playbook_latency)
- playbook_throttled: playbook_network again with the lab's EC2-like token buckets on (per account,
  region, service and category: mutating 200 burst / 5 per s, describes 100 / 20 per s), printed beside
  the floor those buckets allow for the calls it made; module_throttled: the same for `module` (opt-in);
- playbook_latency, module_latency, c7n_latency: the same three with the lab answering each call after an
  AWS-like answer time (--latency-ms, default 80-200 ms, uniform; tests/lab/faults.py). Without it moto
  answers at once and the lab's own CPU per call (one process, about one core) is the bottleneck: a
  contender's time is then about its call count, which is not how AWS behaves.

Measured: wall time (process start included), the time to contain (start to the last ENI moved, from
the lab journal: the containment itself, before the run's bookkeeping), AWS calls (lab journal) per
action and per instance, CPU user+sys and peak RSS of the controller (the ansible-playbook / custodian process tree: wait4 rusage,
and /proc sampled every 0.25 s for the tree's summed PSS). Results are printed and written to
.build/bench/isolate.json. A benchmark, not a test: nothing asserts a timing; a contender that leaves an
ENI unisolated is reported as such.
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

import yaml

from tests.lab.faults import DEFAULT_BUCKETS, category
from tests.lab.generator import ACCOUNTS, REGIONS
from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab
from tests.lab.scenario import LAB_CREDENTIALS, RESPONDER_ROLE

REPO = pathlib.Path(__file__).resolve().parents[2]
OUT_DIR = REPO / ".build" / "bench"
OUT = OUT_DIR / "isolate.json"
BENCH_VENV = REPO / ".build" / "bench-venv"
HERE = pathlib.Path(__file__).resolve().parent
OUR_GROUP = "guardduty-isolation"
OUR_CONVERSION_GROUP = "guardduty-isolation-conversion"
THEIR_GROUP = "bench-isolation"
ALL_CONTENDERS = ("playbook_network", "playbook_baseline", "playbook_evidence", "module", "module_accounts", "c7n", "naive", "playbook_throttled",
                  "module_throttled", "playbook_latency", "module_latency", "c7n_latency", "playbook_baseline_latency")
QUICK_CONTENDERS = ("playbook_network", "module", "c7n", "naive", "playbook_throttled", "module_latency", "c7n_latency")
LATENCY_MS = (80, 200)
NETWORK_ONLY = {
    "isolate_preflight_summary": False, "isolate_protection": False, "isolate_snapshots": False,
    "isolate_evidence": False, "isolate_detach": False, "isolate_network": True, "isolate_public_ip": False,
    "isolate_credentials": False, "isolate_subnet_containment": False, "isolate_scan": False,
    "isolate_triage": False, "isolate_archive_findings": False, "isolate_report": False,
}
WITH_EVIDENCE = dict(NETWORK_ONLY, isolate_protection=True, isolate_snapshots=True, isolate_evidence=True,
                     isolate_evidence_console_output=False, isolate_evidence_screenshot=False)


# -- the controller's footprint -------------------------------------------------------------------
def _tree_rss(root):
    """Summed PSS (bytes; RSS where PSS is unreadable) of `root` and its descendants now, from /proc."""
    parents, rss = {}, {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * page
    children = defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss(pid, rss.get(pid, 0))
        todo.extend(children.get(pid, ()))
    return total


def _pss(pid, rss):
    """Proportional set size (forked workers share pages: summing RSS would count them once per process)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as smaps:
            for line in smaps:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss


class Sampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.stop = pids, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.25):
            self.peak = max(self.peak, sum(_tree_rss(pid) for pid in self.pids))


def run_processes(commands, env, log_prefix):
    """Start every command at once; wait for all. Returns (wall seconds, [rc], cpu seconds, peak RSS of one
    process (wait4), peak summed RSS of the trees (sampled))."""
    started = time.perf_counter()
    procs, logs = [], []
    for index, cmd in enumerate(commands):
        log = open(f"{log_prefix}{'-' + str(index) if len(commands) > 1 else ''}.log", "w", encoding="utf-8")
        logs.append(log)
        procs.append(subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT))
    sampler = Sampler([p.pid for p in procs])
    sampler.start()
    rcs, cpu, maxrss = [], 0.0, 0
    for proc in procs:
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        rcs.append(proc.returncode)
        cpu += usage.ru_utime + usage.ru_stime
        maxrss = max(maxrss, usage.ru_maxrss * 1024)
    elapsed = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    for log in logs:
        log.close()
    return elapsed, rcs, cpu, maxrss, sampler.peak


# -- lab ------------------------------------------------------------------------------------------
def compromised(resources):
    return {name: inst for name, inst in resources["instances"].items() if name.startswith("compromised")}


def vpcs(resources):
    """{(account, region): vpc_id}"""
    return {(account, region): region_res["vpcs"]["bench"]
            for account, account_res in resources["accounts"].items()
            for region, region_res in account_res["regions"].items()}


def create_their_groups(lab, resources):
    """The isolation group c7n and the naive playbook are given, one per VPC (no rules at all)."""
    groups = {}
    for (account, region), vpc_id in vpcs(resources).items():
        ec2 = lab.client("ec2", account, region)
        group_id = ec2.create_security_group(GroupName=THEIR_GROUP, Description="bench isolation", VpcId=vpc_id)["GroupId"]
        everything_out = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=everything_out)
        groups[(account, region)] = group_id
    return groups


def check_isolated(lab, resources, group_name):
    """ENIs of the compromised instances whose groups are not exactly [the VPC's `group_name` group]."""
    wrong = []
    by_source = defaultdict(set)
    for inst in compromised(resources).values():
        by_source[(inst["account"], inst["region"])].update(inst["enis"])
    for (account, region), enis in by_source.items():
        ec2 = lab.client("ec2", account, region)
        vpc_id = vpcs(resources)[(account, region)]
        named = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                      {"Name": "group-name", "Values": [group_name]}])["SecurityGroups"]
        target = [g["GroupId"] for g in named]
        pages = ec2.get_paginator("describe_network_interfaces").paginate(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        for page in pages:
            for eni in page["NetworkInterfaces"]:
                if eni["NetworkInterfaceId"] in enis and [g["GroupId"] for g in eni["Groups"]] != target:
                    wrong.append(eni["NetworkInterfaceId"])
    return wrong


def credentials(lab, account):
    creds = lab.credentials(account)
    return {"access_key": creds["aws_access_key_id"], "secret_key": creds["aws_secret_access_key"],
            "session_token": creds.get("aws_session_token")}


# -- contenders -----------------------------------------------------------------------------------
def ansible_env(lab):
    env = lab.env()
    env.update({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
                "ANSIBLE_DISPLAY_OK_HOSTS": "false", "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
                # per-task times in the logs (.build/bench/logs): where the playbook's time goes
                "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_SORT_ORDER": "descending",
                "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "15"})
    return env


def ours_inventory(resources, path):
    hosts = {}
    for name, inst in compromised(resources).items():
        host = {"instance_id": inst["id"], "region": inst["region"], "account_id": inst["account"]}
        if inst["account"] != ACCOUNTS[0]:
            host["responder_role_arn"] = f"arn:aws:iam::{inst['account']}:role/{RESPONDER_ROLE}"
        hosts[name] = host
    path.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": hosts}}}}))


def account_region_batches(resources):
    """{(account, region): [instance ids]} of the compromised instances."""
    batches = defaultdict(list)
    for inst in compromised(resources).values():
        batches[(inst["account"], inst["region"])].append(inst["id"])
    return batches


def module_inventory(lab, resources, path):
    hosts = {}
    for (account, region), ids in account_region_batches(resources).items():
        creds = credentials(lab, account)
        hosts[f"batch-{account}-{region}"] = {"bench_instance_ids": ids, "region": region,
                                              "bench_access_key": creds["access_key"],
                                              "bench_secret_key": creds["secret_key"],
                                              "bench_session_token": creds["session_token"]}
    path.write_text(yaml.safe_dump({"all": {"children": {"batches": {"hosts": hosts}}}}))


def module_accounts_inventory(lab, resources, path):
    """One host per account, as c7n-org runs one Custodian process per account: its account/region batches go to one
    ec2_isolation process through the module's `batches` option (each batch its own region and credentials)."""
    hosts = defaultdict(lambda: {"bench_batches": []})
    for (account, region), ids in sorted(account_region_batches(resources).items()):
        creds = credentials(lab, account)
        hosts[f"account-{account}"]["bench_batches"].append({"instance_ids": ids, "region": region, **creds})
    path.write_text(yaml.safe_dump({"all": {"children": {"accounts": {"hosts": dict(hosts)}}}}))


# The module alone: a process per account/region batch, or per account with its batches (`batches`)
MODULE_LAYOUTS = {"module": (module_inventory, "module_isolate.yml"),
                  "module_accounts": (module_accounts_inventory, "module_isolate_accounts.yml")}


def naive_inventory(lab, resources, groups, path):
    hosts = {}
    for name, inst in compromised(resources).items():
        creds = credentials(lab, inst["account"])
        hosts[name] = {"instance_id": inst["id"], "region": inst["region"],
                       "naive_isolation_group_id": groups[(inst["account"], inst["region"])],
                       "naive_access_key": creds["access_key"], "naive_secret_key": creds["secret_key"],
                       "naive_session_token": creds["session_token"]}
    path.write_text(yaml.safe_dump({"all": {"children": {"compromised": {"hosts": hosts}}}}))


BASELINE = {"ref": None}  # --baseline REF: the playbook_baseline contender runs the collection as it was at REF


def baseline_collection(ref):
    """A collections path holding this collection as it was at git `ref` (git archive, under .build/bench-baseline/),
    so that a change's playbook and the one before it run side by side in one run, on one lab."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"], capture_output=True,
                         text=True, check=True).stdout.strip()
    root = REPO / ".build" / "bench-baseline" / sha[:12]
    target = root / "ansible_collections" / "cloudsec" / "guardduty"
    if not (target / "galaxy.yml").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return root, target


def ansible_command(playbook, inventory, extra_vars_file):
    return [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(playbook), "-i", str(inventory),
            "-e", f"@{extra_vars_file}"]


def c7n_commands(lab, tmp, regions):
    custodian = BENCH_VENV / "bin" / "custodian"
    commands = []
    for account in sorted({a for a, _r in regions}):
        cmd = [str(custodian), "run", "--cache-period", "0", "-s", str(tmp / f"c7n-{account}")]
        for region in sorted({r for a, r in regions if a == account}):
            cmd += ["-r", region]
        if account != ACCOUNTS[0]:
            cmd += ["--assume", f"arn:aws:iam::{account}:role/{RESPONDER_ROLE}"]
        commands.append(cmd + [str(HERE / "c7n" / "isolate.yml")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": lab.endpoint, "AWS_ACCESS_KEY_ID": LAB_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": LAB_CREDENTIALS["aws_secret_access_key"], "AWS_DEFAULT_REGION": "us-east-1"})
    return commands, env


def contender_faults(name, latency_ms):
    if name.endswith("_throttled"):
        return {"token_buckets": True}
    if name.endswith("_latency"):
        return {"latency_ms": list(latency_ms), "seed": 1}
    return None


def run_contender(name, lab, scenario, enis, size, tmp, logs, latency_ms=LATENCY_MS):
    faults = contender_faults(name, latency_ms)
    kind = name.removesuffix("_throttled").removesuffix("_latency")
    kind = "playbook_network" if kind == "playbook" else kind
    started = time.perf_counter()
    resources = lab.reset(scenario, enis=enis)
    reset_seconds = time.perf_counter() - started
    instances = compromised(resources)
    sources = set(vpcs(resources))
    incident = f"bench-{size}"
    extra = tmp / "vars.json"
    group_name = OUR_GROUP
    if kind in ("playbook_network", "playbook_evidence", "playbook_baseline"):
        inventory = tmp / "ours.yml"
        ours_inventory(resources, inventory)
        variables = dict(WITH_EVIDENCE if kind == "playbook_evidence" else NETWORK_ONLY, incident_id=incident,
                         isolate_evidence_dir=str(tmp / "evidence"))
        extra.write_text(json.dumps(variables))
        collection, env = REPO, ansible_env(lab)
        if kind == "playbook_baseline":
            if not BASELINE["ref"]:
                raise SystemExit("playbook_baseline needs --baseline REF")
            collections_path, collection = baseline_collection(BASELINE["ref"])
            env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path)
        commands = [ansible_command(collection / "playbooks" / "isolate.yml", inventory, extra)]
    elif kind in MODULE_LAYOUTS:
        write_inventory, playbook = MODULE_LAYOUTS[kind]
        inventory = tmp / f"{kind}.yml"
        write_inventory(lab, resources, inventory)
        extra.write_text(json.dumps({"incident_id": incident}))
        commands, env = [ansible_command(HERE / "playbooks" / playbook, inventory, extra)], ansible_env(lab)
    elif kind == "naive":
        group_name = THEIR_GROUP
        inventory = tmp / "naive.yml"
        naive_inventory(lab, resources, create_their_groups(lab, resources), inventory)
        extra.write_text("{}")
        commands, env = [ansible_command(HERE / "playbooks" / "naive_isolate.yml", inventory, extra)], ansible_env(lab)
    elif kind == "c7n":
        group_name = THEIR_GROUP
        create_their_groups(lab, resources)
        commands, env = c7n_commands(lab, tmp, sources)
    else:
        raise ValueError(name)
    if faults:
        lab.faults(faults)
    mark = lab.mark()
    epoch_started = time.time()  # the journal's clock: when the last ENI moved, counted from the start
    lab_cpu = process_cpu(lab.process)
    wall, rcs, cpu, maxrss, tree_peak = run_processes(commands, env, str(logs / f"{name}-{size}"))
    lab_cpu = round(process_cpu(lab.process) - lab_cpu, 2) if lab_cpu is not None else None
    journal = lab.journal(since=mark)
    fault_counts = lab.faults().get("counts", {}) if faults else {}
    lab.faults({})
    wrong = check_isolated(lab, resources, group_name)
    result = {
        "wall_seconds": round(wall, 3), "contained_seconds": contained_seconds(journal, epoch_started),
        "reset_seconds": round(reset_seconds, 1), "rc": rcs,
        "instances": len(instances), "enis": sum(len(i["enis"]) for i in instances.values()),
        "enis_not_isolated": len(wrong), "lab_cpu_seconds": lab_cpu, "controller": {
            "cpu_seconds": round(cpu, 2), "max_rss_one_process_mb": round(maxrss / 2**20, 1),
            "peak_tree_pss_mb": round(tree_peak / 2**20, 1)},
        **calls_summary(journal, len(instances)),
    }
    # Per ENI, the unit of the containment: 2 ModifyNetworkInterfaceAttribute (conversion, isolation) for ours,
    # 1 for Custodian's single move; everything else divided among the ENIs.
    enis = max(1, result["enis"])
    result["calls_per_eni"] = round(result["aws_calls"] / enis, 3)
    result["calls_per_eni_besides_modify"] = round(
        (result["aws_calls"] - result["calls_by_action"].get("ec2:ModifyNetworkInterfaceAttribute", 0)) / enis, 3)
    if faults and "token_buckets" in faults:
        result["token_buckets"] = floor(journal, wall, fault_counts)
        floor_s = result["token_buckets"]["floor_seconds"]
        result["token_buckets"]["ratio_contained_over_floor"] = (round(result["contained_seconds"] / floor_s, 3)
                                                                 if floor_s and result["contained_seconds"] else None)
    if faults and "latency_ms" in faults:
        result["latency_ms"] = faults["latency_ms"]
    return result


def process_cpu(process):
    """CPU seconds (user + sys) the lab's process has used so far, from /proc; None where unreadable. With the
    lab answering at once it is what a call costs the lab: on a 2-core box the lab and the controller share them."""
    try:
        fields = pathlib.Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError, IndexError):
        return None


# -- journal arithmetic ---------------------------------------------------------------------------
def contained_seconds(journal, epoch_started):
    """From the start to the last answered ModifyNetworkInterfaceAttribute: when the network containment
    was done, before the run's bookkeeping (record, tags, report, recap)."""
    moves = [e["time"] for e in journal if e["action"] == "ModifyNetworkInterfaceAttribute" and e["status"] < 400]
    return round(max(moves) - epoch_started, 3) if moves else None


def calls_summary(journal, instances):
    ok = [e for e in journal if e["status"] < 400]
    by_action = Counter(f"{e['service']}:{e['action']}" for e in ok)
    by_source = defaultdict(Counter)
    for e in ok:
        by_source[f"{e['account']}/{e['region']}"][e["action"]] += 1
    return {
        "aws_calls": len(ok), "aws_errors": dict(Counter(e["outcome"] for e in journal if e["status"] >= 400)),
        "calls_by_action": dict(sorted(by_action.items())),
        "calls_per_instance": round(len(ok) / max(1, instances), 2),
        "calls_per_instance_by_action": {k: round(v / max(1, instances), 3) for k, v in sorted(by_action.items())},
        "calls_by_account_region": {k: dict(sorted(v.items())) for k, v in sorted(by_source.items())},
    }


def floor(journal, wall, fault_counts):
    """The shortest time EC2's buckets allow for the calls that went through: per bucket (account, region,
    service, category, as tests/lab/faults.py keys them) with capacity C and refill R, n calls need
    max(0, (n - C) / R) seconds after the bucket's first call; buckets drain in parallel, so the floor is the
    slowest bucket's. `aws_window` is the first to the last answered call of the run (the part of the wall
    time the buckets can govern)."""
    counts = Counter()
    for e in journal:
        if e["action"] and e["injected"] != "bucket":
            counts[(e["account"], e["region"], e["service"], category(e["action"]))] += 1
    floors = {"/".join(k): max(0.0, (n - DEFAULT_BUCKETS[k[3]][0]) / DEFAULT_BUCKETS[k[3]][1]) for k, n in counts.items()}
    # the bucket with the longest floor, or, when none went past its burst, the fullest one
    slowest = max(floors.items(), key=lambda kv: (kv[1], counts[tuple(kv[0].split("/"))]
                                                  / DEFAULT_BUCKETS[kv[0].split("/")[3]][0])) if floors else ("", 0.0)
    times = [e["time"] for e in journal]
    window = (max(times) - min(e["started"] for e in journal)) if times else 0.0
    return {
        "floor_seconds": round(slowest[1], 2), "slowest_bucket": slowest[0],
        "calls_in_slowest_bucket": counts.get(tuple(slowest[0].split("/")), 0) if slowest[0] else 0,
        "aws_window_seconds": round(window, 2), "wall_seconds": round(wall, 2),
        "ratio_window_over_floor": round(window / slowest[1], 3) if slowest[1] else None,
        "ratio_wall_over_floor": round(wall / slowest[1], 3) if slowest[1] else None,
        "throttled_answers": fault_counts.get("bucket_throttled", 0),
        "floor_by_bucket": {k: round(v, 2) for k, v in sorted(floors.items())},
    }


# -- report ---------------------------------------------------------------------------------------
def ratio(a, b):
    return round(a / b, 3) if a and b else None


def print_size(size, results):
    print(f"\n== N={size}: {results[next(iter(results))]['instances']} instances, "
          f"{results[next(iter(results))]['enis']} ENIs, 2 accounts x 2 regions")
    print(f"   {'contender':19s} {'wall s':>8s} {'contained s':>11s} {'calls':>7s} {'calls/inst':>10s} {'not isol.':>9s} "
          f"{'cpu s':>7s} {'rss MB':>7s} {'tree PSS':>8s}  rc")
    for name, r in results.items():
        c = r["controller"]
        contained = f"{r['contained_seconds']:11.2f}" if r.get("contained_seconds") is not None else f"{'-':>11s}"
        print(f"   {name:19s} {r['wall_seconds']:8.2f} {contained} {r['aws_calls']:7d} {r['calls_per_instance']:10.2f} "
              f"{r['enis_not_isolated']:9d} {c['cpu_seconds']:7.1f} {c['max_rss_one_process_mb']:7.1f} "
              f"{c['peak_tree_pss_mb']:8.1f}  {r['rc']}")
    for name, r in results.items():
        per = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in r["calls_per_instance_by_action"].items())
        print(f"   calls per instance, {name}: {per}")
    for name, r in results.items():
        print(f"   calls per ENI, {name}: {r['calls_per_eni']} ({r['calls_per_eni_besides_modify']} besides "
              f"ModifyNetworkInterfaceAttribute); lab CPU {r.get('lab_cpu_seconds')} s")
    ratios = {}
    for ours in ("playbook_network", "module", "module_accounts"):
        for other in ("c7n", "naive"):
            if ours in results and other in results:
                ratios[f"{ours}_over_{other}"] = ratio(results[ours]["wall_seconds"], results[other]["wall_seconds"])
    for ours in ("playbook_latency", "module_latency"):
        if ours in results and "c7n_latency" in results:
            ratios[f"{ours}_over_c7n_latency"] = ratio(results[ours]["wall_seconds"], results["c7n_latency"]["wall_seconds"])
    # the network containment itself: from the start to the last ENI moved, beside Custodian's
    for ours, theirs in (("playbook_network", "c7n"), ("module", "c7n"), ("module_accounts", "c7n"),
                         ("playbook_latency", "c7n_latency"),
                         ("module_latency", "c7n_latency")):
        if ours in results and theirs in results:
            ratios[f"{ours}_contained_over_{theirs}"] = ratio(results[ours].get("contained_seconds"),
                                                              results[theirs].get("contained_seconds"))
    if "module" in results and "playbook_baseline" in results:
        ratios["playbook_baseline_over_module"] = ratio(results["playbook_baseline"]["wall_seconds"],
                                                        results["module"]["wall_seconds"])
    if "playbook_baseline" in results and "playbook_network" in results:
        ratios["playbook_network_over_baseline"] = ratio(results["playbook_network"]["wall_seconds"],
                                                         results["playbook_baseline"]["wall_seconds"])
    if "playbook_baseline_latency" in results and "playbook_latency" in results:
        ratios["playbook_latency_over_baseline_latency"] = ratio(results["playbook_latency"]["wall_seconds"],
                                                                 results["playbook_baseline_latency"]["wall_seconds"])
    if "module" in results and "playbook_network" in results:
        ratios["playbook_network_over_module"] = ratio(results["playbook_network"]["wall_seconds"],
                                                       results["module"]["wall_seconds"])
    if "module_accounts" in results and "playbook_network" in results:
        ratios["playbook_network_over_module_accounts"] = ratio(results["playbook_network"]["wall_seconds"],
                                                                results["module_accounts"]["wall_seconds"])
    if "playbook_evidence" in results and "playbook_network" in results:
        ratios["playbook_evidence_over_network"] = ratio(results["playbook_evidence"]["wall_seconds"],
                                                         results["playbook_network"]["wall_seconds"])
    for key, value in ratios.items():
        print(f"   ratio {key} = {value}" + ("  (below 1: ours faster)" if key.endswith(("_c7n", "_naive", "_c7n_latency")) else ""))
    for throttled in ("playbook_throttled", "module_throttled"):
        tb = results.get(throttled, {}).get("token_buckets")
        if not tb:
            continue
        print(f"   token buckets, {throttled}: floor {tb['floor_seconds']}s ({tb['slowest_bucket']}, {tb['calls_in_slowest_bucket']} "
              f"calls), AWS window {tb['aws_window_seconds']}s, wall {tb['wall_seconds']}s: window/floor "
              f"{tb['ratio_window_over_floor']}, contained/floor {tb.get('ratio_contained_over_floor')}, "
              f"wall/floor {tb['ratio_wall_over_floor']}; "
              f"{tb['throttled_answers']} throttled answers, "
              f"{results[throttled]['enis_not_isolated']} ENIs not isolated, rc {results[throttled]['rc']}")
    return ratios


def median_of_rounds(size, rounds):
    """Each contender's median wall time and each ratio's median over the rounds (the ratios taken within a round,
    where the contenders ran one after the other on the same machine state), printed with their ranges."""
    walls = {name: statistics.median(r["contenders"][name]["wall_seconds"] for r in rounds) for name in rounds[0]["contenders"]}
    ratios = {}
    print(f"\n== N={size}: medians of {len(rounds)} interleaved rounds")
    for name, wall in walls.items():
        each = [r["contenders"][name]["wall_seconds"] for r in rounds]
        print(f"   {name:19s} wall {wall:6.2f} s (rounds: {', '.join(f'{v:.2f}' for v in each)})")
    for key in rounds[0]["ratios"]:
        each = [r["ratios"][key] for r in rounds if r["ratios"].get(key) is not None]
        if not each:
            continue
        ratios[key] = round(statistics.median(each), 3)
        print(f"   median ratio {key} = {ratios[key]} (rounds: {min(each)}-{max(each)})")
    return {"median_wall_seconds": walls, "median_ratios": ratios}


def ensure_c7n():
    if (BENCH_VENV / "bin" / "custodian").exists():
        return
    raise SystemExit(f"no {BENCH_VENV}/bin/custodian: run `make bench-isolate` (it installs "
                     "tests/bench/requirements-c7n.txt there), or pass --contenders without c7n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_isolate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,1000", help="instance counts, comma separated (default 200,1000)")
    parser.add_argument("--contenders", default=None, help=f"comma separated, from {','.join(ALL_CONTENDERS)} (default all)")
    parser.add_argument("--quick", action="store_true", help=f"contenders {','.join(QUICK_CONTENDERS)} only")
    parser.add_argument("--enis", type=int, default=3, help="instances get 1..ENIS network interfaces (default 3)")
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--regions", type=int, default=2)
    parser.add_argument("--latency-ms", default=",".join(map(str, LATENCY_MS)),
                        help="LOW,HIGH: the *_latency contenders' AWS-like answer time (default %(default)s)")
    parser.add_argument("--baseline", default=None, metavar="REF",
                        help="git ref of the collection the playbook_baseline contender runs (before/after in one run)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every contender, interleaved (A B C, A B C...): each ratio is also given as the "
                             "median of its rounds' ratios, with their range (default 1)")
    parser.add_argument("--out", default=str(OUT), help=f"the JSON written (default {OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    BASELINE["ref"] = args.baseline
    out = pathlib.Path(args.out).resolve()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    latency_ms = tuple(float(v) for v in args.latency_ms.split(","))
    contenders = (args.contenders.split(",") if args.contenders else
                  list(QUICK_CONTENDERS if args.quick else ALL_CONTENDERS))
    if not args.contenders and not args.baseline:
        contenders = [c for c in contenders if not c.startswith("playbook_baseline")]
    elif args.baseline and not any(c.startswith("playbook_baseline") for c in contenders):
        contenders.insert(1, "playbook_baseline")
    unknown = set(contenders) - set(ALL_CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    if {"c7n", "c7n_latency"} & set(contenders):
        ensure_c7n()
    logs = OUT_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"== lab starting; contenders {', '.join(contenders)}; sizes {sizes}; logs in {logs.relative_to(REPO)}", flush=True)
    endpoint, proc = start_lab("empty")
    lab = LabClient(endpoint, proc)
    output = {"sizes": {}, "machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg(),
                                       "python": sys.version.split()[0]},
              "regions": REGIONS[:args.regions], "accounts": ACCOUNTS[:args.accounts], "enis_max": args.enis,
              "forks": 20, "contenders": contenders, "latency_ms": list(latency_ms),
              "note": "wall time includes process start; calls are answered (status < 400) lab journal entries"}
    try:
        for size in sizes:
            scenario = f"generated:{2 * size}:{args.accounts}:{args.regions}"
            rounds = []
            for round_index in range(args.repeat):
                results = {}
                for name in contenders:
                    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                        print(f"   N={size} {name}: resetting the lab and running...", flush=True)
                        results[name] = run_contender(name, lab, scenario, args.enis, size, pathlib.Path(tmp), logs, latency_ms)
                        r = results[name]
                        print(f"   N={size} {name}: {r['wall_seconds']:.2f}s, {r['aws_calls']} calls, "
                              f"{r['enis_not_isolated']} ENIs not isolated, rc {r['rc']} (reset {r['reset_seconds']}s)", flush=True)
                if args.repeat > 1:
                    print(f"\n== round {round_index + 1} of {args.repeat}")
                rounds.append({"contenders": results, "ratios": print_size(size, results)})
            entry = {"scenario": scenario, "contenders": rounds[0]["contenders"], "ratios": rounds[0]["ratios"]}
            if args.repeat > 1:
                entry.update(rounds=rounds, **median_of_rounds(size, rounds))
            output["sizes"][str(size)] = entry
            out.write_text(json.dumps(output, indent=2) + "\n")
        output["bench_process"] = {"max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        out.write_text(json.dumps(output, indent=2) + "\n")
        print(f"\n== written to {out}")
        return 0
    finally:
        stop_lab(proc)


if __name__ == "__main__":
    sys.exit(main())
