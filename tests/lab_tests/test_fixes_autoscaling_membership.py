"""AWS's behaviour for Auto Scaling standby, detach and attach, as the lab must show it."""

import botocore.exceptions
import pytest


@pytest.fixture
def asg(demo):
    return demo.client("autoscaling")


def _group(asg):
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]
    return group["DesiredCapacity"], {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def _code(call):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def test_enter_standby_only_from_in_service_and_never_below_min(demo, asg):
    web = demo.instance("web-1")["id"]
    asg.update_auto_scaling_group(AutoScalingGroupName="web-asg", MinSize=1)
    # AWS: desired 1, min 1: standby with decrement would go below the minimum.
    assert _code(lambda: asg.enter_standby(AutoScalingGroupName="web-asg", InstanceIds=[web],
                                           ShouldDecrementDesiredCapacity=True)) == "ValidationError"
    assert _group(asg) == (1, {web: "InService"})
    asg.update_auto_scaling_group(AutoScalingGroupName="web-asg", MinSize=0)
    asg.enter_standby(AutoScalingGroupName="web-asg", InstanceIds=[web], ShouldDecrementDesiredCapacity=True)
    assert _group(asg) == (0, {web: "Standby"})
    # AWS: a Standby instance cannot enter standby again (moto decremented the capacity once more).
    assert _code(lambda: asg.enter_standby(AutoScalingGroupName="web-asg", InstanceIds=[web],
                                           ShouldDecrementDesiredCapacity=True)) == "ValidationError"
    asg.exit_standby(AutoScalingGroupName="web-asg", InstanceIds=[web])
    assert _group(asg) == (1, {web: "InService"})
    # AWS: only a Standby instance can exit standby (moto raised the capacity anyway).
    assert _code(lambda: asg.exit_standby(AutoScalingGroupName="web-asg", InstanceIds=[web])) == "ValidationError"
    assert _group(asg) == (1, {web: "InService"})


def test_attach_adds_to_the_desired_capacity_not_to_the_instance_count(demo, asg):
    web, healthy = demo.instance("web-1")["id"], demo.instance("healthy-1")["id"]
    asg.enter_standby(AutoScalingGroupName="web-asg", InstanceIds=[web], ShouldDecrementDesiredCapacity=True)
    asg.attach_instances(AutoScalingGroupName="web-asg", InstanceIds=[healthy])
    # AWS: desired capacity 0 + 1 attached = 1; moto counted the Standby instance too (2) and launched another.
    assert _group(asg) == (1, {web: "Standby", healthy: "InService"})
    assert _code(lambda: asg.attach_instances(AutoScalingGroupName="web-asg", InstanceIds=[healthy])) == "ValidationError"


def test_attach_beyond_max_size_and_detach_keep_capacity(demo, asg):
    web = demo.instance("web-1")["id"]
    asg.detach_instances(AutoScalingGroupName="web-asg", InstanceIds=[web], ShouldDecrementDesiredCapacity=False)
    desired, states = _group(asg)
    # AWS: the desired capacity is kept, so a replacement is launched.
    assert desired == 1 and web not in states and len(states) == 1
    asg.update_auto_scaling_group(AutoScalingGroupName="web-asg", MaxSize=1)
    assert _code(lambda: asg.attach_instances(AutoScalingGroupName="web-asg", InstanceIds=[web])) == "ValidationError"
    assert _code(lambda: asg.detach_instances(AutoScalingGroupName="web-asg", InstanceIds=[web],
                                              ShouldDecrementDesiredCapacity=False)) == "ValidationError"
