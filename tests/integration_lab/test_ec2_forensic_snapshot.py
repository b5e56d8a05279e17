"""ec2_forensic_snapshot against the lab: snapshots as AWS holds them, and the calls in the journal."""

MODULE = "cloudsec.guardduty.ec2_forensic_snapshot"
WRITES = ("CreateSnapshots", "CreateSnapshot", "CreateTags", "DeleteSnapshot")


def writes(lab, since):
    return [e for e in lab.journal(since=since, service="ec2") if e["action"] in WRITES]


def incident_snapshots(lab, incident, account="123456789012"):
    ec2 = lab.client("ec2", account=account)
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:guardduty:incident", "Values": [incident]}])
    return {s["SnapshotId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])} | {"VolumeId": s["VolumeId"]}
            for s in snaps["Snapshots"]}


def test_batch_snapshots_every_volume_with_tags_and_rerun_reuses_them(demo):
    web, app = demo.instance("web-1"), demo.instance("app-1")
    args = {"instance_ids": [web["id"], app["id"]], "incident_id": "INC-1", "finding_ids": ["f1", "f2"]}
    mark = demo.mark()
    result = demo.run_module(MODULE, args)
    assert result["changed"] is True
    # One CreateSnapshots per instance (crash-consistent), never one CreateSnapshot per volume.
    creates = demo.journal(since=mark, action="CreateSnapshots")
    assert len(creates) == 2 and not demo.journal(since=mark, action="CreateSnapshot")
    assert not demo.journal(since=mark, action="DescribeInstanceAttribute")
    snaps = incident_snapshots(demo, "INC-1")
    assert len(snaps) == 5
    for instance in (web, app):
        got = result["instances"][instance["id"]]
        assert sorted(s["volume_id"] for s in got["snapshots"]) == sorted(instance["volumes"])
        for snap in got["snapshots"]:
            tags = snaps[snap["snapshot_id"]]
            assert tags["guardduty:instance"] == instance["id"]
            assert tags["guardduty:volume"] == tags["VolumeId"] == snap["volume_id"]
            assert tags["guardduty:device"] == snap["device"] and snap["device"].startswith("/dev/")
            assert tags["guardduty:findings"] == "f1,f2"
            assert tags["guardduty:snapshot-at"].endswith("Z")
            assert snap["state"] in ("pending", "completed")
    first = {i: sorted(s["snapshot_id"] for s in r["snapshots"]) for i, r in result["instances"].items()}

    mark = demo.mark()
    again = demo.run_module(MODULE, args)
    assert again["changed"] is False
    assert writes(demo, mark) == []
    # The lookup is one DescribeSnapshots for the whole batch, not one per instance.
    assert len(demo.journal(since=mark, action="DescribeSnapshots")) == 1
    assert {i: sorted(s["snapshot_id"] for s in r["snapshots"]) for i, r in again["instances"].items()} == first
    assert len(incident_snapshots(demo, "INC-1")) == 5


def test_check_mode_writes_nothing_and_reports_the_plan(demo):
    web = demo.instance("web-1")
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web["id"]], "incident_id": "INC-2"}, check=True, diff=True)
    assert result["changed"] is True
    assert writes(demo, mark) == []
    planned = result["instances"][web["id"]]["snapshots"]
    assert [s["state"] for s in planned] == ["(new)", "(new)"]
    assert sorted(s["volume_id"] for s in planned) == sorted(web["volumes"])
    assert incident_snapshots(demo, "INC-2") == {}


def test_wait_returns_completed_snapshots_in_member_account(demo):
    worker = demo.instance("worker-1")
    result = demo.run_module(MODULE, {"instance_ids": [worker["id"]], "incident_id": "INC-3", "wait": True,
                                      "wait_delay": 1, "wait_timeout": 120}, account="111122223333")
    snaps = result["instances"][worker["id"]]["snapshots"]
    assert [s["state"] for s in snaps] == ["completed", "completed"]
    assert [s["progress"] for s in snaps] == ["100%", "100%"]
    ec2 = demo.client("ec2", account="111122223333")
    states = {s["SnapshotId"]: s["State"] for s in ec2.describe_snapshots(SnapshotIds=[s["snapshot_id"] for s in snaps])["Snapshots"]}
    assert set(states.values()) == {"completed"}


