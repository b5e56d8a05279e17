"""The controller killed mid-run, as a crashed or interrupted responder laptop would be: SIGKILL of
ansible-playbook and of every process under it, the module's worker included (ansible-core 2.19's worker
calls setsid(): killing the process group alone lets the module finish, which is not a crash).

Kill points: after the k-th successful EC2 write call the lab's journal shows (a point chosen per seed,
with 10% throttling and 2% 5xx on, as a busy EC2 answers), or, to be sure to catch ENIs between their two
moves, while the isolation moves are being throttled. Whatever the point:
  - no ENI was moved without its record of original groups already written;
  - ENIs may be left on the all-traffic conversion group (the exposure a crash leaves, docs/reliability.md);
  - the next run finds them and says so by ENI and instance, whether they are in its instance list (rerun)
    or not (a run over other instances in the same VPCs): isolate and release move them on to the
    isolation group, and no ENI is left on a conversion group;
  - the rerun converges, and release then restores each ENI's exact original groups, in order.
"""

import random
import time

from tests.integration_lab.reliability_lab import MODULE
from tests.integration_lab.reliability_lab import process_alive
from tests.integration_lab.reliability_lab import assert_isolated
from tests.integration_lab.reliability_lab import assert_never_open_without_record
from tests.integration_lab.reliability_lab import assert_released
from tests.integration_lab.reliability_lab import build_fleet
from tests.integration_lab.reliability_lab import containment_groups
from tests.integration_lab.reliability_lab import describe_enis
from tests.integration_lab.reliability_lab import eni_groups
from tests.integration_lab.reliability_lab import is_write
from tests.integration_lab.reliability_lab import mentions
from tests.integration_lab.reliability_lab import module_playbook
from tests.integration_lab.reliability_lab import recorded_groups
from tests.integration_lab.reliability_lab import restore_pristine
from tests.integration_lab.reliability_lab import run_and_kill
from tests.integration_lab.reliability_lab import tags_of

SEEDS = (3, 17, 42)
FAULTS = {"throttle_rate": 0.10, "error_rate": 0.02}


