from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_forensic_snapshot as s

INSTANCE = {"InstanceId": "i-0123456789abcdef0", "BlockDeviceMappings": [
    {"DeviceName": "/dev/sdf", "Ebs": {"VolumeId": "vol-2"}},
    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-1"}},
    {"DeviceName": "/dev/sdg", "NoDevice": ""},
]}


def snap(snapshot_id, volume_id, state="completed", **tags):
    return {"SnapshotId": snapshot_id, "VolumeId": volume_id, "State": state, "Progress": "100%",
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def plan(existing=(), findings=()):
    return s.plan_snapshots(INSTANCE, list(existing), "INC-1", list(findings), "2024-01-01T00:00:00Z")


def test_attached_volumes_are_ebs_only_in_device_order():
    assert s.attached_volumes(INSTANCE) == [{"volume_id": "vol-2", "device": "/dev/sdf"},
                                            {"volume_id": "vol-1", "device": "/dev/xvda"}]


def test_first_run_snapshots_the_whole_instance_with_common_tags():
    p = plan(findings=["f1", "f2"])
    assert p["create"] == "instance" and p["reuse"] == [] and p["retag"] == []
    assert p["common_tags"] == {"guardduty:incident": "INC-1", "guardduty:instance": INSTANCE["InstanceId"],
                                "guardduty:snapshot-at": "2024-01-01T00:00:00Z", "guardduty:findings": "f1,f2"}
    assert [x["state"] for x in s.planned_snapshots(p)] == ["(new)", "(new)"]


def test_rerun_reuses_and_plans_nothing():
    tags = {"guardduty:volume": "x", "guardduty:device": "y"}
    p = plan([snap("snap-1", "vol-1", **tags), snap("snap-2", "vol-2", **tags)])
    assert p["create"] is None and p["retag"] == []
    assert [x["snapshot_id"] for x in s.planned_snapshots(p)] == ["snap-2", "snap-1"]


def test_new_volume_alone_is_snapshotted_and_failed_snapshots_are_retaken():
    tags = {"guardduty:volume": "vol-1", "guardduty:device": "/dev/xvda"}
    p = plan([snap("snap-1", "vol-1", **tags), snap("snap-9", "vol-2", state="error")])
    assert p["create"] == [{"volume_id": "vol-2", "device": "/dev/sdf"}]


def test_missing_volume_tags_are_repaired():
    p = plan([snap("snap-1", "vol-1"), snap("snap-2", "vol-2", **{"guardduty:volume": "vol-2", "guardduty:device": "/dev/sdf"})])
    assert p["retag"] == [("snap-1", {"guardduty:volume": "vol-1", "guardduty:device": "/dev/xvda"})]
    assert p["create"] is None


def test_findings_tag_fits_the_tag_value_limit():
    ids = [f"{n:032x}" for n in range(20)]
    value = s.findings_tag_value(ids)
    assert len(value) <= 256
    kept = value.split(",")
    assert kept[-1] == f"+{20 - (len(kept) - 1)}" and kept[:-1] == ids[:len(kept) - 1]
    assert s.findings_tag_value(ids[:3]) == ",".join(ids[:3])


def test_wait_attempts_cover_the_timeout():
    assert s.wait_attempts(600, 15) == 40
    assert s.wait_attempts(5, 15) == 1


def test_plan_copies_copies_completed_sources_without_a_copy():
    sources = [{"snapshot_id": "snap-1", "state": "completed"}, {"snapshot_id": "snap-2", "state": "completed"},
               {"snapshot_id": "snap-3", "state": "pending"}, {"snapshot_id": "snap-4", "state": "completed"}]
    copies = {"snap-1": {"SnapshotId": "snap-c1", "State": "pending"}, "snap-4": {"SnapshotId": "snap-c4", "State": "error"}}
    reuse, to_copy = s.plan_copies(sources, copies)
    assert list(reuse) == ["snap-1"]
    assert [x["snapshot_id"] for x in to_copy] == ["snap-2", "snap-4"]


def test_copy_tags_keep_the_evidence_tags_and_name_the_source():
    tags = s.copy_tags([{"Key": "guardduty:incident", "Value": "INC"}, {"Key": "Name", "Value": "x"}], "snap-1", "us-east-1")
    assert tags == {"guardduty:incident": "INC", "guardduty:source-snapshot": "snap-1", "guardduty:source-region": "us-east-1"}
