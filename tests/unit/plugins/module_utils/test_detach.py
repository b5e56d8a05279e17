# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Detach planning: memberships from describe answers, the record, and the calls in the right order."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_instance_detach import (
    RECORD_TAG, PlanProblem, foreign_targets, memberships_of, own_addresses, plan_detach, plan_release)

ID = "i-0123456789abcdef0"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/0123456789abcdef"
IP_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ip-tg/0123456789abcdef"
INSTANCE = {"InstanceId": ID, "VpcId": "vpc-1", "NetworkInterfaces": [
    {"PrivateIpAddresses": [{"PrivateIpAddress": "10.0.1.5"}], "Ipv6Addresses": []}]}
GROUP = {"AutoScalingGroupName": "web-asg", "DesiredCapacity": 2, "MinSize": 1, "MaxSize": 4}


def found(lifecycle="InService", health=None, elbs=None):
    asg_instances = {ID: {"InstanceId": ID, "AutoScalingGroupName": "web-asg", "LifecycleState": lifecycle}} if lifecycle else {}
    health = health if health is not None else {TG: [{"Target": {"Id": ID, "Port": 443}, "TargetHealth": {"State": "healthy"}},
                                                     {"Target": {"Id": "i-0fedcba9876543210", "Port": 443},
                                                      "TargetHealth": {"State": "healthy"}}],
                                                IP_TG: [{"Target": {"Id": "10.0.1.5", "Port": 80}, "TargetHealth": {"State": "initial"}}]}
    groups = {TG: {"TargetType": "instance", "VpcId": "vpc-1", "DeregistrationDelay": 300},
              IP_TG: {"TargetType": "ip", "VpcId": "vpc-1", "DeregistrationDelay": 0}}
    lbs = elbs if elbs is not None else [{"LoadBalancerName": "api-elb", "Instances": [{"InstanceId": ID}],
                                          "ConnectionDraining": {"Enabled": True, "Timeout": 60}}]
    return memberships_of(INSTANCE, asg_instances, {"web-asg": GROUP}, health, groups, lbs)


def actions(calls):
    return [c[0] for c in calls]


def test_memberships_cover_instance_and_ip_targets_and_classic_elbs():
    m = found()
    assert m["autoscaling"] == {"group": "web-asg", "lifecycle_state": "InService", "desired_capacity": 2, "min_size": 1, "max_size": 4}
    assert [(t["target_group_arn"], t["id"], t["port"]) for t in m["target_groups"]] == [(IP_TG, "10.0.1.5", 80), (TG, ID, 443)]
    assert m["load_balancers"] == [{"name": "api-elb", "connection_draining": 60}]


def test_detach_records_first_then_load_balancers_then_auto_scaling():
    calls, record, predicted, notes = plan_detach(ID, found(), None, [], "detach")
    assert actions(calls) == ["CreateTags", "DeregisterTargets", "DeregisterTargets", "DeregisterInstancesFromLoadBalancer",
                              "DetachInstances"]
    assert calls[-1][1]["ShouldDecrementDesiredCapacity"] is False
    assert record == {"a": ["web-asg", "InService", 2, "detach"], "t": [[IP_TG, 80, "10.0.1.5"], [TG, 443]], "e": ["api-elb"]}
    assert records.decode(calls[0][1]["Tags"], RECORD_TAG) == record
    assert predicted == {"autoscaling": None, "target_groups": [], "load_balancers": []}
    assert any("300 s" in n for n in notes) and any("60 s" in n for n in notes)


def test_standby_decrements_and_refuses_to_go_below_min():
    calls, _unused1, predicted, _unused2 = plan_detach(ID, found(), None, [], "standby")
    assert calls[-1] == ("EnterStandby", {"AutoScalingGroupName": "web-asg", "InstanceIds": [ID],
                                          "ShouldDecrementDesiredCapacity": True})
    assert predicted["autoscaling"]["desired_capacity"] == 1
    at_min = found()
    at_min["autoscaling"]["min_size"] = 2
    with pytest.raises(PlanProblem) as info:
        plan_detach(ID, at_min, None, [], "standby")
    assert info.value.action == "EnterStandby" and "asg_mode=detach" in str(info.value)


