"""ec2_eradicate against the lab: the guards (evidence, confirmation, protection) and the replacement, as AWS reports them."""

MODULE = "cloudsec.guardduty.ec2_eradicate"
INCIDENT = "INC-ERAD"
WRITES = ("TerminateInstances", "TerminateInstanceInAutoScalingGroup", "RunInstances", "ModifyInstanceAttribute", "CreateTags")


def state(lab, instance_id, account="123456789012"):
    ec2 = lab.client("ec2", account=account)
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def writes(lab, since):
    return [e for e in lab.journal(since=since) if e["action"] in WRITES]


def snapshot(lab, instance_ids):
    lab.run_module("cloudsec.guardduty.ec2_forensic_snapshot",
                   {"instance_ids": instance_ids, "incident_id": INCIDENT, "wait": True, "wait_delay": 1})


def test_guards_then_autoscaling_replacement(demo):
    web = demo.instance("web-1")["id"]
    asg = demo.client("autoscaling")

    # No confirmation: refused before any call to AWS's write APIs.
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web], "incident_id": INCIDENT, "confirm": ["i-00000000"]},
                             expect_rc=(2,))
    assert "confirmation" in result["msg"]
    assert writes(demo, mark) == [] and state(demo, web) == "running"

    # Confirmed, but no evidence snapshots: refused, naming the volumes.
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web], "incident_id": INCIDENT, "confirm": [f"terminate-{INCIDENT}"]},
                             expect_rc=(2,))
    error = result["instances"][web]["error"]
    assert error["code"] == "Refused" and all(v in error["message"] for v in demo.instance("web-1")["volumes"])
    assert writes(demo, mark) == [] and state(demo, web) == "running"

    snapshot(demo, [web])
    # Snapshots of another incident do not count; of this one, they do. Termination protection still refuses.
    demo.client("ec2").modify_instance_attribute(InstanceId=web, DisableApiTermination={"Value": True})
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web], "incident_id": INCIDENT, "confirm": [web]}, expect_rc=(2,))
    assert "termination protection" in result["instances"][web]["error"]["message"]
    assert writes(demo, mark) == [] and state(demo, web) == "running"

    checked = demo.run_module(MODULE, {"instance_ids": [web], "incident_id": INCIDENT, "confirm": [web],
                                       "override_protection": True}, check=True)
    assert checked["changed"] is True and writes(demo, mark) == [] and state(demo, web) == "running"

    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web], "incident_id": INCIDENT, "confirm": [web],
                                      "override_protection": True})
    assert result["changed"] is True
    actions = [e["action"] for e in writes(demo, mark)]
    assert actions[:3] == ["CreateTags", "ModifyInstanceAttribute", "TerminateInstanceInAutoScalingGroup"], actions
    terminate = [e for e in demo.journal(since=mark, action="TerminateInstanceInAutoScalingGroup")][0]
    assert "ShouldDecrementDesiredCapacity" in str(terminate["params"]) and "false" in str(terminate["params"]).lower()
    assert state(demo, web) in ("shutting-down", "terminated")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1
    live = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] in ("Pending", "InService")]
    assert live and web not in live  # the group replaced it

    mark = demo.mark()
    again = demo.run_module(MODULE, {"instance_ids": [web], "incident_id": INCIDENT, "confirm": [web]})
    assert again["changed"] is False and writes(demo, mark) == []


