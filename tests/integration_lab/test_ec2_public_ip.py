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


def _public_instance(demo):
    """An instance whose primary ENI auto-assigns a public IPv4, with an Elastic IP on it."""
    ec2 = demo.client("ec2")
    subnet = ec2.describe_instances(InstanceIds=[demo.instance("web-1")["id"]])["Reservations"][0]["Instances"][0]["SubnetId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": True}])["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    allocation = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=allocation["AllocationId"], NetworkInterfaceId=eni)
    return instance["InstanceId"], eni, allocation["PublicIp"]


def _public_ip(demo, eni):
    interface = demo.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return (interface.get("Association") or {}).get("PublicIp")


def test_new_public_ip_after_the_elastic_ip_is_reported_and_removed_on_request(demo):
    # EC2 User Guide, Public IPv4 addresses: once its Elastic IP is disassociated, the instance receives a new
    # public IP address (the lab does it too); AssociatePublicIpAddress=false removes it from the primary ENI.
    instance_id, eni, elastic = _public_instance(demo)
    reported = demo.run_module(MODULE, {"instance_ids": [instance_id]})
    new_ip = _public_ip(demo, eni)
    assert new_ip and new_ip != elastic
    [note] = reported["instances"][instance_id]["remaining_exposure"]
    assert new_ip in note and "remove_auto_assigned=true" in note

    instance_id, eni, elastic = _public_instance(demo)
    mark = demo.mark()
    planned = demo.run_module(MODULE, {"instance_ids": [instance_id], "remove_auto_assigned": True}, check=True)
    assert any("ModifyNetworkInterfaceAttribute" in c for c in planned["instances"][instance_id]["calls"])
    assert writes(demo, mark) == [] and _public_ip(demo, eni) == elastic
    result = demo.run_module(MODULE, {"instance_ids": [instance_id], "remove_auto_assigned": True})
    actions = [e["action"] for e in demo.journal(since=mark, service="ec2")
               if e["action"] in WRITES + ("ModifyNetworkInterfaceAttribute",)]
    assert actions == ["CreateTags", "DisassociateAddress", "ModifyNetworkInterfaceAttribute"]
    assert _public_ip(demo, eni) is None
    assert result["instances"][instance_id]["remaining_exposure"] == []
    mark = demo.mark()
    again = demo.run_module(MODULE, {"instance_ids": [instance_id], "remove_auto_assigned": True})
    assert again["changed"] is False and writes(demo, mark) == []
