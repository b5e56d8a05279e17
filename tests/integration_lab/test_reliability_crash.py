"""The controller killed mid-run (SIGKILL to ansible-playbook's whole process group, as a crashed or
interrupted responder laptop would be), at a point chosen per seed: after the k-th successful EC2 write
call the lab's journal shows. Whatever the point:
  - no ENI was moved without its record of original groups already written;
  - the rerun converges: every instance isolated, no ENI left on the conversion group, the record intact;
  - release then restores each ENI's exact original groups, in order (checked after the last seed; after
    each seed the record release reads is checked equal to the groups read before the first run).
The seeds share one lab reset: between them the fleet is put back as it was (operator calls).
"""

import random
import time

from tests.integration_lab.reliability_lab import MODULE
from tests.integration_lab.reliability_lab import assert_isolated
from tests.integration_lab.reliability_lab import assert_never_open_without_record
from tests.integration_lab.reliability_lab import assert_released
from tests.integration_lab.reliability_lab import build_fleet
from tests.integration_lab.reliability_lab import eni_groups
from tests.integration_lab.reliability_lab import is_write
from tests.integration_lab.reliability_lab import module_playbook
from tests.integration_lab.reliability_lab import restore_pristine
from tests.integration_lab.reliability_lab import run_and_kill

SEEDS = (3, 17, 42)


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
        mark = lab.mark()
        killed, seen, returncode = run_and_kill(lab, module_playbook(args), k, since=mark)
        assert killed, f"seed {seed}: the run ended (rc={returncode}) before {k} writes; lower the kill point"
        time.sleep(0.5)  # a request in flight when the controller died still reaches AWS
        done = [e for e in lab.journal(mark) if is_write(e) and e["outcome"] == "ok"]
        kill_points.add((seed, k, seen, done[-1]["action"]))
        assert_never_open_without_record(lab, fleet, originals)

        rerun = lab.run_module(MODULE, args)
        assert not rerun.get("failed"), f"seed {seed}, killed after {seen} writes: {rerun.get('msg')}"
        assert all(r["state"] == "isolated" for r in rerun["instances"])
        assert_isolated(lab, fleet, originals, incident_id="IR-CRASH")  # the record release reads is intact
    print(f"\nkill points (seed, k, writes seen at the kill, last write): {sorted(kill_points)}")
    # Release after the last crashed-and-rerun run: each ENI's exact original groups, in order.
    released = lab.run_module(MODULE, {"instance_ids": ids, "state": "released"})
    assert all(r["state"] == "released" for r in released["instances"]), released.get("msg")
    assert_released(lab, fleet, originals)
    assert len({k for _seed, k, _seen, _action in kill_points}) == len(SEEDS), kill_points
