"""incident_report's incident index when runs of one incident finish together (AWX job slices, one report directory).

Each run writes its own report, then rebuilds the index from every run's report. Here a second run's report
lands while the first run is writing the index from what it had read before: the index the first run leaves
must still hold both runs (the other run, finished earlier, does not write the index again).
"""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cloudsec.guardduty.plugins.module_utils import incident_report as reporting
from ansible_collections.cloudsec.guardduty.plugins.modules import incident_report

INSTANCE = {"host": "web-1", "account_id": "123456789012", "region": "us-east-1",
            "stages": {"isolation": {"changed": True}}}


def run_module(args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            incident_report.main()


def test_a_run_finishing_while_the_index_is_written_is_in_the_index(tmp_path, monkeypatch):
    runs = tmp_path / "INC-1" / "runs"
    other = reporting.build_report("INC-1", {"i-0fedcba9876543210": dict(INSTANCE, host="app-1")},
                                   run={"kind": "isolate", "started": "2026-12-05T19:00:00Z"})
    written = []
    real_write = incident_report.write_atomic

    def write_atomic(directory, name, data):
        # the other slice's report lands after this run read the runs, before it wrote its index
        if directory == str(tmp_path / "INC-1") and not written:
            (runs / "20261205T190000Z-isolate-2").mkdir(mode=0o700)
            real_write(str(runs / "20261205T190000Z-isolate-2"), "report.json",
                       reporting.render_json(other).encode("utf-8"))
            written.append(True)
        real_write(directory, name, data)

    monkeypatch.setattr(incident_report, "write_atomic", write_atomic)
    run_module({"incident_id": "INC-1", "report_dir": str(tmp_path), "formats": ["json"],
                "run": {"kind": "isolate", "started": "2026-12-05T19:00:00Z"},
                "instances": {"i-0123456789abcdef0": INSTANCE}})
    index = json.loads((tmp_path / "INC-1" / "report.json").read_text())
    assert sorted(r["run"] for r in index["runs"]) == ["20261205T190000Z-isolate", "20261205T190000Z-isolate-2"]
    assert sorted(i["instance_id"] for i in index["instances"]) == ["i-0123456789abcdef0", "i-0fedcba9876543210"]