def test_detached_instance_plans_nothing_and_draining_targets_count_as_gone():
    health = {TG: [{"Target": {"Id": ID, "Port": 443}, "TargetHealth": {"State": "draining"}}]}
    m = found(lifecycle=None, health=health, elbs=[])
    record = {"a": ["web-asg", "InService", 2, "detach"], "t": [[TG, 443]], "e": []}
    calls, new_record, _unused1, _unused2 = plan_detach(ID, m, record, records.encode(RECORD_TAG, record), "detach")
    assert calls == [] and new_record == record


def test_pending_instance_is_refused_with_its_state():
    with pytest.raises(PlanProblem) as info:
        plan_detach(ID, found(lifecycle="Pending:Wait"), None, [], "detach")
    assert "Pending:Wait" in str(info.value) and info.value.code == "IncorrectInstanceState"


def test_release_puts_back_every_membership_then_drops_the_record():
    record = {"a": ["web-asg", "InService", 2, "detach"], "t": [[IP_TG, 80, "10.0.1.5"], [TG, 443]], "e": ["api-elb"]}
    m = found(lifecycle=None, health={}, elbs=[])
    groups = {"web-asg": dict(GROUP, DesiredCapacity=2)}
    calls, predicted, notes = plan_release(ID, m, record, [RECORD_TAG], {TG, IP_TG}, {"api-elb"}, groups)
    assert actions(calls) == ["AttachInstances", "RegisterTargets", "RegisterTargets", "RegisterInstancesWithLoadBalancer", "DeleteTags"]
    assert calls[2][1] == {"TargetGroupArn": TG, "Targets": [{"Id": ID, "Port": 443}]}
    assert calls[1][1] == {"TargetGroupArn": IP_TG, "Targets": [{"Id": "10.0.1.5", "Port": 80}]}
    assert predicted["autoscaling"]["desired_capacity"] == 3
    assert any("replacement" in n for n in notes)


def test_release_from_standby_and_refusals():
    record = {"a": ["web-asg", "InService", 2, "standby"], "t": [], "e": []}
    standby = found(lifecycle="Standby", health={}, elbs=[])
    calls, _unused1, _unused2 = plan_release(ID, standby, record, [RECORD_TAG], set(), set(), {"web-asg": GROUP})
    assert actions(calls) == ["ExitStandby", "DeleteTags"]
    with pytest.raises(PlanProblem) as info:
        plan_release(ID, found(lifecycle=None, health={}, elbs=[]), dict(record, a=None, t=[[TG, 443]]), [RECORD_TAG],
                     set(), set(), {})
    assert info.value.code == "TargetGroupNotFound"
    full = {"web-asg": dict(GROUP, DesiredCapacity=4)}
    with pytest.raises(PlanProblem) as info:
        plan_release(ID, found(lifecycle=None, health={}, elbs=[]), dict(record, a=["web-asg", "InService", 2, "detach"]),
                     [RECORD_TAG], set(), set(), full)
    assert "maximum size" in str(info.value)


def test_long_records_are_split_across_tags_of_at_most_256_characters():
    record = {"a": None, "t": [[TG.replace("web-tg", f"tg-{n}"), 443] for n in range(12)], "e": []}
    tags = records.encode(RECORD_TAG, record)
    assert len(tags) > 1 and all(len(v) <= 256 for v in tags.values())
    as_list = [{"Key": k, "Value": v} for k, v in reversed(list(tags.items()))]
    assert records.keys(as_list, RECORD_TAG)[0] == RECORD_TAG
    assert records.decode(as_list, RECORD_TAG) == record


def test_a_recorded_target_id_must_be_the_instance_or_one_of_its_addresses():
    record = {"a": None, "t": [[TG, 443], [IP_TG, 80, "10.0.1.5"], [IP_TG, 80, "i-0fedcba9876543210"]], "e": []}
    assert foreign_targets(ID, record, own_addresses(INSTANCE)) == ["i-0fedcba9876543210"]
    assert foreign_targets(ID, dict(record, t=record["t"][:2]), own_addresses(INSTANCE)) == []
