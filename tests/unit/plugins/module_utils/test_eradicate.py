# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Eradication, planned: the guards refuse before any call, and the replacement source decides the calls."""

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_eradicate as er

INSTANCE = {"InstanceId": "i-1", "SubnetId": "subnet-1", "Tags": [],
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-a"}},
                                    {"DeviceName": "/dev/sdf", "Ebs": {"VolumeId": "vol-b"}}]}


def snap(volume, state="completed", incident="INC"):
    return {"SnapshotId": f"snap-{volume}", "VolumeId": volume, "State": state,
            "Tags": [{"Key": "guardduty:incident", "Value": incident}, {"Key": "guardduty:volume", "Value": volume}]}


EVIDENCE = [snap("vol-a"), snap("vol-b")]


def actions(calls):
    return [c[0] for c in calls]


def test_confirmation():
    assert er.confirmed(["terminate-INC"], ["i-1", "i-2"], "INC")
    assert er.confirmed(["i-2", "i-1"], ["i-1", "i-2"], "INC")
    assert not er.confirmed(["i-1"], ["i-1", "i-2"], "INC")
    assert not er.confirmed(["terminate-OTHER"], ["i-1"], "INC")
    assert not er.confirmed([], ["i-1"], "INC")


def test_refuses_without_completed_evidence_for_every_volume():
    for snapshots in ([], [snap("vol-a")], [snap("vol-a"), snap("vol-b", state="pending")],
                      [snap("vol-a"), snap("vol-b", incident="OTHER")]):
        refusal, calls, dummy_replacement = er.plan_eradicate(INSTANCE, "INC", snapshots, None, False, False, True, None)
        assert "vol-b" in refusal and calls == []


def test_termination_protection_refuses_unless_overridden_then_recorded_first():
    refusal, calls, dummy_replacement = er.plan_eradicate(INSTANCE, "INC", EVIDENCE, None, True, False, True, None)
    assert "termination protection" in refusal and calls == []
    refusal, calls, dummy_replacement = er.plan_eradicate(INSTANCE, "INC", EVIDENCE, None, True, True, True, None)
    assert refusal is None
    assert actions(calls) == ["CreateTags", "ModifyInstanceAttribute", "TerminateInstances"]


def test_autoscaling_group_replaces_without_decrement():
    dummy_refusal, calls, replacement = er.plan_eradicate(INSTANCE, "INC", EVIDENCE, "web-asg", False, False, True, None)
    assert calls == [("TerminateInstanceInAutoScalingGroup", {"InstanceId": "i-1", "ShouldDecrementDesiredCapacity": False})]
    assert replacement["source"] == {"kind": "autoscaling", "group": "web-asg"}


def test_launch_template_replacement_in_the_same_subnet_once():
    tagged = dict(INSTANCE, Tags=[{"Key": "aws:ec2launchtemplate:id", "Value": "lt-1"},
                                  {"Key": "aws:ec2launchtemplate:version", "Value": "3"}])
    dummy_refusal, calls, dummy_replacement = er.plan_eradicate(tagged, "INC", EVIDENCE, None, False, False, True, None)
    assert actions(calls) == ["RunInstances", "TerminateInstances"]
    run = calls[0][1]
    assert run["LaunchTemplate"] == {"LaunchTemplateId": "lt-1", "Version": "3"} and run["SubnetId"] == "subnet-1"
    assert {"Key": "guardduty:replaces", "Value": "i-1"} in run["TagSpecifications"][0]["Tags"]
    dummy_refusal, calls, replacement = er.plan_eradicate(tagged, "INC", EVIDENCE, None, False, False, True, "i-new")
    assert actions(calls) == ["TerminateInstances"] and replacement["instance_id"] == "i-new"


def test_no_replacement_source():
    dummy_refusal, calls, replacement = er.plan_eradicate(INSTANCE, "INC", EVIDENCE, None, False, False, True, None)
    assert actions(calls) == ["TerminateInstances"] and replacement["note"].startswith("no replacement source")


def test_subnet_goes_into_the_templates_primary_interface():
    # EC2 refuses SubnetId with a template that defines network interfaces (InvalidParameterCombination).
    assert er.launch_network("subnet-1", []) == {"SubnetId": "subnet-1"}
    interfaces = [{"DeviceIndex": 0, "Groups": ["sg-1"], "PrivateIpAddress": "10.0.0.5", "NetworkInterfaceId": "eni-1"},
                  {"DeviceIndex": 1, "SubnetId": "subnet-2", "Groups": ["sg-2"]}]
    assert er.launch_network("subnet-1", interfaces) == {"NetworkInterfaces": [
        {"DeviceIndex": 0, "Groups": ["sg-1"], "SubnetId": "subnet-1"},
        {"DeviceIndex": 1, "SubnetId": "subnet-2", "Groups": ["sg-2"]}]}
    tagged = dict(INSTANCE, Tags=[{"Key": er.TEMPLATE_ID_TAG, "Value": "lt-1"}, {"Key": er.TEMPLATE_VERSION_TAG, "Value": "3"}])
    dummy_refusal, calls, dummy_replacement = er.plan_eradicate(tagged, "INC", EVIDENCE, None, False, False, True, None,
                                                                template_interfaces=interfaces[:1])
    [run] = [params for action, params in calls if action == "RunInstances"]
    assert "SubnetId" not in run and run["NetworkInterfaces"][0]["SubnetId"] == INSTANCE.get("SubnetId")


def test_detached_instance_is_not_replaced_again():
    record = {"a": ["web-asg", "InService", 2, "detach"], "t": [], "e": []}
    assert er.detached_group(record) == "web-asg"
    assert er.detached_group({"a": ["web-asg", "InService", 2, "standby"]}) is None and er.detached_group(None) is None
    tagged = dict(INSTANCE, Tags=[{"Key": er.TEMPLATE_ID_TAG, "Value": "lt-1"}])
    dummy_refusal, calls, replacement = er.plan_eradicate(tagged, "INC", EVIDENCE, None, False, False, True, None,
                                                          detached_from="web-asg")
    assert [action for action, dummy in calls] == ["TerminateInstances"]
    assert replacement["source"] == {"kind": "detached", "group": "web-asg"}


def test_standby_instance_terminated_in_its_group_is_not_replaced_and_the_note_says_so():
    dummy_refusal, calls, replacement = er.plan_eradicate(INSTANCE, "INC", EVIDENCE, "web-asg", False, False, True, None,
                                                          asg_lifecycle_state="Standby")
    assert calls == [("TerminateInstanceInAutoScalingGroup",
                      {"InstanceId": INSTANCE["InstanceId"], "ShouldDecrementDesiredCapacity": False})]
    assert "launches no replacement" in replacement["note"] and "SetDesiredCapacity" in replacement["note"]
