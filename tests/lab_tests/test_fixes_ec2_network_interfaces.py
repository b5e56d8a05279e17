"""AWS's behaviour for network-interface security groups and console screenshots, as the lab must show it."""

import base64

import pytest


@pytest.fixture
def ec2(demo):
    return demo.client("ec2")


def _eni_groups(ec2, eni_id):
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    return sorted(g["GroupId"] for g in eni["Groups"])


def _instance(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def test_modify_network_interface_groups_replaces_the_set(demo, ec2):
    # AWS: ModifyNetworkInterfaceAttribute(Groups=[...]) replaces the ENI's groups; the launch-time
    # groups do not survive (moto 5.2.5 kept them by unioning the instance's groups back in).
    web = demo.instance("web-1")
    groups = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["security_groups"]
    eni = web["enis"][0]
    assert _eni_groups(ec2, eni) == sorted([groups["web"], groups["app"]])

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[groups["mgmt"]])

    assert _eni_groups(ec2, eni) == [groups["mgmt"]]
    instance = _instance(ec2, web["id"])
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [groups["mgmt"]]
    assert [g["GroupId"] for g in instance["NetworkInterfaces"][0]["Groups"]] == [groups["mgmt"]]


def test_describe_instances_and_describe_network_interfaces_agree_for_every_eni(demo, ec2):
    app = demo.instance("app-1")
    instance = _instance(ec2, app["id"])
    assert len(instance["NetworkInterfaces"]) == 3
    union = set()
    for nic in instance["NetworkInterfaces"]:
        from_instance = sorted(g["GroupId"] for g in nic["Groups"])
        assert from_instance == _eni_groups(ec2, nic["NetworkInterfaceId"])
        union.update(from_instance)
    # AWS: the instance-level SecurityGroups are the groups of its network interfaces.
    assert {g["GroupId"] for g in instance["SecurityGroups"]} == union


def test_secondary_eni_change_leaves_the_primary_alone(demo, ec2):
    app = demo.instance("app-1")
    groups = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["security_groups"]
    primary, secondary = app["enis"][0], app["enis"][1]
    before = _eni_groups(ec2, primary)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=secondary, Groups=[groups["web"]])
    assert _eni_groups(ec2, secondary) == [groups["web"]]
    assert _eni_groups(ec2, primary) == before


def test_modify_instance_attribute_groups_changes_the_primary_eni(demo, ec2):
    # AWS: ModifyInstanceAttribute(Groups=...) applies to the primary network interface.
    app = demo.instance("app-1")
    groups = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["security_groups"]
    ec2.modify_instance_attribute(InstanceId=app["id"], Groups=[groups["web"]])
    assert _eni_groups(ec2, app["enis"][0]) == [groups["web"]]
    assert _eni_groups(ec2, app["enis"][1]) == sorted([groups["app"], groups["mgmt"]])


def test_eni_group_filter_sees_the_replaced_set(demo, ec2):
    web = demo.instance("web-1")
    groups = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["security_groups"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=web["enis"][0], Groups=[groups["mgmt"]])
    found = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [groups["web"]]}])
    assert web["enis"][0] not in [n["NetworkInterfaceId"] for n in found["NetworkInterfaces"]]


def test_get_console_screenshot_returns_a_jpg(demo, ec2):
    # AWS: GetConsoleScreenshot returns a base64 JPG (EC2 API reference: "Retrieve a JPG-format screenshot");
    # moto raised NotImplementedError.
    web = demo.instance("web-1")
    shot = ec2.get_console_screenshot(InstanceId=web["id"], WakeUp=True)
    assert shot["InstanceId"] == web["id"]
    image = base64.b64decode(shot["ImageData"])
    assert image.startswith(b"\xff\xd8\xff") and image.endswith(b"\xff\xd9")  # JPEG SOI ... EOI
