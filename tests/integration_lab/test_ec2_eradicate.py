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
