import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import arns


@pytest.mark.parametrize("partition", arns.PARTITIONS)
def test_partition_comes_from_the_callers_arn(partition):
    identity = {"Account": "123456789012", "Arn": f"arn:{partition}:sts::123456789012:assumed-role/GuardDutyResponder/s"}
    assert arns.caller_partition(identity) == partition
    assert arns.role_arn("arn:{partition}:iam::{account_id}:role/GuardDutyResponder", "111122223333", partition) == \
        f"arn:{partition}:iam::111122223333:role/GuardDutyResponder"


def test_every_partition_aws_has():
    assert set(arns.PARTITIONS) == {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f",
                                    "aws-eusc"}


def test_a_template_without_partition_and_an_empty_one():
    assert arns.role_arn("arn:aws:iam::{account_id}:role/R", "1", "aws-cn") == "arn:aws:iam::1:role/R"
    assert arns.role_arn("", "1", "aws") is None


@pytest.mark.parametrize("bad", [None, "", "arn:aws:sts", "not:an:arn:at:all:x", "arn:azure:iam::1:user/x"])
def test_not_an_arn(bad):
    with pytest.raises(ValueError):
        arns.partition_of(bad)
