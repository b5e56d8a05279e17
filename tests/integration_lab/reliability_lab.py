"""Shared by the reliability tests (faults, crash, bad input): a generated fleet on top of the demo scenario,
AWS-state readers that do not go through the collection's code, and a way to kill a running playbook.

Everything here reads AWS (boto3 against the lab, operator credentials) or the lab's journal: the evidence
the tests assert on never comes from the module's own results.
"""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time

ADMIN = "123456789012"
REGION = "us-east-1"
MODULE = "cloudsec.guardduty.ec2_isolation"
RECORD_TAG = "guardduty:original-groups"
CONTAINMENT_NAMES = ("guardduty-isolation", "guardduty-isolation-conversion")
READ_PREFIXES = ("Describe", "Get", "List")
REPO = pathlib.Path(__file__).resolve().parents[2]


def regional(lab, account=ADMIN, region=REGION):
    return lab.resources["accounts"][account]["regions"][region]


def is_write(entry):
    return entry["service"] == "ec2" and not (entry["action"] or "").startswith(READ_PREFIXES)


def writes(entries):
    """EC2 calls that change something, whatever their outcome (a refused write is still an attempt)."""
    return [e for e in entries if is_write(e)]


def mentions(entry, resource):
    return any(v == resource for v in (entry.get("params") or {}).values())


# -- a fleet: instances with 1-3 ENIs and varied original groups, on top of the demo ------------------
def build_fleet(lab, count, seed, account=ADMIN, region=REGION):
    """`count` instances in the demo's prod VPC (us-east-1a), each with 1 to 3 ENIs: secondary ENIs in
    prod's second subnet or in the shared VPC. Each ENI gets 1 to 3 original groups in a random order
    (release must restore the order too). Returns {instance_id: [eni_id, ...]} in device order."""
    rng = random.Random(seed)
    where = regional(lab, account, region)
    subnets, groups = where["subnets"], where["security_groups"]
    prod_groups = [groups["web"], groups["app"], groups["mgmt"]]
    ec2 = lab.client("ec2", account, region)
    launched = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=count, MaxCount=count,
                                 SubnetId=subnets["app-a"], SecurityGroupIds=[groups["app"]],
                                 TagSpecifications=[{"ResourceType": "instance",
                                                     "Tags": [{"Key": "Name", "Value": "fleet"}]}])["Instances"]
    fleet = {}
    for instance in sorted(launched, key=lambda i: i.get("AmiLaunchIndex", 0)):
        primary = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.modify_network_interface_attribute(NetworkInterfaceId=primary,
                                               Groups=rng.sample(prod_groups, rng.randint(1, 3)))
        enis = [primary]
        for index in range(1, rng.randint(1, 3)):
            if rng.random() < 0.5:
                create = {"SubnetId": subnets["app-b"], "Groups": rng.sample(prod_groups, rng.randint(1, 3))}
            else:
                create = {"SubnetId": subnets["shared-a"], "Groups": [groups["backup"]]}
            eni_id = ec2.create_network_interface(**create)["NetworkInterface"]["NetworkInterfaceId"]
            ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance["InstanceId"],
                                         DeviceIndex=index)
            enis.append(eni_id)
        fleet[instance["InstanceId"]] = enis
    return fleet


def demo_fleet(lab, names=("web-1", "app-1", "bastion-1", "healthy-1")):
    return {lab.instance(n)["id"]: list(lab.instance(n)["enis"]) for n in names}


# -- AWS state, read directly ---------------------------------------------------------------------------
def describe_enis(lab, eni_ids, account=ADMIN, region=REGION):
    ec2 = lab.client("ec2", account, region)
    out = {}
    eni_ids = sorted(set(eni_ids))
    for start in range(0, len(eni_ids), 200):
        page = ec2.describe_network_interfaces(
            Filters=[{"Name": "network-interface-id", "Values": eni_ids[start:start + 200]}])
        for eni in page["NetworkInterfaces"]:
            out[eni["NetworkInterfaceId"]] = eni
    return out


