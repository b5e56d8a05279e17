"""AWX / Automation Platform job slicing of the isolate playbook: K = 4 slices of one incident, run at once.

A job template with `job_slice_count` K > 1 launches a workflow of K jobs; each is one ansible-playbook over a
pared-down copy of the inventory holding only its slice's hosts (same groups, same variables), all with the
same extra variables. AWX builds slice n of K (1-based) in `Inventory.get_script_data`: the enabled hosts
ordered by name, then `get_sliced_hosts` takes `hosts[n - 1::K]` (ansible/awx, awx/main/models/inventory.py,
commit e21dd0a; the workflow nodes get `job_slice_number` = n and `job_slice_count` = K in
awx/main/models/workflow.py). `awx_slice` (tests/bench/bench_slicing.py) is exactly that assignment; the
slices run as four ansible-playbook processes started together, each with its slice's static inventory, as
AWX's slice jobs do.

The slices share what AWX jobs on different nodes can share: AWS, and the incident store `s3://BUCKET/PREFIX`
(a controller directory is per node, and per container). The report directory is one directory for the four,
as a volume mounted into every job (docs/awx.md): the incident's index is built from every run in it.

Lab: generated, 2 accounts x 2 regions, one VPC per account/region with 6 compromised instances of 1-2 ENIs.
Evidence: AWS state (boto3 against the lab), the lab's journal, the S3 store's objects, the report files.
"""

import json
import pathlib
import threading
import types
from collections import Counter, defaultdict

import pytest

from tests.bench.bench_isolate import compromised, vpcs
from tests.bench.bench_slicing import awx_slice, slice_inventory
from tests.integration_lab.playbook_results import task
from tests.integration_lab.reliability_lab import recorded_groups, tags_of

REPO = pathlib.Path(__file__).resolve().parents[2]
ISOLATE = str(REPO / "playbooks/isolate.yml")
RELEASE = str(REPO / "playbooks/release.yml")
SLICES = 4
# 48 findings over 2 accounts x 2 regions: 6 compromised instances per VPC (2 findings each), 1 or 2 ENIs each
SCENARIO = "generated:48:2:2"
INCIDENT = "INC-SLICED-4"
BUCKET = "security-incidents"
STORE = f"s3://{BUCKET}/guardduty"
ISOLATION, CONVERSION = "guardduty-isolation", "guardduty-isolation-conversion"
ISOLATION_TASK = "Contain | isolate every network interface (ec2_isolation)"
NETWORK_ONLY = {"isolate_preflight_summary": False, "isolate_protection": False, "isolate_snapshots": False,
                "isolate_evidence": False, "isolate_detach": False, "isolate_network": True, "isolate_public_ip": False,
                "isolate_credentials": False, "isolate_subnet_containment": False, "isolate_scan": False,
                "isolate_triage": False, "isolate_archive_findings": False, "isolate_report": True}
RELEASE_NETWORK_ONLY = {"release_triage": False, "release_subnet_containment": False, "release_credentials": False,
                        "release_public_ip": False, "release_network": True, "release_detach": False,
                        "release_protection": False, "release_archive_findings": False, "release_report": True}


def run_slices(lab, playbook, inventories, extra_vars):
    """Every slice's ansible-playbook started at once (AWX's slice jobs with capacity for all); their results."""
    results = [None] * len(inventories)

    def run(index):
        results[index] = lab.run_playbook(playbook, extra_vars=extra_vars, inventory=inventories[index],
                                          expect_rc=None)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inventories))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def enis_now(lab, resources, instances):
    """{eni_id: described ENI} of every compromised instance, read back from AWS."""
    out = {}
    by_source = defaultdict(list)
    for inst in instances.values():
        by_source[(inst["account"], inst["region"])].extend(inst["enis"])
    for (account, region), eni_ids in by_source.items():
        answer = lab.client("ec2", account, region).describe_network_interfaces(NetworkInterfaceIds=eni_ids)
        out.update({n["NetworkInterfaceId"]: n for n in answer["NetworkInterfaces"]})
    return out


def containment_groups(lab, resources):
    """{vpc_id: {group name: [group ids]}} of the isolation and conversion groups in every VPC of the lab."""
    out = defaultdict(lambda: defaultdict(list))
    for (account, region), vpc_id in vpcs(resources).items():
        found = lab.client("ec2", account, region).describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                     {"Name": "group-name", "Values": [ISOLATION, CONVERSION]}])["SecurityGroups"]
        for group in found:
            out[vpc_id][group["GroupName"]].append(group["GroupId"])
        out[vpc_id].setdefault(ISOLATION, [])
        out[vpc_id].setdefault(CONVERSION, [])
    return out


def store_documents(lab):
    """{key: text} of every record document in the S3 incident store."""
    s3 = lab.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="guardduty/records/")
            for o in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode("utf-8") for key in keys}