def test_launch_template_replacement_and_no_source(demo):
    bastion = demo.instance("bastion-1")["id"]
    ec2 = demo.client("ec2")
    subnet = ec2.describe_instances(InstanceIds=[bastion])["Reservations"][0]["Instances"][0]["SubnetId"]
    template = ec2.create_launch_template(LaunchTemplateName="app-template",
                                          LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    # EC2 tags an instance launched from a template with aws:ec2launchtemplate:id and :version.
    app = ec2.run_instances(LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"}, SubnetId=subnet,
                            MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    snapshot(demo, [app, bastion])
    result = demo.run_module(MODULE, {"instance_ids": [app, bastion], "incident_id": INCIDENT,
                                      "confirm": [bastion, app]})
    replacement = result["instances"][app]["replacement"]["instance_id"]
    assert replacement
    new = ec2.describe_instances(InstanceIds=[replacement])["Reservations"][0]["Instances"][0]
    assert new["SubnetId"] == subnet
    assert {"Key": "guardduty:replaces", "Value": app} in new["Tags"]
    assert {"Key": "aws:ec2launchtemplate:id", "Value": template_id} in new["Tags"]
    assert result["instances"][bastion]["replacement"]["note"].startswith("no replacement source")
    assert state(demo, app) in ("shutting-down", "terminated") and state(demo, bastion) in ("shutting-down", "terminated")


def test_template_with_network_interfaces_gets_the_subnet_on_its_primary_interface(demo):
    # EC2 refuses RunInstances with an instance-level SubnetId when the launch template defines network
    # interfaces (InvalidParameterCombination; EC2 API reference, RunInstances SubnetId): the lab does too.
    ec2 = demo.client("ec2")
    bastion = ec2.describe_instances(InstanceIds=[demo.instance("bastion-1")["id"]])["Reservations"][0]["Instances"][0]
    group = bastion["SecurityGroups"][0]["GroupId"]
    template_id = ec2.create_launch_template(LaunchTemplateName="nic-template", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro",
        "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [group], "DeleteOnTermination": True}]}
    )["LaunchTemplate"]["LaunchTemplateId"]
    app = ec2.run_instances(LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"}, MinCount=1, MaxCount=1,
                            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": bastion["SubnetId"], "Groups": [group]}]
                            )["Instances"][0]["InstanceId"]
    snapshot(demo, [app])
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [app], "incident_id": INCIDENT, "confirm": [app]})
    [run] = demo.journal(since=mark, action="RunInstances")
    assert run["outcome"] == "ok"
    replacement = result["instances"][app]["replacement"]["instance_id"]
    new = ec2.describe_instances(InstanceIds=[replacement])["Reservations"][0]["Instances"][0]
    assert new["SubnetId"] == bastion["SubnetId"]
    assert [g["GroupId"] for g in new["NetworkInterfaces"][0]["Groups"]] == [group]
    assert state(demo, app) in ("shutting-down", "terminated")


def _asg_instance_from_template(demo):
    """An instance launched from a launch template and attached to web-asg (as the group launches them)."""
    ec2, asg = demo.client("ec2"), demo.client("autoscaling")
    subnet = ec2.describe_instances(InstanceIds=[demo.instance("web-1")["id"]])["Reservations"][0]["Instances"][0]["SubnetId"]
    template_id = ec2.describe_launch_templates(LaunchTemplateNames=["web-asg-template"])["LaunchTemplates"][0]["LaunchTemplateId"]
    instance = ec2.run_instances(LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"}, SubnetId=subnet,
                                 MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    asg.attach_instances(InstanceIds=[instance], AutoScalingGroupName="web-asg")
    return instance


def _group(demo):
    return demo.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]


def test_instance_isolate_detached_from_its_group_is_not_replaced_twice(demo):
    instance = _asg_instance_from_template(demo)
    demo.run_module("cloudsec.guardduty.ec2_instance_detach", {"instance_ids": [instance], "asg_mode": "detach"})
    live = {i["InstanceId"] for i in _group(demo)["Instances"]}
    assert instance not in live  # detached; the group launched its replacement (desired capacity kept)
    snapshot(demo, [instance])
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [instance], "incident_id": INCIDENT, "confirm": [instance]})
    replacement = result["instances"][instance]["replacement"]
    assert replacement["source"] == {"kind": "detached", "group": "web-asg"} and replacement["instance_id"] is None
    assert "already launched the replacement" in replacement["note"]
    assert demo.journal(since=mark, action="RunInstances") == []
    assert [e["action"] for e in writes(demo, mark)] == ["TerminateInstances"]
    assert {i["InstanceId"] for i in _group(demo)["Instances"]} == live
    assert state(demo, instance) in ("shutting-down", "terminated")


def test_terminating_an_instance_in_standby_says_the_group_launches_no_replacement(demo):
    instance = _asg_instance_from_template(demo)
    demo.run_module("cloudsec.guardduty.ec2_instance_detach", {"instance_ids": [instance], "asg_mode": "standby"})
    before = _group(demo)
    in_service = sorted(i["InstanceId"] for i in before["Instances"] if i["LifecycleState"] == "InService")
    snapshot(demo, [instance])
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [instance], "incident_id": INCIDENT, "confirm": [instance]})
    replacement = result["instances"][instance]["replacement"]
    assert replacement["source"] == {"kind": "autoscaling", "group": "web-asg"} and replacement["instance_id"] is None
    assert "Standby" in replacement["note"] and "launches no replacement" in replacement["note"]
    assert [e["action"] for e in writes(demo, mark)] == ["TerminateInstanceInAutoScalingGroup"]
    after = _group(demo)
    # what the note says is what the group did: the same desired capacity, no new instance
    assert after["DesiredCapacity"] == before["DesiredCapacity"]
    assert sorted(i["InstanceId"] for i in after["Instances"] if i["LifecycleState"] in ("Pending", "InService")) == in_service
