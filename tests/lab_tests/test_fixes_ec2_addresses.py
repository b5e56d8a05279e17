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
