"""ec2_public_ip against the lab: Elastic IP associations as EC2 reports them, and the journal."""

MODULE = "cloudsec.guardduty.ec2_public_ip"
MEMBER = "111122223333"
WRITES = ("CreateTags", "DeleteTags", "DisassociateAddress", "AssociateAddress")


def writes(lab, since):
    return [e for e in lab.journal(since=since, service="ec2") if e["action"] in WRITES]


def address(lab, allocation_id, account="123456789012"):
    return lab.client("ec2", account=account).describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]


def test_disassociate_and_associate_back(demo):
    worker = demo.instance("worker-1")
    before = address(demo, worker["allocation_id"], MEMBER)
    assert before["NetworkInterfaceId"] == worker["enis"][0]

    mark = demo.mark()
    planned = demo.run_module(MODULE, {"instance_ids": [worker["id"]]}, check=True, account=MEMBER)
    assert planned["changed"] is True and writes(demo, mark) == []

    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [worker["id"]]}, account=MEMBER, diff=True)
    assert result["changed"] is True
    assert [e["action"] for e in writes(demo, mark)] == ["CreateTags", "DisassociateAddress"]
    assert "AssociationId" not in address(demo, worker["allocation_id"], MEMBER)
    assert result["instances"][worker["id"]]["record"] == [[worker["allocation_id"], worker["enis"][0], before["PrivateIpAddress"]]]

    mark = demo.mark()
    assert demo.run_module(MODULE, {"instance_ids": [worker["id"]]}, account=MEMBER)["changed"] is False
    assert writes(demo, mark) == []

    demo.run_module(MODULE, {"instance_ids": [worker["id"]], "state": "associated"}, account=MEMBER)
    after = address(demo, worker["allocation_id"], MEMBER)
    assert (after["NetworkInterfaceId"], after["PrivateIpAddress"]) == (before["NetworkInterfaceId"], before["PrivateIpAddress"])
    mark = demo.mark()
    assert demo.run_module(MODULE, {"instance_ids": [worker["id"]], "state": "associated"}, account=MEMBER)["changed"] is False
    assert writes(demo, mark) == []


def test_address_taken_meanwhile_is_not_taken_back(demo):
    web, healthy = demo.instance("web-1"), demo.instance("healthy-1")
    demo.run_module(MODULE, {"instance_ids": [web["id"]]})
    ec2 = demo.client("ec2")
    ec2.associate_address(AllocationId=web["allocation_id"], NetworkInterfaceId=healthy["enis"][0])
    result = demo.run_module(MODULE, {"instance_ids": [web["id"]], "state": "associated"}, expect_rc=(2,))
    error = result["instances"][web["id"]]["error"]
    assert error["code"] == "Resource.AlreadyAssociated" and healthy["enis"][0] in error["message"]
    assert address(demo, web["allocation_id"])["NetworkInterfaceId"] == healthy["enis"][0]


def test_permission_error_on_one_instance_does_not_hide_the_other(demo):
    web = demo.instance("web-1")
    ec2 = demo.client("ec2")
    healthy = demo.instance("healthy-1")
    extra = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=extra, NetworkInterfaceId=healthy["enis"][0])
    association = address(demo, web["allocation_id"])["AssociationId"]
    demo.faults({"forced": [{"action": "DisassociateAddress", "resource": association, "code": "UnauthorizedOperation",
                             "status": 403}]})
    result = demo.run_module(MODULE, {"instance_ids": [web["id"], healthy["id"]]}, expect_rc=(2,))
    assert result["instances"][web["id"]]["error"]["action"] == "DisassociateAddress"
    assert result["instances"][web["id"]]["error"]["code"] == "UnauthorizedOperation"
    assert result["instances"][healthy["id"]]["changed"] is True
    assert "AssociationId" not in address(demo, extra)
    assert address(demo, web["allocation_id"])["AssociationId"] == association
