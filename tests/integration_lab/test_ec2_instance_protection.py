"""ec2_instance_protection against the lab: protection values as AWS reports them, and the journal."""

MODULE = "cloudsec.guardduty.ec2_instance_protection"
WRITES = ("ModifyInstanceAttribute", "CreateTags", "DeleteTags")


def writes(lab, since):
    return [e for e in lab.journal(since=since, service="ec2") if e["action"] in WRITES]


def protection(lab, instance_id, account="123456789012"):
    """The instance's protection values, straight from AWS."""
    ec2 = lab.client("ec2", account=account)

    def attr(name):
        answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name)
        return answer[name[0].upper() + name[1:]]["Value"]

    mappings = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="blockDeviceMapping")["BlockDeviceMappings"]
    tags = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0].get("Tags", [])
    return {"termination": attr("disableApiTermination"), "stop": attr("disableApiStop"),
            "shutdown": attr("instanceInitiatedShutdownBehavior"),
            "dot": {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in mappings},
            "record": sorted(t["Key"] for t in tags if t["Key"].startswith("guardduty:protection-record"))}


def test_protect_then_release_restores_exact_prior_values(demo):
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    ec2 = demo.client("ec2")
    # A varied starting point: release must put back exactly this, not "defaults".
    ec2.modify_instance_attribute(InstanceId=web, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    ec2.modify_instance_attribute(InstanceId=web, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": False}}])
    ec2.modify_instance_attribute(InstanceId=app, DisableApiStop={"Value": True})
    before = {i: protection(demo, i) for i in (web, app)}
    assert before[web]["dot"] == {"/dev/xvda": True, "/dev/sdf": False} and before[web]["shutdown"] == "terminate"

    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web, app], "state": "protected"}, diff=True)
    assert result["changed"] is True
    # The record is written before any attribute changes.
    actions = [(e["action"]) for e in writes(demo, mark)]
    for instance_id in (web, app):
        mine = [e["action"] for e in writes(demo, mark) if instance_id in str(e["params"])]
        assert mine and mine[0] == "CreateTags", mine
    assert actions.count("CreateTags") == 2
    for instance_id in (web, app):
        now = protection(demo, instance_id)
        assert now["termination"] is True and now["shutdown"] == "stop"
        assert set(now["dot"].values()) == {False}
        assert now["record"] == ["guardduty:protection-record"]
        assert now["stop"] is before[instance_id]["stop"]  # stop_protection defaults to false: untouched
    web_result = result["instances"][web]
    assert web_result["before"]["delete_on_termination"] == {"/dev/xvda": True, "/dev/sdf": False}
    assert web_result["record"] == {"termination_protection": False, "stop_protection": False,
                                    "shutdown_behavior": "terminate", "delete_on_termination": ["/dev/xvda"]}

    mark = demo.mark()
    again = demo.run_module(MODULE, {"instance_ids": [web, app], "state": "protected"})
    assert again["changed"] is False
    assert writes(demo, mark) == []

    mark = demo.mark()
    released = demo.run_module(MODULE, {"instance_ids": [web, app], "state": "released"})
    assert released["changed"] is True
    for instance_id in (web, app):
        assert protection(demo, instance_id) == dict(before[instance_id], record=[])
    mark = demo.mark()
    assert demo.run_module(MODULE, {"instance_ids": [web, app], "state": "released"})["changed"] is False
    assert writes(demo, mark) == []


def test_stop_protection_and_member_account(demo):
    worker = demo.instance("worker-1")["id"]
    before = protection(demo, worker, account="111122223333")
    demo.run_module(MODULE, {"instance_ids": [worker], "stop_protection": True}, account="111122223333")
    now = protection(demo, worker, account="111122223333")
    assert now["stop"] is True and now["termination"] is True
    ec2 = demo.client("ec2", account="111122223333")
    try:
        ec2.terminate_instances(InstanceIds=[worker])
        raise AssertionError("a protected instance was terminated")
    except ec2.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "OperationNotPermitted"
    demo.run_module(MODULE, {"instance_ids": [worker], "state": "released"}, account="111122223333")
    assert protection(demo, worker, account="111122223333") == before


def test_check_mode_writes_nothing(demo):
    web = demo.instance("web-1")["id"]
    before = protection(demo, web)
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web], "stop_protection": True}, check=True, diff=True)
    assert result["changed"] is True
    assert writes(demo, mark) == []
    assert protection(demo, web) == before
    planned = result["instances"][web]["calls"]
    assert planned[0].startswith("CreateTags") and len(planned) == 4
    assert result["instances"][web]["after"]["termination_protection"] is True


def test_permission_error_on_one_instance(demo):
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    demo.faults({"forced": [{"action": "ModifyInstanceAttribute", "resource": web, "code": "UnauthorizedOperation", "status": 403}]})
    result = demo.run_module(MODULE, {"instance_ids": [web, app]}, expect_rc=(2,))
    error = result["instances"][web]["error"]
    assert error["action"] == "ModifyInstanceAttribute" and error["code"] == "UnauthorizedOperation"
    assert protection(demo, app)["termination"] is True
    # The record was written first, so the failed instance can still be released exactly.
    assert protection(demo, web)["record"] == ["guardduty:protection-record"]
    demo.faults({})
    demo.run_module(MODULE, {"instance_ids": [web, app], "state": "released"})
    assert protection(demo, web)["dot"] == {"/dev/xvda": True, "/dev/sdf": True}
    assert protection(demo, web)["record"] == []


def test_a_spot_instance_keeps_its_disks_and_says_why_it_has_no_termination_protection(demo):
    """AWS refuses termination and stop protection on Spot Instances (UnsupportedOperation, the lab too): the
    module does not ask, protects the volumes and the shutdown behaviour, and names what it skipped."""
    ec2 = demo.client("ec2")
    subnet = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]["app-a"]
    spot = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet,
                             InstanceMarketOptions={"MarketType": "spot"})["Instances"][0]["InstanceId"]
    web = demo.instance("web-1")["id"]
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [spot, web], "state": "protected", "stop_protection": True})
    assert result["errors"] == [] and not result.get("failed"), result
    skipped = result["instances"][spot]["skipped"]
    assert sorted(skipped) == ["stop_protection", "termination_protection"]
    assert "Spot Instances" in skipped["termination_protection"]
    assert result["instances"][web]["skipped"] == {}
    attempted = [e for e in writes(demo, mark) if e["action"] == "ModifyInstanceAttribute" and spot in str(e["params"])]
    assert attempted and not [e for e in attempted if "DisableApiTermination" in str(e["params"]) or "DisableApiStop" in str(e["params"])]
    assert all(e["status"] < 400 for e in writes(demo, mark))
    after = protection(demo, spot)
    assert after["termination"] is False and after["shutdown"] == "stop" and set(after["dot"].values()) == {False}
    assert protection(demo, web)["termination"] is True and protection(demo, web)["stop"] is True
