"""One instance, one operation at a time: an isolate and a release of the same instances, run together with
AWS-like answer times (lab latency 80-200 ms), never lose a record.

Each trial starts two ec2_isolation runs on the same 12-instance fleet (1-3 ENIs each, two VPCs): the
operation the fleet's state calls for first, the opposite one 0-1 s later, so the second run starts
while the first is describing, recording or moving. After each trial, read from AWS: every ENI is either
on its VPC's isolation group with a record equal to its original groups, or on its original groups with no
record; every instance's tag says the state its ENIs are in; no ENI on a conversion group.
20 trials: 12 where the second run waits for the lock (the default) and both converge, 8 where the second
refuses at once (lock_timeout: 0), naming the instance and the operation that holds it.
"""

import importlib.util
import random
import threading
import time

from tests.integration_lab.reliability_lab import (
    build_fleet, containment_groups, describe_enis, eni_groups, instance_tags, recorded_groups, restore_pristine, tags_of)
from tests.lab.pytest_plugin import REPO

MODULE = "cloudsec.guardduty.ec2_isolation"
# The lock module itself, for the S3 lease tests. It imports the collection's aws_calls, found through the collection
# path tests/lab/pytest_plugin.py puts on sys.path.
_spec = importlib.util.spec_from_file_location("instance_lock", REPO / "plugins/module_utils/instance_lock.py")
il = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(il)
LATENCY_MS = [80, 200]
LOCK_REFUSAL = "holds the lock on this instance; nothing was changed"
OPPOSITE = {"isolated": "released", "released": "isolated"}
ISOLATE = {"operation": "isolate", "pid": 4242, "host": "ctl-1", "started": "2026-12-05T19:00:00Z"}
RELEASE = {"operation": "release", "pid": 4343, "host": "ctl-2", "started": "2026-12-05T19:00:01Z"}


def fleet_state(lab, fleet, originals):
    """({instance_id: "isolated" | "released"}, [problems]) read from AWS."""
    groups = containment_groups(lab)
    described = describe_enis(lab, [e for enis in fleet.values() for e in enis])
    tags = instance_tags(lab, fleet)
    on_conversion = {g["conversion"] for g in groups.values() if "conversion" in g}
    states, problems = {}, []
    for instance_id, enis in fleet.items():
        seen = set()
        for eni_id in enis:
            eni = described[eni_id]
            now, record = [g["GroupId"] for g in eni["Groups"]], recorded_groups(tags_of(eni))
            isolation = groups.get(eni["VpcId"], {}).get("isolation")
            if now == [isolation] and record == originals[eni_id]:
                seen.add("isolated")
            elif now == originals[eni_id] and record is None:
                seen.add("released")
            else:
                where = "the conversion group" if set(now) & on_conversion else now
                problems.append(f"{eni_id} of {instance_id}: on {where} with record {record} "
                                f"(original {originals[eni_id]})")
        tag = tags[instance_id].get("guardduty:isolation")
        if len(seen) > 1:
            problems.append(f"{instance_id}: some ENIs isolated, some restored")
        elif seen and tag != next(iter(seen)) and not (tag is None and seen == {"released"}):  # never isolated
            problems.append(f"{instance_id}: tagged {tag} while its ENIs are {next(iter(seen))}")
        states[instance_id] = next(iter(seen)) if len(seen) == 1 else None
    return states, problems


