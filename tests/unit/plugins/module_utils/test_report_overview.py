import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import incident_report as reporting
from ansible_collections.cloudsec.guardduty.plugins.module_utils import report_overview as ov

WEB, APP = "i-0123456789abcdef0", "i-0fedcba9876543210"


def entry(stages, **extra):
    return dict({"host": "web-1", "account_id": "111122223333", "region": "eu-west-1", "stages": stages}, **extra)


@pytest.mark.parametrize("statuses,check_mode,state", [
    ({"snapshots": "changed", "network": "changed"}, False, "contained"),
    ({"network": "ok"}, False, "contained"),  # already isolated by an earlier run
    ({"snapshots": "failed", "network": "changed"}, False, "failed"),
    ({"network": "changed"}, True, "pending"),  # a dry run contains nothing
    ({"scan": "changed"}, False, "pending"),
    ({"release": "changed"}, False, "released"),
    ({"network": "ok", "eradicate": "changed"}, False, "terminated"),
])
def test_instance_state_means_what_was_done_not_changed(statuses, check_mode, state):
    assert ov.instance_state(statuses, check_mode) == state


def test_a_release_run_s_network_step_means_released():
    # roles/release records its ec2_isolation (state released) step as the `isolation` stage
    assert ov.instance_state({"preflight": "ok", "isolation": "changed"}, False, "release") == "released"
    assert ov.instance_state({"preflight": "ok", "isolation": "changed"}, False, "isolate") == "contained"
    assert ov.instance_state({"isolation": "failed"}, False, "release") == "failed"


def test_report_overview_summary_exposure_findings_and_scan():
    report = reporting.build_report("INC-9", {
        WEB: entry({"network": {"changed": True},
                    "scan": {"changed": True, "scan_id": "s-1", "result": "INFECTED", "threats": [{"name": "EICAR-Test-File"}]}},
                   tags={"Name": "web-1", "Team": "<b>pay</b>"},
                   findings=[{"id": "f1", "type": "Backdoor:EC2/C&CActivity.B", "severity": 8.0, "title": "t", "count": 3}]),
        APP: entry({"network": {"error": "eni-1: UnauthorizedOperation"}}, host="app-1", region="us-east-1"),
    }, run={"playbook": "isolate", "started": "2026-12-05T18:00:00.123456+00:00"})
    assert report["run"]["started"] == "2026-12-05T18:00:00Z"
    summary = report["overview"]
    assert summary["states"]["contained"] == 1 and summary["states"]["failed"] == 1
    assert summary["accounts"] == ["111122223333"] and summary["regions"] == ["eu-west-1", "us-east-1"]
    assert summary["exposed"] == [{"instance_id": APP, "name": None, "reasons": ["still on its own security groups (not isolated)"]}]
    web = next(i for i in report["instances"] if i["instance_id"] == WEB)
    assert web["name"] == "web-1" and web["scan"] == {"verdict": "INFECTED", "scan_id": "s-1", "threats": ["EICAR-Test-File"]}
    assert web["findings"][0]["count"] == 3
    steps = "\n".join(report["next_steps"])
    assert "release_confirm=INC-9" in steps and "Malware found on " + WEB in steps and "Rerun" in steps
    page = reporting.render_html(report)
    assert page.index("Executive summary") < page.index("Findings") < page.index("<details>")
    assert "&lt;b&gt;pay&lt;/b&gt;" in page and "<b>pay</b>" not in page
    assert f'<td class="id">{WEB}</td>' in page, "instance ids never wrap"
    assert '<td class="contained">contained</td>' in page and '<td class="failed">failed</td>' in page


def test_run_id_is_the_utc_start_and_the_playbook():
    assert ov.run_id({"started": "2026-12-05T19:00:00+01:00", "playbook": "Isolate potentially compromised EC2 instances"},
                     False) == "20261205T180000Z-isolate"
    assert ov.run_id({"started": "2026-12-05T18:00:00Z", "kind": "release", "playbook": "Release..."}, False) == "20261205T180000Z-release"
    assert ov.run_id({"started": "2026-12-05T18:00:00Z", "playbook": "../../etc"}, True) == "20261205T180000Z-etc-check"
    assert ov.run_id({}, False) == "run-run"


def test_index_current_state_from_the_newest_real_run_and_newest_scan():
    def run(started, check, state, scan=None):
        return {"run": {"started": started}, "check_mode": check, "overview": {"states": {state: 1}},
                "instances": [{"instance_id": WEB, "state": state, "scan": scan, "account_id": "1", "region": "r"}]}
    index = ov.build_index("INC-9", [
        ("a", run("2026-12-01T00:00:00Z", False, "contained")),
        ("b", run("2026-12-02T00:00:00Z", False, "pending", {"verdict": "INFECTED", "threats": []})),  # a scan run
        ("c", run("2026-12-03T00:00:00Z", True, "pending")),  # a dry run after
    ])
    assert [r["run"] for r in index["runs"]] == ["c", "b", "a"]
    (web,) = index["instances"]
    assert web["state"] == "contained" and web["state_run"] == "a" and web["scan"]["verdict"] == "INFECTED"
    assert web["runs"] == 3


def test_report_entries_from_hostvars_and_the_record():
    hostvars = {"web-1": {"instance_id": WEB, "account_id": "1", "region": "r", "guardduty_tags": {"Name": "web-1"},
                          "guardduty_findings": [{"id": "f"}]},
                "localhost": {}}
    entries = ov.report_entries(["web-1", "localhost"], hostvars, {WEB: {"network": {"changed": True}}})
    assert entries == {WEB: {"host": "web-1", "account_id": "1", "region": "r", "stages": {"network": {"changed": True}},
                             "tags": {"Name": "web-1"}, "findings": [{"id": "f"}], "detector_id": None}}