def eni_groups(lab, eni_ids, **where):
    """{eni_id: [group ids in AWS's order]}."""
    return {k: [g["GroupId"] for g in v["Groups"]] for k, v in describe_enis(lab, eni_ids, **where).items()}


def tags_of(described):
    return {t["Key"]: t["Value"] for t in described.get("TagSet") or described.get("Tags") or []}


def recorded_groups(tags):
    """The record of original groups as the ENI's tags hold it (None without a record)."""
    if RECORD_TAG not in tags:
        return None
    if tags[RECORD_TAG].isdigit():  # the earlier shape: a count, then comma-separated parts
        parts = [tags.get(f"{RECORD_TAG}:{i}", "") for i in range(1, int(tags[RECORD_TAG]) + 1)]
        return [g for part in parts for g in part.split(",") if g]
    count = 1 + sum(1 for k in tags if k.startswith(RECORD_TAG + ":"))
    return json.loads(tags[RECORD_TAG] + "".join(tags.get(f"{RECORD_TAG}:{i}", "") for i in range(2, count + 1)))


def instance_tags(lab, instance_ids, account=ADMIN, region=REGION):
    ec2 = lab.client("ec2", account, region)
    out = {}
    ids = list(instance_ids)
    for start in range(0, len(ids), 200):
        for reservation in ec2.describe_instances(InstanceIds=ids[start:start + 200])["Reservations"]:
            for instance in reservation["Instances"]:
                out[instance["InstanceId"]] = tags_of(instance)
    return out


def containment_groups(lab, account=ADMIN, region=REGION):
    """{vpc_id: {"conversion": id, "isolation": id}} of the groups that exist now."""
    found = lab.client("ec2", account, region).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": list(CONTAINMENT_NAMES)}])["SecurityGroups"]
    out = {}
    for group in found:
        role = "isolation" if group["GroupName"] == "guardduty-isolation" else "conversion"
        assert role not in out.get(group["VpcId"], {}), f"duplicate {group['GroupName']} in {group['VpcId']}"
        out.setdefault(group["VpcId"], {})[role] = group["GroupId"]
    return out


def assert_isolated(lab, fleet, originals, incident_id=None, account=ADMIN, region=REGION):
    """Every ENI of the fleet on its VPC's isolation group alone, its record equal to the groups read before
    the first run, no ENI on a conversion group, every instance tagged isolated (and with the incident)."""
    groups = containment_groups(lab, account, region)
    described = describe_enis(lab, [e for enis in fleet.values() for e in enis], account=account, region=region)
    problems = []
    for eni_id, eni in sorted(described.items()):
        vpc = groups.get(eni["VpcId"], {})
        now = [g["GroupId"] for g in eni["Groups"]]
        if now != [vpc.get("isolation")]:
            problems.append(f"{eni_id}: on {now}, not on the isolation group {vpc.get('isolation')}")
        if recorded_groups(tags_of(eni)) != originals[eni_id]:
            problems.append(f"{eni_id}: record {recorded_groups(tags_of(eni))} != original {originals[eni_id]}")
    conversions = [v["conversion"] for v in groups.values() if "conversion" in v]
    if conversions:
        on_conversion = lab.client("ec2", account, region).describe_network_interfaces(
            Filters=[{"Name": "group-id", "Values": conversions}])["NetworkInterfaces"]
        problems += [f"{e['NetworkInterfaceId']}: left on the conversion group" for e in on_conversion]
    for instance_id, tags in instance_tags(lab, fleet, account, region).items():
        if tags.get("guardduty:isolation") != "isolated":
            problems.append(f"{instance_id}: tag guardduty:isolation={tags.get('guardduty:isolation')}")
        if incident_id and tags.get("guardduty:incident") != incident_id:
            problems.append(f"{instance_id}: tag guardduty:incident={tags.get('guardduty:incident')}")
    assert not problems, "\n".join(problems)


