"""A security group name is unique in its VPC, also when concurrent callers create it (AWS: the second
CreateSecurityGroup is refused with InvalidGroup.Duplicate). tests/lab/fixes/ec2_security_group_names.py."""

import threading
import time

import pytest
from botocore.exceptions import ClientError
from moto.ec2.exceptions import InvalidSecurityGroupDuplicateError
from moto.ec2.models import ec2_backends
from moto.ec2.models.security_groups import SecurityGroup

from tests.lab import fixes


@pytest.fixture
def backend():
    """moto's EC2 backend in this process with the lab's fixes, so a request's timing can be widened."""
    fixes.apply_all()
    backend = ec2_backends["123456789012"]["eu-west-3"]
    yield backend
    backend.reset()


def test_concurrent_creates_of_one_name_make_one_group(backend, monkeypatch):
    vpc = backend.create_vpc("10.7.0.0/16")
    slow_tags = SecurityGroup.add_tags

    def add_tags(self, tags):  # a thread switch between the name check and the insertion, every time
        time.sleep(0.05)
        return slow_tags(self, tags)

    monkeypatch.setattr(SecurityGroup, "add_tags", add_tags)
    barrier, outcomes = threading.Barrier(3), []

    def create():
        barrier.wait()
        try:
            outcomes.append(backend.create_security_group("guardduty-isolation", "x", vpc_id=vpc.id).id)
        except InvalidSecurityGroupDuplicateError:
            outcomes.append("InvalidGroup.Duplicate")

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    named = [g for g in backend.groups[vpc.id].values() if g.name == "guardduty-isolation"]
    assert len(named) == 1
    assert sorted(outcomes) == sorted([named[0].id, "InvalidGroup.Duplicate", "InvalidGroup.Duplicate"])


def test_second_create_over_http_is_refused_as_duplicate(demo):
    ec2 = demo.client("ec2")
    vpc = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["vpcs"]["prod"]
    ec2.create_security_group(GroupName="dup", Description="x", VpcId=vpc)
    with pytest.raises(ClientError) as err:
        ec2.create_security_group(GroupName="dup", Description="x", VpcId=vpc)
    assert err.value.response["Error"]["Code"] == "InvalidGroup.Duplicate"