def test_permission_error_on_one_instance_leaves_the_others_done(demo):
    web, app = demo.instance("web-1"), demo.instance("app-1")
    demo.faults({"forced": [{"action": "CreateSnapshots", "resource": web["id"], "code": "UnauthorizedOperation", "status": 403}]})
    result = demo.run_module(MODULE, {"instance_ids": [web["id"], app["id"], "i-0000000000000000a"], "incident_id": "INC-4"},
                             expect_rc=(2,))
    assert result["failed"] is True
    error = result["instances"][web["id"]]["error"]
    assert error["action"] == "CreateSnapshots" and error["code"] == "UnauthorizedOperation"
    assert web["id"] in error["message"]
    assert result["instances"]["i-0000000000000000a"]["error"]["message"].endswith("not found in this account and region")
    assert sorted(s["volume_id"] for s in result["instances"][app["id"]]["snapshots"]) == sorted(app["volumes"])
    snaps = incident_snapshots(demo, "INC-4")
    assert {t["guardduty:instance"] for t in snaps.values()} == {app["id"]}

    # Once allowed, the rerun snapshots web-1 only: app-1's snapshots are reused.
    demo.faults({})
    mark = demo.mark()
    rerun = demo.run_module(MODULE, {"instance_ids": [web["id"], app["id"]], "incident_id": "INC-4"})
    assert rerun["instances"][web["id"]]["changed"] is True and rerun["instances"][app["id"]]["changed"] is False
    assert [e["action"] for e in demo.journal(since=mark, action="CreateSnapshots")] == ["CreateSnapshots"]
    assert len(incident_snapshots(demo, "INC-4")) == 5


def test_malformed_id_changes_nothing(demo):
    web = demo.instance("web-1")
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web["id"], "not-an-id"], "incident_id": "INC-5"}, expect_rc=(2,))
    assert result["failed"] is True and "not-an-id" in result["errors"][0]["message"]
    assert demo.journal(since=mark, service="ec2") == []


def test_copy_to_another_region_waits_for_sources_and_is_reused(demo):
    web = demo.instance("web-1")
    args = {"instance_ids": [web["id"]], "incident_id": "INC-6", "copy_to_region": "eu-west-1", "wait": True,
            "wait_delay": 1, "wait_timeout": 120}
    mark = demo.mark()
    result = demo.run_module(MODULE, args)
    got = result["instances"][web["id"]]
    assert result["changed"] is True
    sources = {s["snapshot_id"] for s in got["snapshots"]}
    assert set(got["copies"]) == sources
    assert {c["state"] for c in got["copies"].values()} == {"completed"}
    copy_calls = demo.journal(since=mark, action="CopySnapshot")
    assert len(copy_calls) == 2 and {e["region"] for e in copy_calls} == {"eu-west-1"}
    eu = demo.client("ec2", region="eu-west-1")
    copies = eu.describe_snapshots(SnapshotIds=[c["snapshot_id"] for c in got["copies"].values()])["Snapshots"]
    for copy in copies:
        tags = {t["Key"]: t["Value"] for t in copy["Tags"]}
        assert tags["guardduty:source-region"] == "us-east-1"
        assert got["copies"][tags["guardduty:source-snapshot"]]["snapshot_id"] == copy["SnapshotId"]
        assert tags["guardduty:incident"] == "INC-6" and tags["guardduty:instance"] == web["id"]
        assert tags["guardduty:device"].startswith("/dev/")

    mark = demo.mark()
    again = demo.run_module(MODULE, args)
    assert again["changed"] is False and writes(demo, mark) == []
    assert not demo.journal(since=mark, action="CopySnapshot")
    assert again["instances"][web["id"]]["copies"] == {k: dict(v) for k, v in got["copies"].items()}


def test_copy_to_the_same_region_is_refused(demo):
    web = demo.instance("web-1")
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web["id"]], "incident_id": "INC-7", "copy_to_region": "us-east-1"},
                             expect_rc=(2,))
    assert "copy_to_region" in result["msg"]
    assert writes(demo, mark) == []
