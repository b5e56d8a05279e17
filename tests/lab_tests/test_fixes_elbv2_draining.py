"""AWS's behaviour for ELBv2 deregistration (draining), as the lab must show it."""


def _states(elbv2, arn):
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {(h["Target"]["Id"], h["Target"]["Port"]): h["TargetHealth"]["State"] for h in health}


def test_deregistered_target_drains_for_the_delay_then_is_gone(demo):
    web = demo.instance("web-1")["id"]
    elbv2 = demo.client("elbv2")
    arn = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["target_groups"]["web-tg"]
    assert _states(elbv2, arn)[(web, 443)] != "draining"
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": web, "Port": 443}])
    # AWS: still listed, draining, for deregistration_delay.timeout_seconds (300 s by default).
    assert _states(elbv2, arn) == {(web, 443): "draining"}
    answer = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": web, "Port": 443}])
    assert answer["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.DeregistrationInProgress"
    # Registering again during the delay makes it a target again.
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": web, "Port": 443}])
    assert _states(elbv2, arn)[(web, 443)] != "draining"
    # With no delay, a deregistered target is gone at once.
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": web, "Port": 443}])
    assert _states(elbv2, arn) == {}
