"""ec2_instance_detach against the lab: memberships as Auto Scaling and ELB report them, and the journal."""

MODULE = "cloudsec.guardduty.ec2_instance_detach"
WRITES = ("CreateTags", "DeleteTags", "DeregisterTargets", "RegisterTargets", "DeregisterInstancesFromLoadBalancer",
          "RegisterInstancesWithLoadBalancer", "EnterStandby", "ExitStandby", "DetachInstances", "AttachInstances")


def writes(lab, since):
    return [e for e in lab.journal(since=since) if e["action"] in WRITES]


def memberships(lab, instance_id, region="us-east-1"):
    """Where the instance is, straight from Auto Scaling, ELBv2 and ELB."""
    asg = lab.client("autoscaling", region=region)
    elbv2 = lab.client("elbv2", region=region)
    elb = lab.client("elb", region=region)
    groups = {}
    for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        groups[group["AutoScalingGroupName"]] = {
            "desired": group["DesiredCapacity"],
            "states": {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}}
    mine = {name: g["states"].get(instance_id) for name, g in groups.items()}
    targets = {}
    for tg in elbv2.describe_target_groups()["TargetGroups"]:
        health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        targets[tg["TargetGroupName"]] = sorted((h["Target"]["Id"], h["Target"]["Port"]) for h in health
                                                if h["TargetHealth"]["State"] != "draining")
    elbs = {lb["LoadBalancerName"]: sorted(i["InstanceId"] for i in lb["Instances"])
            for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]}
    ec2 = lab.client("ec2", region=region)
    tags = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0].get("Tags", [])
    return {"asg": mine, "desired": {n: g["desired"] for n, g in groups.items()}, "targets": targets, "elbs": elbs,
            "record": sorted(t["Key"] for t in tags if t["Key"].startswith("guardduty:detach-record"))}


def test_detach_and_release_restore_asg_target_group_and_elb_exactly(demo):
    web, api = demo.instance("web-1")["id"], demo.instance("api-1")["id"]
    before_web = memberships(demo, web)
    assert before_web["asg"]["web-asg"] == "InService" and (web, 443) in before_web["targets"]["web-tg"]
    before_api = memberships(demo, api, "eu-west-1")
    assert api in before_api["elbs"]["api-elb"]

    # Check mode: the plan, no write call.
    mark = demo.mark()
    planned = demo.run_module(MODULE, {"instance_ids": [web]}, check=True)
    assert planned["changed"] is True
    assert [c.split(" ")[0] for c in planned["instances"][web]["calls"]] == [
        "ec2:CreateTags", "elbv2:DeregisterTargets", "autoscaling:DetachInstances"]
    assert writes(demo, mark) == []

    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web]}, diff=True)
    assert result["changed"] is True
    actions = [e["action"] for e in writes(demo, mark)]
    assert actions[0] == "CreateTags" and actions[-1] == "DetachInstances", actions  # the record comes first
    now = memberships(demo, web)
    assert now["asg"]["web-asg"] is None and (web, 443) not in now["targets"]["web-tg"]
    assert now["desired"]["web-asg"] == before_web["desired"]["web-asg"]  # kept: a replacement is launched
    assert now["record"] == ["guardduty:detach-record"]
    assert result["instances"][web]["record"]["autoscaling"]["group"] == "web-asg"
    assert result["instances"][web]["record"]["target_groups"][0]["port"] == 443
    assert any("deregistration delay" in n for n in result["instances"][web]["notes"])

    mark = demo.mark()
    again = demo.run_module(MODULE, {"instance_ids": [web]})
    assert again["changed"] is False and writes(demo, mark) == []

    mark = demo.mark()
    released = demo.run_module(MODULE, {"instance_ids": [web], "state": "released"})
    assert released["changed"] is True
    after = memberships(demo, web)
    assert after["asg"]["web-asg"] == "InService"
    assert (web, 443) in after["targets"]["web-tg"] and after["record"] == []
    mark = demo.mark()
    assert demo.run_module(MODULE, {"instance_ids": [web], "state": "released"})["changed"] is False
    assert writes(demo, mark) == []

    # The classic load balancer, in the other region.
    result = demo.run_module(MODULE, {"instance_ids": [api]}, region="eu-west-1")
    assert result["changed"] is True and api not in memberships(demo, api, "eu-west-1")["elbs"]["api-elb"]
    demo.run_module(MODULE, {"instance_ids": [api], "state": "released"}, region="eu-west-1")
    assert memberships(demo, api, "eu-west-1") == before_api


def test_standby_mode_keeps_desired_capacity_exact(demo):
    web = demo.instance("web-1")["id"]
    before = memberships(demo, web)
    result = demo.run_module(MODULE, {"instance_ids": [web], "asg_mode": "standby"})
    assert result["changed"] is True
    now = memberships(demo, web)
    assert now["asg"]["web-asg"] == "Standby"
    assert now["desired"]["web-asg"] == before["desired"]["web-asg"] - 1  # no replacement
    mark = demo.mark()
    assert demo.run_module(MODULE, {"instance_ids": [web], "asg_mode": "standby"})["changed"] is False
    assert writes(demo, mark) == []
    demo.run_module(MODULE, {"instance_ids": [web], "state": "released"})
    assert memberships(demo, web) == before


def test_permission_error_on_one_instance_does_not_hide_the_other(demo):
    web, healthy = demo.instance("web-1")["id"], demo.instance("healthy-1")["id"]
    elbv2 = demo.client("elbv2")
    tg = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["target_groups"]["web-tg"]
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": healthy, "Port": 8443}])
    demo.faults({"forced": [{"action": "DeregisterTargets", "resource": web, "code": "AccessDenied", "status": 403}]})
    result = demo.run_module(MODULE, {"instance_ids": [web, healthy]}, expect_rc=(2,))
    assert result["failed"] is True
    error = result["instances"][web]["error"]
    assert error["instance_id"] == web and error["action"] == "DeregisterTargets" and error["code"] == "AccessDenied"
    assert "error" not in result["instances"][healthy] and result["instances"][healthy]["changed"] is True
    now = memberships(demo, healthy)
    assert (healthy, 8443) not in now["targets"]["web-tg"]
    assert (web, 443) in memberships(demo, web)["targets"]["web-tg"]  # untouched past the failure
    demo.faults({})
    demo.run_module(MODULE, {"instance_ids": [healthy], "state": "released"})
    assert (healthy, 8443) in memberships(demo, healthy)["targets"]["web-tg"]
