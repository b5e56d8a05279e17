"""incident_report through ansible-playbook: files and permissions, hashes, idempotence, check mode, and a report
of real module results from the demo scenario."""

import hashlib
import json
import os
import stat

MODULE = "cloudsec.guardduty.incident_report"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def small_args(report_dir, **run):
    return {"incident_id": "INC-77", "report_dir": str(report_dir),
            "run": dict({"playbook": "isolate", "check_mode": False}, **run),
            "instances": {"i-0123456789abcdef0": {"host": "web-1", "account_id": "123456789012", "region": "us-east-1",
                                                  "stages": {"snapshots": {"changed": True, "snapshots": [
                                                      {"snapshot_id": "snap-0123456789abcdef0", "volume_id": "vol-0a"}]},
                                                      "credentials": {"changed": True, "role": "web-role",
                                                                      "Credentials": {"SecretAccessKey": SECRET}}}}}}


def test_files_permissions_hashes_and_second_run_unchanged(lab, tmp_path):
    report_dir = tmp_path / "reports"
    first = lab.run_module(MODULE, small_args(report_dir, started="2026-11-28T04:00:00Z"))
    assert first["changed"] is True
    directory = report_dir / "INC-77"
    assert first["directory"] == str(directory)
    assert mode(directory) == 0o700 and mode(report_dir) == 0o700
    assert sorted(os.listdir(directory)) == ["report.html", "report.json", "report.md"], "no temporary file left behind"
    assert first["files"] == {"json": str(directory / "report.json"), "markdown": str(directory / "report.md"),
                              "html": str(directory / "report.html")}
    for fmt, path in first["files"].items():
        assert mode(path) == 0o600, fmt
        assert first["sha256"][fmt] == digest(path), fmt
        text = open(path, encoding="utf-8").read()
        assert "snap-0123456789abcdef0" in text and SECRET not in text, fmt
    assert SECRET not in json.dumps(first), "the module's return (invocation included) is redacted too"
    saved = json.loads((directory / "report.json").read_text())
    assert saved["schema"] == "cloudsec.guardduty.incident_report/1" and saved["run"]["started"] == "2026-11-28T04:00:00Z"
    assert first["counts"]["changed"] == 1 and first["summary"][0]["stages"] == {"snapshots": "changed", "credentials": "changed"}
    assert first["summary_table"].splitlines()[1].split()[0] == "i-0123456789abcdef0"

    # Same content, a later run: nothing changes, the files (and their first run's timestamps) stay as they were.
    before = {p: os.lstat(p).st_mtime_ns for p in first["files"].values()}
    second = lab.run_module(MODULE, small_args(report_dir, started="2026-11-29T10:00:00Z"))
    assert second["changed"] is False
    assert second["sha256"] == first["sha256"]
    assert {p: os.lstat(p).st_mtime_ns for p in first["files"].values()} == before

    # A file loosened by hand is put back to 0600, and that is a change.
    os.chmod(directory / "report.md", 0o644)
    third = lab.run_module(MODULE, small_args(report_dir, started="2026-11-30T08:00:00Z"))
    assert third["changed"] is True and mode(directory / "report.md") == 0o600
    assert third["sha256"] == first["sha256"]

    # Different content: rewritten, with the new hash.
    args = small_args(report_dir)
    args["instances"]["i-0123456789abcdef0"]["stages"]["snapshots"]["snapshots"][0]["state"] = "completed"
    fourth = lab.run_module(MODULE, args)
    assert fourth["changed"] is True and fourth["sha256"]["json"] != first["sha256"]["json"]
    assert fourth["sha256"]["json"] == digest(directory / "report.json")


def test_check_mode_writes_nothing_and_says_what_it_would_write(lab, tmp_path):
    report_dir = tmp_path / "reports"
    result = lab.run_module(MODULE, small_args(report_dir), check=True)
    assert result["changed"] is True
    assert not report_dir.exists()
    assert set(result["files"]) == {"json", "markdown", "html"} and all(len(h) == 64 for h in result["sha256"].values())

    lab.run_module(MODULE, small_args(report_dir, started="2026-11-28T04:00:00Z"))
    again = lab.run_module(MODULE, small_args(report_dir, started="2026-11-30T04:00:00Z"), check=True)
    assert again["changed"] is False


