"""The outcomes strategy gives a host's outcome in the controller only for the plain per-host outcome task, and gives
what cloudsec.guardduty.batch_outcome would have given."""

import json

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as engine
from ansible_collections.cloudsec.guardduty.plugins.strategy.outcomes import ParsedOutcomes, is_end_of_role, looked_up_outcome

ACTION = "cloudsec.guardduty.batch_outcome"
OUTCOMES = {"i-1": [True, False, "isolation failed: AccessDenied"], "i-2": [False, True, ""]}


def host_vars(host, instance_id, outcomes=None, none=False):
    outcomes = None if none else (outcomes or OUTCOMES)
    return {"inventory_hostname": host, "instance_id": instance_id,
            "ansible_facts": {engine.OUTCOMES_FACT: json.dumps(outcomes)} if outcomes is not None else {}}


def test_a_failed_instance_fails_its_host_by_name_and_the_others_are_ok_or_changed():
    assert looked_up_outcome(ACTION, {}, {}, host_vars("web-1", "i-1")) == {
        "changed": False, "failed": True, "msg": "web-1 (i-1): isolation failed: AccessDenied"}
    assert looked_up_outcome(ACTION, {}, {}, host_vars("app-1", "i-2")) == {"changed": True, "msg": "app-1 (i-2): no stage failed"}
    assert looked_up_outcome(ACTION, {}, {}, host_vars("idle-1", "i-9")) == {"changed": False, "msg": "idle-1 (i-9): no stage failed"}


def test_the_lookup_answers_as_the_action_plugin_computes_from_the_run():
    run = {"placed": [{"instance_ids": ["i-1", "i-2"], "hosts": {"i-1": "web-1", "i-2": "app-1"}}],
           "current": [{"instance_ids": ["i-2"], "hosts": {"i-2": "app-1"}}],
           "failures": {"i-1": "isolation failed: gone"}, "record": {"i-2": {"isolation": {"changed": True}}}}
    outcomes = engine.run_outcomes(run)
    for host, instance_id in (("web-1", "i-1"), ("app-1", "i-2")):
        failed, changed, msg = engine.host_outcome(run, host, instance_id)
        expected = dict({"changed": changed, "msg": msg}, **({"failed": True} if failed else {}))
        assert looked_up_outcome(ACTION, {}, {}, host_vars(host, instance_id, outcomes)) == expected


def test_any_other_task_or_keyword_or_a_host_without_outcomes_goes_through_a_worker():
    assert looked_up_outcome("ansible.builtin.debug", {}, {}, host_vars("web-1", "i-1")) is None
    assert looked_up_outcome(ACTION, {"gather_from": []}, {}, host_vars("web-1", "i-1")) is None
    assert looked_up_outcome(ACTION, {"forget_credentials": True}, {}, host_vars("web-1", "i-1")) is None
    for keyword in ("when", "loop", "register", "delegate_to", "failed_when", "changed_when", "until", "run_once"):
        assert looked_up_outcome(ACTION, {}, {keyword: ["x"]}, host_vars("web-1", "i-1")) is None, keyword
    assert looked_up_outcome(ACTION, {}, {}, host_vars("web-1", "i-1", none=True)) is None


def test_the_outcomes_every_host_shares_are_parsed_once():
    parse = ParsedOutcomes()
    text = json.dumps(OUTCOMES)
    first = parse(text)
    assert first == OUTCOMES and parse(text) is first and parse(str(text)) is first
    assert parse(json.dumps({"i-3": [False, False, ""]})) == {"i-3": [False, False, ""]}  # a new run's outcomes


def test_only_the_implicit_end_of_role_task_is_given_no_variables():
    class Task:
        def __init__(self, action, raw, implicit):
            self.action, self.args, self.implicit = action, {"_raw_params": raw}, implicit

    assert is_end_of_role(Task("meta", "role_complete", True))
    assert not is_end_of_role(Task("meta", "role_complete", False))  # written in a playbook: linear's own way
    assert not is_end_of_role(Task("meta", "flush_handlers", True))
    assert not is_end_of_role(Task("cloudsec.guardduty.batch_outcome", "", False)) and not is_end_of_role(None)