def race(lab, fleet, first, delay, **args):
    """Start `first` on the fleet, the opposite operation `delay` s later; both results, in that order."""
    outcomes = {}

    def run(state, wait):
        time.sleep(wait)
        outcomes[state] = lab.run_module(MODULE, dict({"instance_ids": list(fleet), "state": state}, **args),
                                         expect_rc=None)

    threads = [threading.Thread(target=run, args=(first, 0)),
               threading.Thread(target=run, args=(OPPOSITE[first], delay))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes[first], outcomes[OPPOSITE[first]]


def set_up_fleet(lab, seed):
    lab.reset("demo")
    fleet = build_fleet(lab, 12, seed)
    originals = eni_groups(lab, [e for enis in fleet.values() for e in enis])
    first = lab.run_module(MODULE, {"instance_ids": list(fleet)})
    assert not first.get("failed"), first.get("msg")
    lab.faults({"latency_ms": LATENCY_MS, "seed": seed})
    return fleet, originals


def refusals(outcome):
    """{instance_id: error} of a run's failed instances."""
    return {i: r["error"]["message"] for i, r in (outcome.get("instances") or {}).items() if r.get("error")}


def bring_to(lab, fleet, originals, state):
    """The fleet all `state`, by a plain run; after a trial that broke it, from the originals put back by hand."""
    states, problems = fleet_state(lab, fleet, originals)
    if problems:
        restore_pristine(lab, fleet, originals)
        states = {i: "released" for i in fleet}
    if set(states.values()) != {state}:
        lab.run_module(MODULE, {"instance_ids": list(fleet), "state": state})


def run_trials(lab, fleet, originals, firsts, seed, **args):
    """Every trial's problems (empty when none), and the refusals seen. `firsts`: the operation started
    first in each trial; the fleet is first brought to the state that operation undoes (a plain run, no
    race) when the previous trial did not leave it there."""
    rng = random.Random(seed)
    bad, refused = [], []
    for trial, first in enumerate(firsts):
        bring_to(lab, fleet, originals, OPPOSITE[first])
        one, two = race(lab, fleet, first, round(rng.uniform(0.0, 1.0), 2), **args)
        states, problems = fleet_state(lab, fleet, originals)
        for outcome in (one, two):
            errors = refusals(outcome)
            refused.extend(errors.values())
            problems += [f"{error} (not a lock refusal)" for error in errors.values() if LOCK_REFUSAL not in error]
            if outcome.get("failed") and not errors:
                problems.append(f"run failed without an instance error: {outcome.get('msg')}")
        if problems:
            bad.append(f"trial {trial} ({first} then {OPPOSITE[first]}):\n  " + "\n  ".join(problems))
    return bad, refused


def test_isolate_and_release_racing_wait_for_each_other_and_lose_no_record(lab):
    fleet, originals = set_up_fleet(lab, seed=14)
    # The second run waits and then wins, so the fleet ends in its state: release racing a later isolate
    # six times from isolated, then isolate racing a later release six times from released.
    bad, refused = run_trials(lab, fleet, originals, ["released"] * 6 + ["isolated"] * 6, seed=14)
    assert not bad, f"{len(bad)} of 12 trials lost records or left instances inconsistent:\n" + "\n".join(bad)
    assert refused == []  # the default lock_timeout outwaits the other run: both converge
    states, _ = fleet_state(lab, fleet, originals)
    assert set(states.values()) == {"released"}  # the later run planned from what the earlier one left


def test_isolate_and_release_racing_the_loser_refuses_by_name(lab):
    fleet, originals = set_up_fleet(lab, seed=41)
    # The first run wins, so the fleet ends in its state: trials alternate by themselves.
    bad, refused = run_trials(lab, fleet, originals, ["released", "isolated"] * 4, seed=41, lock_timeout=0)
    assert not bad, f"{len(bad)} of 8 trials lost records or left instances inconsistent:\n" + "\n".join(bad)
    assert refused, "no trial overlapped: the refusal path was not exercised"
    assert all(error.startswith("i-") and ("another operation (isolate, pid " in error
                                           or "another operation (release, pid " in error) for error in refused), refused


# -- across controllers: the S3 incident store -------------------------------------------------------
def s3_leases(lab, bucket, prefix=""):
    listed = lab.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_s3_lease_refuses_a_second_controller_and_is_taken_over_only_after_expiry(lab):
    lab.reset("empty")
    lab.client("s3").create_bucket(Bucket="security-incidents")
    now = [1000.0]
    first = il.S3Locks(lab.client("s3"), "security-incidents", "store", clock=lambda: now[0])
    second = il.S3Locks(lab.client("s3"), "security-incidents", "store", clock=lambda: now[0])
    name = il.lock_name("123456789012", "us-east-1", "i-0123456789abcdef0")
    assert first.try_take(name, ISOLATE) is None
    assert s3_leases(lab, "security-incidents") == [f"store/{name}"]
    assert second.try_take(name, RELEASE) == dict(ISOLATE, expires=1000.0 + il.LEASE_SECONDS)
    now[0] += il.LEASE_SECONDS + 1  # the first controller died without giving it back
    assert second.try_take(name, RELEASE) is None
    first.give_back(name)  # its lease was taken over: not its to delete
    assert first.lost == [name] and s3_leases(lab, "security-incidents") == [f"store/{name}"]
    second.close()
    assert s3_leases(lab, "security-incidents") == []


def test_module_refuses_an_instance_whose_s3_lease_another_controller_holds(demo):
    demo.client("s3").create_bucket(Bucket="security-incidents")
    web, healthy = demo.instance("web-1")["id"], demo.instance("healthy-1")["id"]
    other = il.S3Locks(demo.client("s3"), "security-incidents", "inc-42")
    assert other.try_take(il.lock_name("123456789012", "us-east-1", web), RELEASE) is None
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web, healthy], "lock_timeout": 0,
                                      "incident_store": "s3://security-incidents/inc-42"}, expect_rc=(2,))
    by_id = result["instances"]
    assert by_id[web]["error"]["message"] == (f"{web}: TakeLock: another operation (release, pid 4343 on ctl-2, started "
                                   f"2026-12-05T19:00:01Z) holds the lock on this instance; nothing was changed")
    assert by_id[healthy]["state"] == "isolated"
    ec2_writes = [e for e in demo.journal(mark, service="ec2") if not e["action"].startswith(("Describe", "Get"))]
    assert ec2_writes and not any(web in str(e["params"].values()) or any(eni in str(e["params"].values())
                                  for eni in demo.instance("web-1")["enis"]) for e in ec2_writes)
    # Its own leases are gone at the end; the other controller's is still there.
    # (The healthy instance's incident record now also lives in the store, under inc-42/records/.)
    assert s3_leases(demo, "security-incidents", "inc-42/locks/") == [f"inc-42/locks/123456789012/us-east-1/{web}.lock"]
    other.close()


