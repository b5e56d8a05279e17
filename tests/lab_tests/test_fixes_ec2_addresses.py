"""AWS's DescribeAddresses: the instance behind an address associated through its network interface is
shown (InstanceId), and an address associated with nothing has no InstanceId nor NetworkInterfaceId."""


def address(ec2, allocation_id):
    return ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]


def test_instance_id_shows_through_the_network_interface_and_is_absent_when_unassociated(demo):
    ec2 = demo.client("ec2")
    web = demo.instance("web-1")
    allocation_id = web["allocation_id"]
    ec2.disassociate_address(AssociationId=address(ec2, allocation_id)["AssociationId"])
    free = address(ec2, allocation_id)
    assert "InstanceId" not in free and "NetworkInterfaceId" not in free and "AssociationId" not in free, free

    ec2.associate_address(AllocationId=allocation_id, NetworkInterfaceId=web["enis"][0])
    through_eni = address(ec2, allocation_id)
    assert through_eni["InstanceId"] == web["id"] and through_eni["NetworkInterfaceId"] == web["enis"][0]
    by_instance = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [web["id"]]}])["Addresses"]
    assert [a["AllocationId"] for a in by_instance] == [allocation_id]


def _public_instance(ec2, subnet):
    """An instance whose primary interface got an auto-assigned public IPv4, then an Elastic IP on it."""
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": True}])["Instances"][0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    allocation = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=allocation["AllocationId"], NetworkInterfaceId=eni)["AssociationId"]
    return instance["InstanceId"], eni, allocation["PublicIp"], association


def _public_ip(ec2, eni):
    association = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0].get("Association") or {}
    return association.get("PublicIp"), association.get("IpOwnerId")


def test_disassociating_an_elastic_ip_gives_a_new_public_ip_that_associate_public_ip_false_removes(demo):
    # EC2 User Guide, Public IPv4 addresses: disassociating the Elastic IP gives the instance a new public
    # IP address, unless it has more than one network interface; botocore ec2 model,
    # ModifyNetworkInterfaceAttributeRequest.AssociatePublicIpAddress applies to the primary interface (eth0).
    ec2 = demo.client("ec2")
    subnet = ec2.describe_instances(InstanceIds=[demo.instance("web-1")["id"]])["Reservations"][0]["Instances"][0]["SubnetId"]
    dummy_id, eni, elastic, association = _public_instance(ec2, subnet)
    assert _public_ip(ec2, eni)[0] == elastic
    ec2.disassociate_address(AssociationId=association)
    new_ip, owner = _public_ip(ec2, eni)
    assert new_ip and new_ip != elastic and owner == "amazon"
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, AssociatePublicIpAddress=False)
    assert _public_ip(ec2, eni) == (None, None)

    # Two network interfaces: no new public IP once the Elastic IP is gone.
    instance_id, eni, elastic, association = _public_instance(ec2, subnet)
    second = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=instance_id, DeviceIndex=1)
    ec2.disassociate_address(AssociationId=association)
    assert _public_ip(ec2, eni) == (None, None)