def assert_released(lab, fleet, originals, account=ADMIN, region=REGION):
    """Every ENI back on exactly its original groups, in order, and no record left."""
    described = describe_enis(lab, [e for enis in fleet.values() for e in enis], account=account, region=region)
    problems = []
    for eni_id, eni in sorted(described.items()):
        now = [g["GroupId"] for g in eni["Groups"]]
        if now != originals[eni_id]:
            problems.append(f"{eni_id}: on {now}, original {originals[eni_id]}")
        left = [k for k in tags_of(eni) if k.startswith(RECORD_TAG)]
        if left:
            problems.append(f"{eni_id}: record tags left {left}")
    for instance_id, tags in instance_tags(lab, fleet, account, region).items():
        if tags.get("guardduty:isolation") != "released":
            problems.append(f"{instance_id}: tag guardduty:isolation={tags.get('guardduty:isolation')}")
    assert not problems, "\n".join(problems)


def assert_never_open_without_record(lab, fleet, originals, account=ADMIN, region=REGION):
    """Whatever point a run stopped at: each ENI is on its original groups, or has a record equal to them."""
    described = describe_enis(lab, [e for enis in fleet.values() for e in enis], account=account, region=region)
    problems = []
    for eni_id, eni in sorted(described.items()):
        now = [g["GroupId"] for g in eni["Groups"]]
        if now != originals[eni_id] and recorded_groups(tags_of(eni)) != originals[eni_id]:
            problems.append(f"{eni_id}: moved to {now} without a record of {originals[eni_id]}")
    assert not problems, "\n".join(problems)


def restore_pristine(lab, fleet, originals, account=ADMIN, region=REGION):
    """Operator clean-up between cases sharing one lab reset: original groups back, collection tags and
    containment groups gone, as before any run."""
    ec2 = lab.client("ec2", account, region)
    for eni_id, groups in originals.items():
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=groups)
    described = describe_enis(lab, list(originals), account=account, region=region)
    for eni_id, eni in described.items():
        keys = [k for k in tags_of(eni) if k.startswith("guardduty:")]
        if keys:
            ec2.delete_tags(Resources=[eni_id], Tags=[{"Key": k} for k in keys])
    for instance_id, tags in instance_tags(lab, fleet, account, region).items():
        keys = [k for k in tags if k.startswith("guardduty:")]
        if keys:
            ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": k} for k in keys])
    for roles in containment_groups(lab, account, region).values():
        for group_id in roles.values():
            ec2.delete_security_group(GroupId=group_id)


# -- a playbook run that can be killed like a crashed controller ----------------------------------------
def module_playbook(args, module=MODULE):
    return json.dumps([{"hosts": "localhost", "gather_facts": False,
                        "tasks": [{"name": "module under test", module: args}]}], indent=1) + "\n"


def process_tree(root):
    """`root` and every live descendant, by a scan of /proc/*/stat (PPid). Ansible's workers call setsid(),
    so the process group misses them; their parent links still lead back to ansible-playbook."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def process_alive(pid):
    """True while `pid` runs (a zombie, dead but not reaped yet, does not count)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_tree(root):
    """SIGKILL `root` and all its descendants, as a crash of the controller would end them all at once.

    The tree is collected before any kill (a killed parent's children are re-parented to init and could
    no longer be found), each member is stopped first so none can fork meanwhile, then all are killed;
    repeated until no process of the tree is left. Returns the pids killed."""
    killed = set()
    for _attempt in range(50):
        tree = [p for p in process_tree(root) if process_alive(p)]
        if not tree:
            break
        for pid in tree:  # freeze first: a stopped process forks no new worker
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        tree = sorted(set(tree) | {p for p in process_tree(root) if process_alive(p)})
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while any(process_alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.01)
    left = [p for p in killed if process_alive(p)]
    assert not left, f"processes still alive after SIGKILL: {left}"
    return sorted(killed)