def moves(entries):
    """{eni_id: [the single group id of each answered ModifyNetworkInterfaceAttribute on it]}."""
    out = defaultdict(list)
    for e in entries:
        if e["action"] == "ModifyNetworkInterfaceAttribute" and e["status"] < 400:
            params = e.get("params") or {}
            groups = [v for k, v in sorted(params.items()) if k.startswith("SecurityGroupId.")]
            out[params["NetworkInterfaceId"]].append(groups[0] if len(groups) == 1 else groups)
    return out


@pytest.fixture(scope="module")
def sliced(lab, tmp_path_factory):
    """The generated incident isolated by 4 slices at once, then released by 4 slices at once."""
    resources = lab.reset(SCENARIO, enis=2)
    lab.client("s3").create_bucket(Bucket=BUCKET)
    tmp = tmp_path_factory.mktemp("awx-slicing")
    instances = compromised(resources)
    slices = [awx_slice(instances, n, SLICES) for n in range(1, SLICES + 1)]
    inventories = [slice_inventory(instances, names, tmp / f"slice-{n}.yml") for n, names in enumerate(slices, 1)]
    before = {eni_id: [g["GroupId"] for g in eni["Groups"]] for eni_id, eni in enis_now(lab, resources, instances).items()}
    reports = tmp / "reports"  # one directory for every slice: a volume mounted into the jobs
    extra = dict(NETWORK_ONLY, incident_id=INCIDENT, isolate_incident_store=STORE, isolate_report_dir=str(reports))
    mark = lab.mark()
    isolate = run_slices(lab, ISOLATE, inventories, extra)
    isolate_journal = lab.journal(mark)
    isolated = enis_now(lab, resources, instances)
    groups_after_isolate = containment_groups(lab, resources)
    store_after_isolate = store_documents(lab)
    index = json.loads((reports / INCIDENT / "report.json").read_text())
    release_extra = dict(RELEASE_NETWORK_ONLY, incident_id=INCIDENT, release_confirm=INCIDENT,
                         release_incident_store=STORE, release_report_dir=str(reports))
    mark = lab.mark()
    release = run_slices(lab, RELEASE, inventories, release_extra)
    release_journal = lab.journal(mark)
    return types.SimpleNamespace(
        lab=lab, resources=resources, instances=instances, slices=slices, before=before, reports=reports,
        isolate=isolate, isolate_journal=isolate_journal, isolated=isolated, groups=groups_after_isolate,
        store=store_after_isolate, index=index, release=release, release_journal=release_journal,
        released=enis_now(lab, resources, instances), store_after_release=store_documents(lab),
        index_after_release=json.loads((reports / INCIDENT / "report.json").read_text()))


def test_the_slices_are_awx_s_every_kth_host_by_name_and_cover_the_inventory_once(sliced):
    names = sorted(sliced.instances)
    assert len(names) == 24 and len({(i["account"], i["region"]) for i in sliced.instances.values()}) == 4
    assert [len(s) for s in sliced.slices] == [6, 6, 6, 6]
    assert sliced.slices[0][:2] == [names[0], names[4]] and sliced.slices[3][-1] == names[23]
    assert sorted(h for s in sliced.slices for h in s) == names  # a partition: each host in exactly one slice
    # every slice spans several VPCs: the slices really race for each VPC's groups
    for hosts in sliced.slices:
        assert len({(sliced.instances[h]["account"], sliced.instances[h]["region"]) for h in hosts}) >= 2


def test_each_slice_s_recap_lists_only_its_hosts_and_all_pass(sliced):
    for number, (hosts, run) in enumerate(zip(sliced.slices, sliced.isolate), 1):
        assert run["rc"] == 0, (number, run["stderr"][-2000:])
        assert sorted(run["stats"]) == sorted(hosts), number
        assert all(s["failures"] == 0 and s["unreachable"] == 0 for s in run["stats"].values()), (number, run["stats"])
    for number, (hosts, run) in enumerate(zip(sliced.slices, sliced.release), 1):
        assert run["rc"] == 0, (number, run["stderr"][-2000:])
        assert sorted(run["stats"]) == sorted(hosts), number
        assert all(s["failures"] == 0 and s["unreachable"] == 0 for s in run["stats"].values()), (number, run["stats"])


def test_one_isolation_group_and_one_conversion_group_per_vpc(sliced):
    assert sorted(sliced.groups) == sorted(vpcs(sliced.resources).values())
    for vpc_id, named in sliced.groups.items():
        assert len(named[ISOLATION]) == 1 and len(named[CONVERSION]) == 1, (vpc_id, dict(named))
    # ... and each was created once: a slice that lost the race used the winner's group
    created = Counter((e["account"], e["region"], (e.get("params") or {}).get("VpcId"), (e.get("params") or {}).get("GroupName"))
                      for e in sliced.isolate_journal if e["action"] == "CreateSecurityGroup" and e["status"] < 400)
    assert sorted(created.values()) == [1] * 8, created


