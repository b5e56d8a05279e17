"""The action plugin's own I/O helpers: the credentials file, what a stage shows, the run read from a host's facts."""

import os
import stat

from ansible_collections.cloudsec.guardduty.plugins.action import batch_stage


def test_the_credentials_are_kept_in_a_file_only_its_owner_reads_and_forgotten_at_the_end():
    path = batch_stage.write_credentials(None, {"arn:aws:iam::111122223333:role/R": {"access_key": "AK", "secret_key": "SK"}})
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert batch_stage.read_credentials(path)["arn:aws:iam::111122223333:role/R"]["secret_key"] == "SK"
        assert batch_stage.write_credentials(path, {}) == path and batch_stage.read_credentials(path) == {}
    finally:
        batch_stage.forget_credentials(path)
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
    assert batch_stage.read_credentials(path) == {} and batch_stage.read_credentials(None) == {}


def test_a_failed_batch_is_its_instances_error_not_the_tasks_failure():
    shown = batch_stage.shown_result({"instance_ids": ["i-1"]}, {"failed": True, "msg": "AccessDenied", "changed": False})
    assert "failed" not in shown and shown["batch_failed"] is True and shown["item"] == {"instance_ids": ["i-1"]}
    assert "batch_failed" not in batch_stage.shown_result({"instance_ids": ["i-1"]}, {"changed": True})


def test_the_run_is_read_from_the_hosts_facts_as_plain_data():
    run = {"incident": "INC-1", "current": ({"instance_ids": ("i-1",)},)}
    assert batch_stage.run_state({"ansible_facts": {"cloudsec_guardduty_run": run}}) == {"incident": "INC-1", "current": [{"instance_ids": ["i-1"]}]}
    assert batch_stage.run_state({}) is None


def test_the_run_is_read_from_its_fact_as_text():
    assert batch_stage.run_state({"ansible_facts": {"cloudsec_guardduty_run": '{"incident":"INC-1","record":{}}'}}) == {
        "incident": "INC-1", "record": {}}
