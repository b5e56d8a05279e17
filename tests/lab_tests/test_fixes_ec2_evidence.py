"""AWS's behaviour for EBS snapshots and instance protection attributes, as the lab must show it."""

import time

import botocore.session
import pytest
from botocore.exceptions import ClientError

from tests.lab.fixes.ec2_evidence import SNAPSHOT_PENDING_SECONDS


@pytest.fixture
def ec2(demo):
    return demo.client("ec2")


def _attribute(ec2, instance_id, name):
    return ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name)[name[0].upper() + name[1:]]["Value"]


def test_create_snapshots_answers_pending_snapshots_with_their_state(demo, ec2):
    # AWS: CreateSnapshots returns one SnapshotInfo per volume, State `pending`; each snapshot gets the
    # TagSpecifications' tags; the snapshot completes later.
    web = demo.instance("web-1")
    answer = ec2.create_snapshots(InstanceSpecification={"InstanceId": web["id"], "ExcludeBootVolume": False},
                                  TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])
    info = answer["Snapshots"]
    members = set(botocore.session.get_session().get_service_model("ec2").shape_for("SnapshotInfo").members)
    assert all(set(s) <= members for s in info)
    assert sorted(s["VolumeId"] for s in info) == sorted(web["volumes"])
    assert {s["State"] for s in info} == {"pending"}
    assert all(s["Tags"] == [{"Key": "k", "Value": "v"}] for s in info)
    ids = [s["SnapshotId"] for s in info]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    done = ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]
    assert {(s["State"], s["Progress"]) for s in done} == {("completed", "100%")}


def test_snapshots_stay_pending_a_while(demo, ec2):
    volume = demo.instance("web-1")["volumes"][0]
    snapshot = ec2.create_snapshot(VolumeId=volume)
    assert snapshot["State"] == "pending"
    assert SNAPSHOT_PENDING_SECONDS > 0
    time.sleep(SNAPSHOT_PENDING_SECONDS + 0.1)
    assert ec2.describe_snapshots(SnapshotIds=[snapshot["SnapshotId"]])["Snapshots"][0]["State"] == "completed"


def test_shutdown_behaviour_changes_only_that_attribute(demo, ec2):
    # AWS: ModifyInstanceAttribute(InstanceInitiatedShutdownBehavior) changes that attribute alone
    # (moto 5.2.5 ignored it and emptied the instance's security groups instead).
    web = demo.instance("web-1")["id"]
    groups = ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["SecurityGroups"]
    ec2.modify_instance_attribute(InstanceId=web, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    assert _attribute(ec2, web, "instanceInitiatedShutdownBehavior") == "terminate"
    assert ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["SecurityGroups"] == groups
    with pytest.raises(ClientError) as error:
        ec2.modify_instance_attribute(InstanceId=web, InstanceInitiatedShutdownBehavior={"Value": "hibernate"})
    assert error.value.response["Error"]["Code"] == "InvalidInstanceAttributeValue"


def test_protection_attributes_round_trip(demo, ec2):
    web = demo.instance("web-1")["id"]
    for name, param in (("disableApiTermination", "DisableApiTermination"), ("disableApiStop", "DisableApiStop")):
        assert _attribute(ec2, web, name) is False
        ec2.modify_instance_attribute(InstanceId=web, **{param: {"Value": True}})
        assert _attribute(ec2, web, name) is True
    with pytest.raises(ClientError) as error:
        ec2.terminate_instances(InstanceIds=[web])
    assert error.value.response["Error"]["Code"] == "OperationNotPermitted"


def test_block_device_mapping_attribute_and_delete_on_termination(demo, ec2):
    # AWS: DescribeInstanceAttribute(blockDeviceMapping) lists each EBS mapping; ModifyInstanceAttribute
    # sets DeleteOnTermination per device and rejects a device that is not mapped.
    web = demo.instance("web-1")
    mappings = ec2.describe_instance_attribute(InstanceId=web["id"], Attribute="blockDeviceMapping")["BlockDeviceMappings"]
    assert sorted(m["Ebs"]["VolumeId"] for m in mappings) == sorted(web["volumes"])
    assert {m["Ebs"]["DeleteOnTermination"] for m in mappings} == {True}
    ec2.modify_instance_attribute(InstanceId=web["id"], BlockDeviceMappings=[
        {"DeviceName": m["DeviceName"], "Ebs": {"DeleteOnTermination": False}} for m in mappings])
    described = ec2.describe_instances(InstanceIds=[web["id"]])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]
    assert {m["Ebs"]["DeleteOnTermination"] for m in described} == {False}
    with pytest.raises(ClientError) as error:
        ec2.modify_instance_attribute(InstanceId=web["id"], BlockDeviceMappings=[
            {"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": False}}])
    assert error.value.response["Error"]["Code"] == "InvalidInstanceAttributeValue"
    # Volumes kept on termination survive it.
    ec2.terminate_instances(InstanceIds=[web["id"]])
    volumes = ec2.describe_volumes(VolumeIds=web["volumes"])["Volumes"]
    assert sorted(v["VolumeId"] for v in volumes) == sorted(web["volumes"])


def test_modify_instance_attribute_without_attribute_is_rejected(demo, ec2):
    web = demo.instance("web-1")["id"]
    groups = ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["SecurityGroups"]
    with pytest.raises(ClientError) as error:
        ec2.modify_instance_attribute(InstanceId=web)
    assert error.value.response["Error"]["Code"] == "MissingParameter"
    assert ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["SecurityGroups"] == groups


def test_journal_tells_s3_object_operations_sharing_a_path_apart(demo):
    # AWS: PUT /{Bucket}/{Key+} is PutObject, CopyObject when x-amz-copy-source is sent, PutObjectTagging
    # with ?tagging. The journal and forced faults must name the operation the request really is.
    s3 = demo.client("s3")
    s3.create_bucket(Bucket="journal-names")
    mark = demo.mark()
    s3.put_object(Bucket="journal-names", Key="a/b.txt", Body=b"x", IfNoneMatch="*")
    s3.copy_object(Bucket="journal-names", Key="a/c.txt", CopySource={"Bucket": "journal-names", "Key": "a/b.txt"})
    s3.put_object_tagging(Bucket="journal-names", Key="a/c.txt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    s3.get_object(Bucket="journal-names", Key="a/b.txt")
    assert [e["action"] for e in demo.journal(since=mark, service="s3")] == [
        "PutObject", "CopyObject", "PutObjectTagging", "GetObject"]