def run_and_kill(lab, playbook_text, kill_after_writes, since, account=ADMIN, region=REGION, poll=0.01,
                 extra_vars=None, inventory=None, timeout=300, counted=None):
    """Start ansible-playbook, and SIGKILL it and every process under it (the module's worker included)
    as soon as the journal shows `kill_after_writes` entries after `since` that `counted` accepts
    (default: successful EC2 write calls). Returns (killed, count seen at the kill, returncode, pids killed):
    killed is False when the run ended before reaching that count."""
    counted = counted or (lambda e: is_write(e) and e["outcome"] == "ok")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "playbook.yml"
        path.write_text(playbook_text)
        cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(path),
               "-i", str(inventory or REPO / "tests/inventory/localhost.yml")]
        if extra_vars:
            vars_file = pathlib.Path(tmp) / "vars.json"
            vars_file.write_text(json.dumps(extra_vars))
            cmd += ["-e", f"@{vars_file}"]
        proc = subprocess.Popen(cmd, cwd=str(REPO), env=lab.env(account, region), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        seen = 0
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                seen = sum(1 for e in lab.journal(since) if counted(e))
                if seen >= kill_after_writes:
                    pids = kill_tree(proc.pid)
                    proc.wait(timeout=30)
                    return True, seen, proc.returncode, pids
                time.sleep(poll)
        finally:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait(timeout=30)
        return False, seen, proc.returncode, []


# -- time on the conversion group, from the journal -----------------------------------------------------
def _moves(entries, group_ids):
    """ModifyNetworkInterfaceAttribute calls whose only group is one of `group_ids`."""
    return [e for e in entries if e["action"] == "ModifyNetworkInterfaceAttribute"
            and (e.get("params") or {}).get("SecurityGroupId.1") in group_ids
            and "SecurityGroupId.2" not in (e.get("params") or {})]


def conversion_windows(entries, conversion_ids, isolation_ids):
    """{eni_id: (opened, closed)}: from the answered move onto a conversion group to the answered move onto
    an isolation group of the same ENI (journal times, seconds). closed is None for an ENI never moved on."""
    windows = {}
    for entry in _moves(entries, conversion_ids):
        if entry["outcome"] == "ok":
            windows.setdefault(entry["params"]["NetworkInterfaceId"], [entry["time"], None])
    for entry in _moves(entries, isolation_ids):
        window = windows.get(entry["params"]["NetworkInterfaceId"])
        if entry["outcome"] == "ok" and window and window[1] is None and entry["time"] >= window[0]:
            window[1] = entry["time"]
    return {k: tuple(v) for k, v in windows.items()}


def conversions_while_isolation_waits(entries, conversion_ids, isolation_ids, grace=0.25):
    """Conversion calls (any outcome, retries included) that reached the lab while another ENI was on a
    conversion group waiting for its move onto the isolation group to be answered: what "isolation moves go
    first" forbids. `grace` covers a conversion let out just before the other ENI's conversion answer reached
    the controller (answer transit, a busy CPU). Returns [(conversion entry, waiting ENI)]."""
    windows = conversion_windows(entries, conversion_ids, isolation_ids)
    # One module call per account and region: another batch's ENIs are another process's business.
    batch = {e["params"]["NetworkInterfaceId"]: (e["account"], e["region"]) for e in _moves(entries, conversion_ids)}
    out = []
    for conversion in _moves(entries, conversion_ids):
        eni = conversion["params"]["NetworkInterfaceId"]
        for other, (opened, closed) in windows.items():
            closed = float("inf") if closed is None else closed
            if other != eni and batch[other] == batch[eni] and opened + grace < conversion["started"] < closed:
                out.append((conversion, other))
                break
    return out


def percentile(values, share):
    """The value below which `share` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]
