"""AWS's rules for assigning security groups to a network interface, as the lab enforces them."""

import pytest
from botocore.exceptions import ClientError


def _eni_and_vpcs(demo):
    ec2 = demo.client("ec2")
    regional = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]
    eni = demo.instance("web-1")["enis"][0]
    return ec2, eni, regional


def test_group_from_another_vpc_is_refused(demo):
    ec2, eni, regional = _eni_and_vpcs(demo)
    with pytest.raises(ClientError) as err:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[regional["security_groups"]["backup"]])
    assert err.value.response["Error"]["Code"] == "InvalidGroup.NotFound"
    groups = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Groups"]
    assert sorted(g["GroupId"] for g in groups) == sorted([regional["security_groups"]["web"],
                                                           regional["security_groups"]["app"]])


def test_unknown_group_is_refused(demo):
    ec2, eni, _ = _eni_and_vpcs(demo)
    with pytest.raises(ClientError) as err:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=["sg-0123456789abcdef0"])
    assert err.value.response["Error"]["Code"] == "InvalidGroup.NotFound"


def test_group_of_the_same_vpc_replaces_the_set(demo):
    ec2, eni, regional = _eni_and_vpcs(demo)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[regional["security_groups"]["mgmt"]])
    groups = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Groups"]
    assert [g["GroupId"] for g in groups] == [regional["security_groups"]["mgmt"]]


def test_lab_tag_marks_an_interface_requester_managed(demo):
    ec2, eni, _ = _eni_and_vpcs(demo)
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["RequesterManaged"] is False
    ec2.create_tags(Resources=[eni], Tags=[{"Key": "lab:requester-managed", "Value": "true"}])
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["RequesterManaged"] is True
