import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_instance_protection as p

IID = "i-0123456789abcdef0"


def current(term=False, stop=False, shutdown="stop", dot=None):
    return {"termination_protection": term, "stop_protection": stop, "shutdown_behavior": shutdown,
            "delete_on_termination": dot if dot is not None else {"/dev/xvda": True, "/dev/sdf": False}}


def tags_of(calls):
    return [{"Key": t["Key"], "Value": t["Value"]} for c in calls if c[0] == "CreateTags" for t in c[1]["Tags"]]


def test_current_protection_from_describe_answers():
    instance = {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-1", "DeleteOnTermination": True}}]}
    attrs = {"DisableApiTermination": {"Value": False}, "DisableApiStop": {"Value": True},
             "InstanceInitiatedShutdownBehavior": {"Value": "terminate"}}
    assert p.current_protection(instance, attrs) == current(stop=True, shutdown="terminate", dot={"/dev/xvda": True})


def test_protect_records_first_then_changes_each_attribute():
    calls, record, after = p.plan_protect(IID, current(shutdown="terminate"), None, stop_protection=True)
    assert [c[0] for c in calls] == ["CreateTags"] + ["ModifyInstanceAttribute"] * 4
    assert calls[1][1]["BlockDeviceMappings"] == [{"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False}}]
    assert record == {"termination_protection": False, "stop_protection": False, "shutdown_behavior": "terminate",
                      "delete_on_termination": ["/dev/xvda"]}
    assert after["delete_on_termination"] == {"/dev/xvda": False, "/dev/sdf": False}
    assert p.read_record(tags_of(calls), ["/dev/xvda", "/dev/sdf"]) == record


def test_protected_instance_needs_no_call():
    prot = current(term=True, dot={"/dev/xvda": False})
    record = {"termination_protection": False, "stop_protection": False, "shutdown_behavior": "stop",
              "delete_on_termination": ["/dev/xvda"]}
    assert p.plan_protect(IID, prot, record, stop_protection=False)[0] == []


def test_volume_attached_after_protection_joins_the_record_before_it_changes():
    record = {"termination_protection": False, "stop_protection": False, "shutdown_behavior": "stop",
              "delete_on_termination": ["/dev/xvda"]}
    calls, new_record, unused_after = p.plan_protect(IID, current(term=True, dot={"/dev/xvda": False, "/dev/sdh": True}), record, False)
    assert [c[0] for c in calls] == ["CreateTags", "ModifyInstanceAttribute"]
    assert new_record["delete_on_termination"] == ["/dev/sdh", "/dev/xvda"]
    assert new_record["termination_protection"] is False  # the original values are kept


def test_release_restores_exactly_and_removes_the_record_last():
    record = {"termination_protection": False, "stop_protection": True, "shutdown_behavior": "terminate",
              "delete_on_termination": ["/dev/xvda"]}
    prot = current(term=True, stop=True, dot={"/dev/xvda": False, "/dev/sdf": False})
    calls, after = p.plan_release(IID, prot, record, ["guardduty:protection-record"])
    assert [c[0] for c in calls] == ["ModifyInstanceAttribute"] * 3 + ["DeleteTags"]
    assert calls[-2][1] == {"InstanceId": IID, "DisableApiTermination": {"Value": False}}
    assert after == {"termination_protection": False, "stop_protection": True, "shutdown_behavior": "terminate",
                     "delete_on_termination": {"/dev/xvda": True, "/dev/sdf": False}}
    assert p.plan_release(IID, prot, None, []) == ([], prot)


def test_many_volumes_split_across_tags_and_read_back():
    devices = [f"/dev/xvd{a}{b}" for a in "abcdefghij" for b in "abcdefghijklmnopqrstuvwxyz"]
    record = {"termination_protection": True, "stop_protection": False, "shutdown_behavior": "stop",
              "delete_on_termination": sorted(devices)}
    tags = p.encode_record(record)
    assert len(tags) > 1 and all(len(v) <= 256 for v in tags.values())
    assert list(tags)[:2] == ["guardduty:protection-record", "guardduty:protection-record:2"]
    as_aws = [{"Key": k, "Value": v} for k, v in reversed(list(tags.items()))]
    assert p.read_record(as_aws, devices) == record
    assert p.record_tag_keys(as_aws)[0] == "guardduty:protection-record"


def test_unreadable_record_is_an_error():
    with pytest.raises(ValueError, match="unreadable protection record"):
        p.read_record([{"Key": "guardduty:protection-record", "Value": "{not json"}], [])


def test_spot_and_instance_store_protections_aws_refuses_are_not_planned():
    assert p.unsupported_protection({"InstanceLifecycle": "spot"}).keys() == {"termination_protection", "stop_protection"}
    assert list(p.unsupported_protection({"RootDeviceType": "instance-store"})) == ["stop_protection"]
    assert p.unsupported_protection({"RootDeviceType": "ebs"}) == {}
    unsupported = p.unsupported_protection({"InstanceLifecycle": "spot"})
    calls, record, after = p.plan_protect(IID, current(shutdown="terminate"), None, True, unsupported=unsupported)
    planned = [c[1] for c in calls if c[0] == "ModifyInstanceAttribute"]
    assert not [c for c in planned if "DisableApiTermination" in c or "DisableApiStop" in c]
    # the disks and the shutdown behaviour are still protected, and the prediction says what stays
    assert {"InstanceInitiatedShutdownBehavior": {"Value": "stop"}, "InstanceId": IID} in planned
    assert any("BlockDeviceMappings" in c for c in planned)
    assert after["termination_protection"] is False and after["stop_protection"] is False
    assert record["termination_protection"] is False
