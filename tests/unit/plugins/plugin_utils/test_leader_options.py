"""Every batch leader's role options checked in one task of the controller (plugins/plugin_utils/leader_options.py,
module_utils/batch_engine.py refused_leader_parts): the spec's errors, the modules' guards, and a leader's own value
that cannot be templated, each a problem of that leader's batch only."""

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as engine
from ansible_collections.cloudsec.guardduty.plugins.plugin_utils.leader_options import leader_option_problems

SPEC = {"isolate_report": {"type": "bool"},
        "isolate_network_group_name": {"type": "str"},
        "isolate_network_max_concurrency": {"type": "int"}}
CHECKS = {"incident_id": "incident_id", "isolate_network_group_name": "group_name", "isolate_network_max_concurrency": "positive"}
VALUES = {"incident_id": "batches_incident_id", "isolate_network_group_name": "isolate_network_group_name",
          "isolate_network_max_concurrency": "isolate_network_max_concurrency"}


def reader(variables):
    def read(name):
        value = variables[name]  # KeyError: the leader has no such variable
        if isinstance(value, Exception):
            raise value
        return value
    return read


def test_a_leader_whose_options_pass_has_no_problem():
    read = reader({"batches_incident_id": "INC-1", "isolate_report": True, "isolate_network_group_name": "guardduty-isolation",
                   "isolate_network_max_concurrency": 8})
    assert leader_option_problems(SPEC, read, CHECKS, VALUES) == []


def test_the_spec_the_guards_and_an_unreadable_value_are_each_named():
    read = reader({"batches_incident_id": "INC 42", "isolate_report": "perhaps", "isolate_network_group_name": "sg-x",
                   "isolate_network_max_concurrency": ValueError("'no_such_variable' is undefined\nmore")})
    problems = leader_option_problems(SPEC, read, CHECKS, VALUES)
    assert problems[0] == "isolate_network_max_concurrency: 'no_such_variable' is undefined"
    assert any("isolate_report" in p and "bool" in p for p in problems), problems
    assert "incident_id 'INC 42' is not a valid incident id" in " ".join(problems)
    assert "isolate_network_group_name 'sg-x' starts with 'sg-'" in " ".join(problems)
    # the unreadable value is said once, not checked again as a missing count
    assert not [p for p in problems if p.startswith("isolate_network_max_concurrency must")], problems


def test_options_a_leader_does_not_have_are_not_checked_by_the_spec():
    assert leader_option_problems(SPEC, reader({}), {}, {}) == []


def test_only_the_refused_leaders_batches_fail_and_the_leaders_play_keeps_the_others():
    run = engine.place_run(["web", "app", "api"], {
        "web": {"instance_id": "i-1", "region": "us-east-1", "account_id": "123456789012"},
        "app": {"instance_id": "i-2", "region": "us-east-1", "account_id": "123456789012"},
        "api": {"instance_id": "i-3", "region": "eu-west-1", "account_id": "123456789012"}}, "INC-1", by_leader=True)
    parts = engine.refused_leader_parts(run["current"], {"web": ["isolate_report: not a bool"]})
    assert set(parts) == {"i-1", "i-2"}
    run = engine.record_run(run, "options", parts, ["web", "app", "api"])
    assert [b["instance_ids"] for b in run["current"]] == [["i-3"]]
    assert run["failures"]["i-2"] == ("options failed: the options of web, the host that runs this batch, were refused: "
                                      "isolate_report: not a bool: nothing was changed")
    outcomes = engine.run_outcomes(run)
    assert outcomes["i-1"][0] and outcomes["i-2"][0] and "i-3" not in outcomes
