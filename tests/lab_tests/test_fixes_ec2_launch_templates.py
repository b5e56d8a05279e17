"""RunInstances with a launch template that has network interfaces: AWS refuses an instance-level subnet
(InvalidParameterCombination, EC2 API reference RunInstances SubnetId) and launches the template's interfaces."""

import botocore.exceptions
import pytest


def _template(ec2, subnet, group):
    return ec2.create_launch_template(LaunchTemplateName="with-nics", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro",
        "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [group]}]})["LaunchTemplate"]


def test_subnet_id_with_a_template_that_has_network_interfaces_is_refused(demo):
    ec2 = demo.client("ec2")
    web = ec2.describe_instances(InstanceIds=[demo.instance("web-1")["id"]])["Reservations"][0]["Instances"][0]
    template = _template(ec2, web["SubnetId"], web["SecurityGroups"][0]["GroupId"])
    launch = {"LaunchTemplate": {"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
              "MinCount": 1, "MaxCount": 1}
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ec2.run_instances(SubnetId=web["SubnetId"], **launch)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "instance-level subnet ID" in refused.value.response["Error"]["Message"]
    # The subnet in the interface instead: accepted, launched in that subnet with the template's group.
    launched = ec2.run_instances(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": web["SubnetId"],
                                                     "Groups": [web["SecurityGroups"][0]["GroupId"]]}], **launch)
    instance = launched["Instances"][0]
    assert instance["SubnetId"] == web["SubnetId"]
    # Without any network setting, the template's interfaces are used.
    plain = ec2.run_instances(**launch)["Instances"][0]
    assert plain["SubnetId"] == web["SubnetId"]
    assert [g["GroupId"] for g in plain["NetworkInterfaces"][0]["Groups"]] == [web["SecurityGroups"][0]["GroupId"]]
