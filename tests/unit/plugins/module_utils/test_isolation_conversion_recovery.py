"""ENIs found on a conversion group: which group counts as one, and what each run does with each ENI."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import isolation

GROUPS = {("vpc-1", isolation.CONVERSION): "sg-conv", ("vpc-1", isolation.ISOLATION): "sg-isol"}
RECORD = isolation.encode_record(["sg-web"])


def group(tags, rules):
    return {"group_id": "sg-x", "group_name": "x", "vpc_id": "vpc-1", "tags": tags, "rules": set(rules)}


def stuck(eni_id="eni-1", tags=None, instance_id="i-other", in_run=False, **extra):
    tags = RECORD if tags is None else tags
    view = {"network_interface_id": eni_id, "vpc_id": "vpc-1", "device_index": 0, "security_groups": ["sg-conv"],
            "interface_type": "interface", "requester_managed": False, "tags": dict(tags),
            "instance_id": instance_id, "conversion_group": "sg-conv", "in_run": in_run}
    view.update(extra)
    return view


def test_a_conversion_group_is_tagged_so_and_open_to_all_traffic():
    tag = {isolation.TAG_GROUP_ROLE: isolation.CONVERSION}
    assert isolation.is_conversion_group(group(tag, isolation.CONVERSION_RULES))
    # The tag alone (anyone with ec2:CreateTags can write it on a production group) is not enough.
    assert not isolation.is_conversion_group(group(tag, [("ingress", "tcp", 443, 443, "cidr4", "10.0.0.0/8")]))
    assert not isolation.is_conversion_group(group({}, isolation.CONVERSION_RULES))
    assert not isolation.is_conversion_group(group({isolation.TAG_GROUP_ROLE: isolation.ISOLATION},
                                                   isolation.CONVERSION_RULES))


@pytest.mark.parametrize("state", [isolation.ISOLATED, isolation.RELEASED])
def test_an_eni_of_another_instance_with_a_record_goes_on_to_the_isolation_group(state):
    steps, findings = isolation.plan_conversion_recovery(state, [stuck()], set(), GROUPS)
    assert steps == [{"action": "ModifyNetworkInterfaceAttribute", "resource": "eni-1", "instance_id": "i-other",
                      "vpc_id": "vpc-1", "groups": [isolation.ISOLATION], "recovery": True}]
    assert findings[0]["error"] is None and findings[0]["isolation_group"] == "sg-isol"
    finding = dict(findings[0], moved=True)
    message = isolation.conversion_recovery_warning(finding)
    assert message.startswith("eni-1 (instance i-other, vpc-1) was on the conversion group sg-conv")
    assert "moved on to the isolation group sg-isol" in message and "run isolate on it" in message


@pytest.mark.parametrize("state", [isolation.ISOLATED, isolation.RELEASED])
def test_an_eni_of_another_instance_whose_lock_a_live_run_holds_is_left_to_that_run(state):
    holder = "isolate, pid 4242 on ctl-1, started 2026-12-07T03:00:00Z"
    held, free = stuck("eni-1", held_by=holder), stuck("eni-2", instance_id="i-crashed")
    steps, findings = isolation.plan_conversion_recovery(state, [held, free], set(), GROUPS)
    assert [s["resource"] for s in steps] == ["eni-2"]  # only the ENI whose run is gone
    assert findings[0]["held_by"] == holder and findings[0]["error"] is None
    assert findings[0]["action"] == "left to the run holding its instance's lock"
    assert "held_by" not in findings[1] and findings[1]["action"] == "move to the isolation group"
    # the run's own instance is its plan's, whoever else looked at it
    own_steps, own = isolation.plan_conversion_recovery(state, [stuck(in_run=True, held_by=holder)], {"eni-1"}, GROUPS)
    assert own_steps == [] and "held_by" not in own[0] and own[0]["action"].endswith("by this run")


def test_an_eni_without_a_record_was_not_put_there_by_us_and_is_only_reported():
    steps, findings = isolation.plan_conversion_recovery(isolation.ISOLATED, [stuck(tags={})], set(), GROUPS)
    assert steps == [] and "no record of its original groups" in findings[0]["error"]
    assert "not finished: no record" in isolation.conversion_recovery_warning(findings[0])


def test_an_eni_with_a_damaged_record_or_of_another_service_is_only_reported():
    damaged = stuck(tags={isolation.RECORD_TAG: "two"})
    managed = stuck("eni-2", requester_managed=True)
    steps, findings = isolation.plan_conversion_recovery(isolation.ISOLATED, [damaged, managed], set(), GROUPS)
    assert steps == []
    assert "unreadable record" in findings[0]["error"] and "requester-managed" in findings[1]["error"]


def test_the_runs_own_enis_are_left_to_its_plan_unless_it_cannot_handle_them():
    handled = stuck(in_run=True, instance_id="i-run")
    steps, findings = isolation.plan_conversion_recovery(isolation.ISOLATED, [handled], {"eni-1"}, GROUPS)
    assert steps == [] and findings[0]["action"] == "isolated by this run" and findings[0]["in_run"]
    # Release whose plan failed on the record: the responder named the instance; isolate it, whatever the record.
    broken = stuck(tags={isolation.RECORD_TAG: "two"}, in_run=True, instance_id="i-run")
    steps, findings = isolation.plan_conversion_recovery(isolation.RELEASED, [broken], set(), GROUPS)
    assert [s["resource"] for s in steps] == ["eni-1"] and findings[0]["error"] is None


def test_without_an_isolation_group_nothing_is_moved():
    none_yet = {("vpc-1", isolation.CONVERSION): "sg-conv", ("vpc-1", isolation.ISOLATION): None}
    steps, dummy = isolation.plan_conversion_recovery(isolation.ISOLATED, [stuck()], set(), none_yet)
    assert len(steps) == 1  # isolate creates it first
    steps, findings = isolation.plan_conversion_recovery(isolation.RELEASED, [stuck()], set(), none_yet)
    assert steps == [] and "does not exist" in findings[0]["error"]  # release never creates groups
    steps, findings = isolation.plan_conversion_recovery(isolation.ISOLATED, [stuck()], set(), {})
    assert steps == [] and "no isolation group" in findings[0]["error"]


def test_check_mode_says_what_would_be_done_and_a_failed_move_says_why():
    _steps, findings = isolation.plan_conversion_recovery(isolation.ISOLATED, [stuck()], set(), GROUPS)
    assert isolation.conversion_recovery_warning(findings[0], check_mode=True).endswith(
        "check mode: move to the isolation group")
    failed = dict(findings[0], moved=False, error="eni-1: ec2:ModifyNetworkInterfaceAttribute: no (UnauthorizedOperation)")
    assert "not finished: eni-1: ec2:ModifyNetworkInterfaceAttribute" in isolation.conversion_recovery_warning(failed)
