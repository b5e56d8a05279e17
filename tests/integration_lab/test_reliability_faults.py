"""Isolation under the faults of a busy AWS: 10% throttling and 2% 5xx on every API call.

A batch of generated instances (1 to 3 ENIs each, in two VPCs, varied original groups) plus the demo's
instances: every instance ends isolated in AWS, no ENI stays on the conversion group, the record holds the
groups read before the run, a rerun changes nothing and makes no write call, and release restores each
ENI's exact original groups, faults still on.
"""

import pytest

from tests.integration_lab.reliability_lab import MODULE
from tests.integration_lab.reliability_lab import assert_isolated
from tests.integration_lab.reliability_lab import assert_released
from tests.integration_lab.reliability_lab import build_fleet
from tests.integration_lab.reliability_lab import demo_fleet
from tests.integration_lab.reliability_lab import eni_groups
from tests.integration_lab.reliability_lab import writes

FAULTS = {"throttle_rate": 0.10, "error_rate": 0.02}  # on every service the lab serves


@pytest.mark.parametrize("seed", [11])
def test_batch_isolates_converges_and_releases_under_throttling_and_5xx(lab, seed):
    lab.reset("demo")
    fleet = build_fleet(lab, 28, seed)
    fleet.update(demo_fleet(lab))
    originals = eni_groups(lab, [e for enis in fleet.values() for e in enis])
    assert len(originals) >= 50  # the batch really has secondary ENIs
    lab.faults(dict(FAULTS, seed=seed))
    ids = list(fleet)

    mark = lab.mark()
    result = lab.run_module(MODULE, {"instance_ids": ids, "incident_id": "IR-FAULTS", "max_concurrency": 8})
    entries = lab.journal(mark)
    injected = [e for e in entries if e["injected"] in ("throttle", "server_error")]
    assert {e["injected"] for e in injected} == {"throttle", "server_error"}, "the faults did not bite"
    assert any(is_mutating for is_mutating in (e in writes(entries) for e in injected)), "no write call was hit"
    assert result["changed"] is True and not result.get("failed"), result.get("msg")
    assert sorted(result["instances"]) == sorted(ids)  # by instance id
    assert all(r["state"] == "isolated" and r["error"] is None for r in result["instances"].values())
    assert_isolated(lab, fleet, originals, incident_id="IR-FAULTS")

    # The rerun, faults still on: nothing to change, and no write call at all.
    lab.faults(dict(FAULTS, seed=seed + 1))
    mark = lab.mark()
    again = lab.run_module(MODULE, {"instance_ids": ids, "incident_id": "IR-FAULTS"})
    assert again["changed"] is False and again["plan"] == []
    assert all(not r["changed"] and r["state"] == "isolated" for r in again["instances"].values())
    assert writes(lab.journal(mark)) == []
    assert_isolated(lab, fleet, originals, incident_id="IR-FAULTS")

    # Release under the same faults: every ENI back on exactly its original groups, in order.
    lab.faults(dict(FAULTS, seed=seed + 2))
    released = lab.run_module(MODULE, {"instance_ids": ids, "state": "released"})
    assert all(r["state"] == "released" for r in released["instances"].values()), released.get("msg")
    assert_released(lab, fleet, originals)
    assert lab.faults()["counts"]["throttled"] > 0