def test_check_mode_run_and_formats(lab, tmp_path):
    report_dir = tmp_path / "reports"
    args = small_args(report_dir, check_mode=True)
    args["formats"] = ["markdown"]
    result = lab.run_module(MODULE, args)
    assert os.listdir(report_dir / "INC-77") == ["report.md"]
    assert result["check_mode_run"] is True and result["summary_table"].startswith("CHECK MODE")
    assert "CHECK MODE (dry run)" in (report_dir / "INC-77" / "report.md").read_text().split("## Summary")[0]


def test_unsafe_incident_id_and_symlinked_directory_are_refused(lab, tmp_path):
    report_dir = tmp_path / "reports"
    bad = small_args(report_dir)
    bad["incident_id"] = "../escape"
    failed = lab.run_module(MODULE, bad, expect_rc=(2,))
    assert failed["failed"] is True and "cannot name a directory" in failed["msg"]
    assert not report_dir.exists() and not (tmp_path / "escape").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report_dir.mkdir()
    (report_dir / "INC-77").symlink_to(elsewhere)
    failed = lab.run_module(MODULE, small_args(report_dir), expect_rc=(2,))
    assert "is not a directory" in failed["msg"] and os.listdir(elsewhere) == []


def test_report_of_real_isolation_and_snapshot_results(demo, tmp_path):
    web, app = demo.instance("web-1"), demo.instance("app-1")
    ids = [web["id"], app["id"]]
    ec2 = demo.client("ec2")
    original = {i["InstanceId"]: sorted({g["GroupId"] for n in i["NetworkInterfaces"] for g in n["Groups"]})
                for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]}
    snapshots = demo.run_module("cloudsec.guardduty.ec2_forensic_snapshot", {"instance_ids": ids, "incident_id": "INC-78"})
    isolation = demo.run_module("cloudsec.guardduty.ec2_isolation", {"instance_ids": ids})
    by_id = {i["instance_id"]: i for i in isolation["instances"]}
    instances = {instance_id: {"host": name, "account_id": "123456789012", "region": "us-east-1",
                               "stages": {"snapshots": snapshots["instances"][instance_id], "network": by_id[instance_id]}}
                 for name, instance_id in (("web-1", web["id"]), ("app-1", app["id"]))}
    report_dir = tmp_path / "reports"
    result = demo.run_module(MODULE, {"incident_id": "INC-78", "report_dir": str(report_dir), "instances": instances,
                                      "run": {"playbook": "isolate", "check_mode": False}})
    assert result["counts"]["instances"] == 2 and result["counts"]["failed"] == 0
    assert {r["host"]: r["stages"] for r in result["summary"]} == {
        "web-1": {"snapshots": "changed", "network": "changed"}, "app-1": {"snapshots": "changed", "network": "changed"}}

    # The snapshot ids are those AWS holds for the incident, and the original groups are those the instances had.
    held = {s["SnapshotId"] for s in ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:guardduty:incident", "Values": ["INC-78"]}])["Snapshots"]}
    assert len(held) == 5
    saved = json.loads((report_dir / "INC-78" / "report.json").read_text())
    for fmt, path in result["files"].items():
        text = open(path, encoding="utf-8").read()
        for snapshot_id in held:
            assert snapshot_id in text, (fmt, snapshot_id)
        for instance_id, groups in original.items():
            for group in groups:
                assert group in text, (fmt, instance_id, group)
    for entry in saved["instances"]:
        nics = entry["stages"]["network"]["result"]["network_interfaces"]
        assert sorted({g for n in nics for g in n["original_security_groups"]}) == original[entry["instance_id"]]
        assert entry["stages"]["snapshots"]["result"]["snapshots"]

    again = demo.run_module(MODULE, {"incident_id": "INC-78", "report_dir": str(report_dir), "instances": instances,
                                     "run": {"playbook": "isolate", "check_mode": False}})
    assert again["changed"] is False
