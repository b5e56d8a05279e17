"""AWS refuses EC2 tag values over 256 characters and keys over 128 (InvalidParameterValue); at the limit is fine."""

import botocore.exceptions
import pytest


def test_tag_lengths_are_enforced_like_aws(demo):
    ec2 = demo.client("ec2")
    instance_id = demo.instance("healthy-1")["id"]
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    for tag, what in (({"Key": "a", "Value": "v" * 257}, "value"), ({"Key": "k" * 129, "Value": "v"}, "key")):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            ec2.create_tags(Resources=[instance_id], Tags=[tag])
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert f"Tag {what} exceeds the maximum length" in refused.value.response["Error"]["Message"]
    tags = {t["Key"]: t["Value"] for t in ec2.describe_tags(
        Filters=[{"Name": "resource-id", "Values": [instance_id]}])["Tags"]}
    assert tags["k" * 128] == "v" * 256 and "a" not in tags and "k" * 129 not in tags
