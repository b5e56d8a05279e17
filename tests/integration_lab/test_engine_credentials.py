"""The run's engine keeps the responder roles' credentials out of facts, results and logs, and forgets them at the
end of the run (plugins/action/batch_stage.py: a 0600 file of the controller; batch_outcome removes it)."""

import json
import pathlib

from tests.integration_lab.playbook_results import responder_sessions

REPO = pathlib.Path(__file__).resolve().parents[2]
INVENTORY = str(REPO / "docs/examples/lab.guardduty.yml")
MOTO_SESSION_TOKEN = "FQoGZXIvYXdzE"  # how every session token moto's AssumeRole returns begins


def test_the_assumed_credentials_are_never_shown_and_not_left_on_the_controller(lab, tmp_path, monkeypatch):
    lab.reset("demo")
    controller_tmp = tmp_path / "controller-tmp"
    controller_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(controller_tmp))
    mark = lab.mark()
    run = lab.run_playbook(str(REPO / "playbooks/scan.yml"), inventory=INVENTORY, limit="web-1,worker-1", check=True,
                           extra_vars={"incident_id": "INC-CREDS", "scan_report_dir": str(tmp_path / "reports")})
    sessions = responder_sessions(lab.journal(mark))
    assert sessions and {s["params"].get("RoleSessionName") for s in sessions} == {"cloudsec-guardduty-INC-CREDS"}
    shown = json.dumps(run)
    assert MOTO_SESSION_TOKEN not in shown and MOTO_SESSION_TOKEN not in run.get("stderr", "")
    assert list(controller_tmp.glob("cloudsec-guardduty-run-*")) == []
    assert all(s["failures"] == 0 for s in run["stats"].values()), run["stats"]


def test_a_run_whose_every_host_fails_forgets_the_credentials_too(lab, tmp_path, monkeypatch):
    lab.reset("demo")
    controller_tmp = tmp_path / "controller-tmp"
    controller_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(controller_tmp))
    run = lab.run_playbook(str(REPO / "playbooks/eradicate.yml"), inventory=INVENTORY, limit="worker-1", expect_rc=(2,),
                           extra_vars={"incident_id": "INC-CREDS", "eradicate_report_dir": str(tmp_path / "reports")})
    assert run["stats"]["worker-1"]["failures"] == 1  # refused: no eradicate_confirm
    assert list(controller_tmp.glob("cloudsec-guardduty-run-*")) == []
