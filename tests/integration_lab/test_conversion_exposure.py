"""Exposure on the conversion group under faults (10% throttling, 2% 5xx on every call): isolation moves go
first. From the lab's journal: no move onto a conversion group reaches AWS while another ENI, already
moved there, waits for its move onto the isolation group (its answer, a retry, a backoff). The time each
ENI spent on the conversion group is printed (make bench-conversion measures it; a test asserts no timing).
"""

from tests.integration_lab.reliability_lab import MODULE
from tests.integration_lab.reliability_lab import assert_isolated
from tests.integration_lab.reliability_lab import build_fleet
from tests.integration_lab.reliability_lab import containment_groups
from tests.integration_lab.reliability_lab import conversion_windows
from tests.integration_lab.reliability_lab import conversions_while_isolation_waits
from tests.integration_lab.reliability_lab import demo_fleet
from tests.integration_lab.reliability_lab import eni_groups
from tests.integration_lab.reliability_lab import percentile

FAULTS = {"throttle_rate": 0.10, "error_rate": 0.02, "seed": 23}


def test_no_conversion_goes_out_while_an_isolation_move_waits_under_throttling_and_5xx(lab):
    lab.reset("demo")
    fleet = build_fleet(lab, 28, seed=23)
    fleet.update(demo_fleet(lab))
    originals = eni_groups(lab, [e for enis in fleet.values() for e in enis])
    lab.faults(FAULTS)
    mark = lab.mark()
    result = lab.run_module(MODULE, {"instance_ids": list(fleet), "incident_id": "IR-EXPOSURE", "max_concurrency": 8})
    entries = lab.journal(mark)
    lab.faults({})
    assert not result.get("failed"), result.get("msg")
    assert_isolated(lab, fleet, originals, incident_id="IR-EXPOSURE")
    groups = containment_groups(lab)
    conversion = {v["conversion"] for v in groups.values()}
    isolation = {v["isolation"] for v in groups.values()}
    refused = [e for e in entries if e["action"] == "ModifyNetworkInterfaceAttribute" and e["outcome"] != "ok"]
    assert any(e["params"]["SecurityGroupId.1"] in isolation for e in refused), "no isolation move was refused"

    windows = conversion_windows(entries, conversion, isolation)
    assert set(windows) == set(originals) and all(closed is not None for _opened, closed in windows.values())
    dwell = [closed - opened for opened, closed in windows.values()]
    print(f"\n{len(dwell)} ENIs on the conversion group: median {percentile(dwell, 0.5):.3f} s, "
          f"p99 {percentile(dwell, 0.99):.3f} s, max {max(dwell):.3f} s; {len(refused)} moves refused")
    violations = conversions_while_isolation_waits(entries, conversion, isolation)
    assert violations == [], [(c["params"]["NetworkInterfaceId"], c["started"], other) for c, other in violations[:10]]