def test_an_eni_a_live_run_is_between_its_two_moves_is_left_to_that_run_then_finished_once_it_is_gone(demo):
    """Another run (an AWX slice, a second responder) holds web-1's lock while web-1's ENI is on the conversion
    group: a run over app-1, in the same VPC, must not move it a second time nor warn that a run stopped. Once that
    run is gone (its lock given back), the ENI is stranded: the next run finishes it, once."""
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    web_eni = demo.instance("web-1")["enis"][0]
    assert demo.run_module(MODULE, {"instance_ids": [web], "incident_id": "IR-LIVE"})["instances"][web]["state"] == "isolated"
    groups = containment_groups(demo)
    vpc = describe_enis(demo, [web_eni])[web_eni]["VpcId"]
    conversion, isolation = groups[vpc]["conversion"], groups[vpc]["isolation"]
    other = il.DirectoryLocks(demo.incident_store)  # the other run: its lock, then its first move (its record stays)
    assert other.try_take(il.lock_name("123456789012", "us-east-1", web), ISOLATE) is None
    demo.client("ec2").modify_network_interface_attribute(NetworkInterfaceId=web_eni, Groups=[conversion])

    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [app], "incident_id": "IR-LIVE"})
    assert result["instances"][app]["state"] == "isolated", result.get("msg")
    moved = [e["params"]["NetworkInterfaceId"] for e in demo.journal(mark) if e["action"] == "ModifyNetworkInterfaceAttribute"]
    assert web_eni not in moved and sorted(set(moved)) == sorted(demo.instance("app-1")["enis"])
    assert eni_groups(demo, [web_eni])[web_eni] == [conversion]  # still the other run's, mid-move
    (finding,) = [f for f in result["conversion_recovery"] if f["network_interface_id"] == web_eni]
    assert finding["held_by"] == "isolate, pid 4242 on ctl-1, started 2026-12-05T19:00:00Z"
    assert finding["action"] == "left to the run holding its instance's lock" and not finding.get("moved")
    assert web_eni not in " ".join(result.get("warnings") or [])

    other.close()  # that run died between its two moves: now the ENI is stranded
    mark = demo.mark()
    again = demo.run_module(MODULE, {"instance_ids": [app], "incident_id": "IR-LIVE"})
    moves = [e for e in demo.journal(mark) if e["action"] == "ModifyNetworkInterfaceAttribute"]
    assert [(e["params"]["NetworkInterfaceId"], e["params"]["SecurityGroupId.1"]) for e in moves] == [(web_eni, isolation)]
    assert eni_groups(demo, [web_eni])[web_eni] == [isolation]
    (finding,) = [f for f in again["conversion_recovery"] if f["network_interface_id"] == web_eni]
    assert finding["moved"] and "held_by" not in finding
    assert any(web_eni in w and "moved on to the isolation group" in w for w in again["warnings"])
    # web-1's lock was taken for the recovery and given back: a run over web-1 gets it at once
    assert demo.run_module(MODULE, {"instance_ids": [web], "lock_timeout": 0, "incident_id": "IR-LIVE"})[
        "instances"][web]["state"] == "isolated"
