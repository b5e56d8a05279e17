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


class CountingHostvars(dict):
    """Ansible's hostvars: every read of hostvars[host] computes all of the host's variables."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = {}

    def __getitem__(self, host):
        self.reads[host] = self.reads.get(host, 0) + 1
        return super().__getitem__(host)


def place(hostvars, given):
    action = batch_stage.ActionModule.__new__(batch_stage.ActionModule)
    args = {"incident": "INC-2", "incident_given": given}
    return action._place(args, {"ansible_play_hosts": list(hostvars), "hostvars": hostvars})


def test_the_place_stage_reads_each_hosts_variables_once_for_the_incident_and_the_batches():
    hostvars = CountingHostvars({
        "web-1": {"instance_id": "i-1", "region": "us-east-1", "guardduty_tags": {"guardduty:incident": "INC-1"}},
        "web-2": {"instance_id": "i-2", "region": "us-east-1"}})
    run, lines = place(hostvars, given=True)
    assert hostvars.reads == {"web-1": 1, "web-2": 1}
    assert [b["instance_ids"] for b in run["placed"]] == [["i-1", "i-2"]] and run["incident"] == "INC-2"
    assert lines == ["incident: INC-2 (given)", "already under incident 'INC-1' (tag guardduty:incident): web-1 (i-1)"]


def test_a_run_given_no_incident_stops_before_placing_over_an_instance_of_another_incident():
    from ansible.errors import AnsibleActionFail

    hostvars = CountingHostvars({"web-1": {"instance_id": "i-1", "region": "us-east-1",
                                           "guardduty_tags": {"guardduty:incident": "INC-1"}}})
    try:
        place(hostvars, given=False)
    except AnsibleActionFail as exc:
        assert "give -e incident_id=<that incident>" in exc.message
        assert exc.result["incident_lines"][1].startswith("already under incident 'INC-1'")
    else:
        raise AssertionError("the run went on")


def test_the_place_stage_refuses_an_incident_id_the_modules_would_refuse_before_reading_any_host():
    from ansible.errors import AnsibleActionFail

    hostvars = CountingHostvars({"web-1": {"instance_id": "i-1", "region": "us-east-1"}})
    action = batch_stage.ActionModule.__new__(batch_stage.ActionModule)
    try:
        action._place({"incident": "INC 42/../x", "incident_given": True}, {"ansible_play_hosts": ["web-1"], "hostvars": hostvars})
    except AnsibleActionFail as exc:
        assert exc.message.startswith("incident_id 'INC 42/../x' is not a valid incident id: use ")
        assert exc.message.endswith(": nothing was changed") and hostvars.reads == {}
    else:
        raise AssertionError("the run went on")
