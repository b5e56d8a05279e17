"""Calls AWS refuses, refused by the lab as AWS does (sources in tests/lab/fixes/ec2_aws_refusals.py)."""

import pytest
from botocore.exceptions import ClientError


def _subnet(demo):
    return demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]["app-a"]


def _launch(demo, **kwargs):
    ec2 = demo.client("ec2")
    return ec2, ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=_subnet(demo),
                                  **kwargs)["Instances"][0]["InstanceId"]


def _code(err):
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


@pytest.mark.parametrize("attribute", ["DisableApiTermination", "DisableApiStop"])
def test_termination_and_stop_protection_cannot_be_enabled_on_a_spot_instance(demo, attribute):
    ec2, spot = _launch(demo, InstanceType="t3.micro", InstanceMarketOptions={"MarketType": "spot"})
    assert ec2.describe_instances(InstanceIds=[spot])["Reservations"][0]["Instances"][0]["InstanceLifecycle"] == "spot"
    with pytest.raises(ClientError) as err:
        ec2.modify_instance_attribute(InstanceId=spot, **{attribute: {"Value": True}})
    code, message = _code(err)
    assert code == "UnsupportedOperation" and "not supported for spot instances" in message
    key = attribute[0].lower() + attribute[1:]
    assert ec2.describe_instance_attribute(InstanceId=spot, Attribute=key)[attribute]["Value"] is False
    # turning it off, and the other attributes, are accepted; an on-demand instance takes protection
    ec2.modify_instance_attribute(InstanceId=spot, **{attribute: {"Value": False}})
    ec2.modify_instance_attribute(InstanceId=spot, InstanceInitiatedShutdownBehavior={"Value": "stop"})
    _ec2, on_demand = _launch(demo, InstanceType="t3.micro")
    ec2.modify_instance_attribute(InstanceId=on_demand, **{attribute: {"Value": True}})
    assert ec2.describe_instance_attribute(InstanceId=on_demand, Attribute=key)[attribute]["Value"] is True


@pytest.mark.parametrize("instance_type, refused", [("t2.micro", True), ("m4.large", True), ("c4.large", True),
                                                    ("i3.metal", False), ("t3.micro", False), ("m5.large", False)])
def test_latest_console_output_only_on_nitro_instance_types(demo, instance_type, refused):
    ec2, instance_id = _launch(demo, InstanceType=instance_type)
    if refused:
        with pytest.raises(ClientError) as err:
            ec2.get_console_output(InstanceId=instance_id, Latest=True)
        code, message = _code(err)
        assert code == "UnsupportedOperation" and instance_type in message
    else:
        assert ec2.get_console_output(InstanceId=instance_id, Latest=True)["InstanceId"] == instance_id
    # without Latest, every type answers (the buffered output)
    assert ec2.get_console_output(InstanceId=instance_id)["InstanceId"] == instance_id


@pytest.mark.parametrize("name, text", [("g" * 256, "Length exceeds maximum of 255"), ("sg-isolation", "sg-*"),
                                        ("SG-isolation", "sg-*")])
def test_group_names_aws_refuses(demo, name, text):
    ec2 = demo.client("ec2")
    vpc = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["vpcs"]["prod"]
    with pytest.raises(ClientError) as err:
        ec2.create_security_group(GroupName=name, Description="x", VpcId=vpc)
    code, message = _code(err)
    assert code == "InvalidParameterValue" and text in message
    assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"] == []
    assert ec2.create_security_group(GroupName="g" * 255, Description="x", VpcId=vpc)["GroupId"].startswith("sg-")


@pytest.mark.parametrize("direction", ["ingress", "egress"])
@pytest.mark.parametrize("icmp_type, icmp_code, text", [(256, 0, "ICMP type (256) out of range"),
                                                        (8, 65535, "ICMP code (65535) out of range"),
                                                        (-1, 0, "ICMP code (0) out of range")])
def test_icmp_type_and_code_out_of_range_are_refused(demo, direction, icmp_type, icmp_code, text):
    ec2 = demo.client("ec2")
    vpc = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["vpcs"]["prod"]
    group = ec2.create_security_group(GroupName=f"icmp-{direction}", Description="x", VpcId=vpc)["GroupId"]
    authorize = getattr(ec2, f"authorize_security_group_{direction}")
    with pytest.raises(ClientError) as err:
        authorize(GroupId=group, IpPermissions=[{"IpProtocol": "icmp", "FromPort": icmp_type, "ToPort": icmp_code,
                                                 "IpRanges": [{"CidrIp": "10.9.9.9/32"}]}])
    code, message = _code(err)
    assert code == "InvalidParameterValue" and text in message
    authorize(GroupId=group, IpPermissions=[{"IpProtocol": "icmp", "FromPort": 8, "ToPort": 0,
                                             "IpRanges": [{"CidrIp": "10.9.9.9/32"}]}])
    rules = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    permissions = rules["IpPermissions"] if direction == "ingress" else rules["IpPermissionsEgress"]
    assert [(p["FromPort"], p["ToPort"]) for p in permissions if p["IpProtocol"] == "icmp"] == [(8, 0)]