def recoveries(run):
    """{eni_id: instance_id} of the ENIs of other instances this run found on a conversion group and moved on to the
    isolation group (ec2_isolation's conversion_recovery, every batch of the run)."""
    found = {}
    for host in task(run, ISOLATION_TASK).values():
        for item in host.get("results", []):
            for finding in item.get("conversion_recovery") or []:
                if finding.get("moved") and not finding.get("in_run"):
                    found[finding["network_interface_id"]] = finding["instance_id"]
    return found


def test_every_instance_is_contained_exactly_once(sliced):
    groups = sliced.groups
    moved = moves(sliced.isolate_journal)
    # A slice that sees another slice's ENI on the conversion group (between that slice's two moves) finds its
    # instance's lock held and leaves it to that slice: no ENI of another slice is moved (ec2_isolation's
    # conversion_recovery: `held_by`, never `moved`).
    for number, run in enumerate(sliced.isolate, 1):
        assert recoveries(run) == {}, (number, recoveries(run))
    problems = []
    for name, inst in sorted(sliced.instances.items()):
        for eni_id in inst["enis"]:
            eni = sliced.isolated[eni_id]
            isolation, conversion = groups[eni["VpcId"]][ISOLATION][0], groups[eni["VpcId"]][CONVERSION][0]
            now = [g["GroupId"] for g in eni["Groups"]]
            if now != [isolation]:
                problems.append(f"{name} {eni_id}: on {now}, not on its VPC's isolation group {isolation}")
            # moved onto the conversion group, then onto the isolation group, once each, by its own slice
            expected = [conversion, isolation]
            if moved[eni_id] != expected:
                problems.append(f"{name} {eni_id}: moves {moved[eni_id]}, not {expected}")
            if recorded_groups(tags_of(eni)) != sliced.before[eni_id]:
                problems.append(f"{name} {eni_id}: tag record {recorded_groups(tags_of(eni))} != {sliced.before[eni_id]}")
    assert set(moved) == {e for inst in sliced.instances.values() for e in inst["enis"]}  # nothing else moved
    assert not problems, "\n".join(problems)


def test_no_record_is_lost_every_instance_s_record_is_in_the_shared_store(sliced):
    expected = {f"guardduty/records/{i['account']}/{i['region']}/{i['id']}.json": i for i in sliced.instances.values()}
    assert sorted(sliced.store) == sorted(expected)
    for key, text in sliced.store.items():
        document = json.loads(text)
        inst = expected[key]
        assert (document["account_id"], document["region"], document["instance_id"]) == (
            inst["account"], inst["region"], inst["id"])
        network = document["records"]["network"]
        assert sorted(network["enis"]) == sorted(inst["enis"]), key
        for eni_id in inst["enis"]:
            assert network["enis"][eni_id]["groups"] == sliced.before[eni_id], (key, eni_id)


def test_the_incident_s_report_gathers_every_slice(sliced):
    index = sliced.index
    assert index["incident_id"] == INCIDENT
    isolate_runs = [r for r in index["runs"] if r["playbook"] and "isolate" in str(r["run"])]
    assert len(isolate_runs) == SLICES and sum(r["instances"] for r in isolate_runs) == 24, index["runs"]
    states = {i["instance_id"]: i["state"] for i in index["instances"]}
    assert states == {inst["id"]: "contained" for inst in sliced.instances.values()}
    # each run's own report is its slice
    by_run = {r["run"]: r for r in isolate_runs}
    slices_seen = []
    for run in by_run:
        report = json.loads((sliced.reports / INCIDENT / "runs" / run / "report.json").read_text())
        slices_seen.append(sorted(i["host"] for i in report["instances"]))
    assert sorted(slices_seen) == sorted(sorted(s) for s in sliced.slices)
    # after the sliced release, the index has the 8 runs and every instance released
    after = sliced.index_after_release
    assert len(after["runs"]) == 2 * SLICES
    assert {i["instance_id"]: i["state"] for i in after["instances"]} == {
        inst["id"]: "released" for inst in sliced.instances.values()}


def test_sliced_release_restores_every_original_group_exactly_and_empties_the_store(sliced):
    problems = []
    for eni_id, original in sorted(sliced.before.items()):
        eni = sliced.released[eni_id]
        now = [g["GroupId"] for g in eni["Groups"]]
        if now != original:
            problems.append(f"{eni_id}: on {now}, original {original}")
        if recorded_groups(tags_of(eni)) is not None:
            problems.append(f"{eni_id}: record tags left")
    assert not problems, "\n".join(problems)
    moved = moves(sliced.release_journal)
    assert {eni_id: len(m) for eni_id, m in moved.items()} == {eni_id: 1 for eni_id in sliced.before}
    assert sliced.store_after_release == {}