def on_conversion(lab):
    """{eni_id: groups} of every ENI on a conversion group now, read from AWS."""
    conversions = [v["conversion"] for v in containment_groups(lab).values() if "conversion" in v]
    if not conversions:
        return {}
    found = lab.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "group-id", "Values": conversions}])["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: [g["GroupId"] for g in e["Groups"]] for e in found}


def warnings_of(result):
    return " ".join(result.get("warnings") or []) + " " + " ".join(
        w for r in (result.get("instances") or {}).values() for w in r.get("warnings") or [])


def test_killed_controller_rerun_converges_and_release_restores_exactly(lab):
    lab.reset("demo")
    fleet = build_fleet(lab, 12, seed=5)
    ids = list(fleet)
    originals = eni_groups(lab, [e for enis in fleet.values() for e in enis])
    args = {"instance_ids": ids, "incident_id": "IR-CRASH", "max_concurrency": 4}
    # Writes of a full run: 4 group creations, their rules, records, 2 moves per ENI, the instance tags.
    full_run_writes = 2 * len(originals) + len(originals) // 2
    kill_points = set()
    for seed in SEEDS:
        # Early (groups being made), middle (records and moves) and late (moves) crash points.
        k = random.Random(seed).randint(1, full_run_writes)
        restore_pristine(lab, fleet, originals)
        lab.faults(dict(FAULTS, seed=seed))
        mark = lab.mark()
        killed, seen, returncode, pids = run_and_kill(lab, module_playbook(args), k, since=mark)
        assert killed, f"seed {seed}: the run ended (rc={returncode}) before {k} writes; lower the kill point"
        assert len(pids) >= 3 and not any(process_alive(p) for p in pids), pids  # playbook, worker, module
        lab.faults({})
        time.sleep(0.5)  # a request in flight when the controller died still reaches AWS
        settled = lab.mark()
        time.sleep(0.5)
        assert lab.journal(settled) == [], "the module kept calling AWS after the kill"
        done = [e for e in lab.journal(mark) if is_write(e) and e["outcome"] == "ok"]
        stuck = on_conversion(lab)
        kill_points.add((seed, k, seen, done[-1]["action"], len(stuck)))
        assert_never_open_without_record(lab, fleet, originals)

        rerun = lab.run_module(MODULE, args)
        assert not rerun.get("failed"), f"seed {seed}, killed after {seen} writes: {rerun.get('msg')}"
        assert all(r["state"] == "isolated" for r in rerun["instances"].values())
        for eni_id in stuck:  # recovery is visible: each ENI found on the conversion group is named
            assert eni_id in warnings_of(rerun), f"seed {seed}: {eni_id} left on the conversion group, not reported"
        assert_isolated(lab, fleet, originals, incident_id="IR-CRASH")  # and no ENI left on a conversion group
    print(f"\nkill points (seed, k, writes seen at the kill, last write, ENIs left on the conversion group): "
          f"{sorted(kill_points)}")
    # Release after the last crashed-and-rerun run: each ENI's exact original groups, in order.
    released = lab.run_module(MODULE, {"instance_ids": ids, "state": "released"})
    assert all(r["state"] == "released" for r in released["instances"].values()), released.get("msg")
    assert_released(lab, fleet, originals)
    assert len({k for _seed, k, *_rest in kill_points}) == len(SEEDS), kill_points


def kill_while_isolation_moves_wait(lab, fleet, args):
    """Run isolate over `fleet` with every move to an isolation group throttled, and kill the controller
    once two of them were refused: the ENIs converted by then wait in backoff on the conversion group."""
    isolation_groups = [v["isolation"] for v in containment_groups(lab).values()]
    lab.faults({"forced": [{"action": "ModifyNetworkInterfaceAttribute", "resource": g, "code": "RequestLimitExceeded",
                            "status": 503, "count": 10000} for g in isolation_groups]})
    mark = lab.mark()

    def refused_isolation_move(entry):
        return (entry["action"] == "ModifyNetworkInterfaceAttribute" and entry["injected"] == "forced"
                and any(mentions(entry, g) for g in isolation_groups))

    killed, _seen, returncode, _pids = run_and_kill(lab, module_playbook(args), 2, since=mark,
                                                    counted=refused_isolation_move)
    assert killed, f"the run ended (rc={returncode}) before an isolation move was refused"
    lab.faults({})
    time.sleep(0.5)
    stuck = on_conversion(lab)
    assert stuck, "the kill left no ENI on the conversion group: the module was not killed"
    fleet_enis = {e for enis in fleet.values() for e in enis}
    assert set(stuck) <= fleet_enis
    return stuck


def test_a_run_over_other_instances_finishes_enis_a_killed_run_left_on_the_conversion_group(lab):
    lab.reset("demo")
    fleet = build_fleet(lab, 6, seed=8)
    originals = eni_groups(lab, [e for enis in fleet.values() for e in enis])
    owner = {e: i for i, enis in fleet.items() for e in enis}
    app = lab.instance("app-1")["id"]  # ENIs in the prod and shared VPCs: both get their group pair
    first = lab.run_module(MODULE, {"instance_ids": [app], "incident_id": "IR-OTHER"})
    assert next(iter(first["instances"].values()))["state"] == "isolated", first.get("msg")
    groups = containment_groups(lab)
    args = {"instance_ids": list(fleet), "incident_id": "IR-CRASH", "max_concurrency": 4}

    # Release of another instance, after a kill: the stuck ENIs go on to the isolation group, named.
    stuck = kill_while_isolation_moves_wait(lab, fleet, args)
    assert_never_open_without_record(lab, fleet, originals)
    mark = lab.mark()
    released = lab.run_module(MODULE, {"instance_ids": [app], "state": "released"})
    assert next(iter(released["instances"].values()))["state"] == "released", released.get("msg")
    assert on_conversion(lab) == {}
    text = warnings_of(released)
    for eni_id in stuck:
        assert eni_id in text and owner[eni_id] in text, text
    recovered = {r["network_interface_id"]: r for r in released["conversion_recovery"]}
    assert set(recovered) == set(stuck)
    described = describe_enis(lab, list(stuck))
    for eni_id, eni in described.items():
        assert [g["GroupId"] for g in eni["Groups"]] == [groups[eni["VpcId"]]["isolation"]]
        assert recorded_groups(tags_of(eni)) == originals[eni_id]  # the record stays for release
        assert recovered[eni_id]["instance_id"] == owner[eni_id] and recovered[eni_id]["error"] is None
    moves = [e for e in lab.journal(mark) if e["action"] == "ModifyNetworkInterfaceAttribute"]
    assert {e["params"]["NetworkInterfaceId"] for e in moves} >= set(stuck)

    # Isolate of another instance, after a second kill: the same.
    restore_pristine(lab, fleet, originals)  # groups too: the next run creates them again
    lab.run_module(MODULE, {"instance_ids": [app], "incident_id": "IR-OTHER"})
    groups = containment_groups(lab)
    stuck = kill_while_isolation_moves_wait(lab, fleet, args)
    web = lab.instance("web-1")["id"]
    other = lab.run_module(MODULE, {"instance_ids": [web], "incident_id": "IR-OTHER"})
    assert next(iter(other["instances"].values()))["state"] == "isolated", other.get("msg")
    assert on_conversion(lab) == {}
    text = warnings_of(other)
    for eni_id in stuck:
        assert eni_id in text and owner[eni_id] in text, text
    for eni_id, eni in describe_enis(lab, list(stuck)).items():
        assert [g["GroupId"] for g in eni["Groups"]] == [groups[eni["VpcId"]]["isolation"]]
        assert recorded_groups(tags_of(eni)) == originals[eni_id]

    # The crashed run's own instances: a rerun finishes them and release restores them exactly.
    rerun = lab.run_module(MODULE, args)
    assert not rerun.get("failed"), rerun.get("msg")
    assert_isolated(lab, fleet, originals, incident_id="IR-CRASH")
    released = lab.run_module(MODULE, {"instance_ids": list(fleet), "state": "released"})
    assert all(r["state"] == "released" for r in released["instances"].values()), released.get("msg")
    assert_released(lab, fleet, originals)

    # Killed again; the rerun over the same instances names each ENI it found on the conversion group and
    # moves it straight on to the isolation group (no second conversion move).
    groups = containment_groups(lab)
    stuck = kill_while_isolation_moves_wait(lab, fleet, args)
    mark = lab.mark()
    rerun = lab.run_module(MODULE, args)
    assert not rerun.get("failed"), rerun.get("msg")
    for eni_id in stuck:
        assert eni_id in warnings_of(rerun), warnings_of(rerun)
        moves = [e["params"] for e in lab.journal(mark) if e["action"] == "ModifyNetworkInterfaceAttribute"
                 and e["params"]["NetworkInterfaceId"] == eni_id]
        vpc = [v for v in groups.values() if v["conversion"] in stuck[eni_id]][0]
        assert moves == [{"NetworkInterfaceId": eni_id, "SecurityGroupId.1": vpc["isolation"]}], moves
    assert_isolated(lab, fleet, originals, incident_id="IR-CRASH")
    released = lab.run_module(MODULE, {"instance_ids": list(fleet), "state": "released"})
    assert_released(lab, fleet, originals)
