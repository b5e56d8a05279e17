"""incident_report through ansible-playbook: files and permissions, hashes, idempotence, check mode, and a report
of real module results from the demo scenario."""

import hashlib
import json
import os
import pathlib
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


def test_each_run_keeps_its_own_report_and_the_index_gathers_them(lab, tmp_path):
    report_dir = tmp_path / "reports"
    first = lab.run_module(MODULE, small_args(report_dir, started="2026-11-28T04:00:00+00:00"))
    assert first["changed"] is True
    directory = report_dir / "INC-77"
    run_dir = directory / "runs" / "20261128T040000Z-isolate"
    assert first["directory"] == str(directory) and first["run_directory"] == str(run_dir)
    assert mode(directory) == 0o700 and mode(report_dir) == 0o700 and mode(run_dir) == 0o700
    assert sorted(os.listdir(run_dir)) == ["report.html", "report.json", "report.md"], "no temporary file left behind"
    assert sorted(os.listdir(directory)) == ["report.html", "report.json", "report.md", "runs"]
    assert first["files"] == {"json": str(run_dir / "report.json"), "markdown": str(run_dir / "report.md"),
                              "html": str(run_dir / "report.html")}
    for fmt, path in first["files"].items():
        assert mode(path) == 0o600, fmt
        assert first["sha256"][fmt] == digest(path), fmt
        text = open(path, encoding="utf-8").read()
        assert "snap-0123456789abcdef0" in text and SECRET not in text, fmt
    assert all(mode(path) == 0o600 for path in first["index_files"].values())
    assert SECRET not in json.dumps(first), "the module's return (invocation included) is redacted too"
    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["schema"] == "cloudsec.guardduty.incident_report/1"
    assert saved["run"]["started"] == "2026-11-28T04:00:00Z", "times in UTC with their Z"
    assert first["counts"]["changed"] == 1 and first["summary"][0]["stages"] == {"snapshots": "changed", "credentials": "changed"}
    assert first["summary_table"].splitlines()[1].split()[0] == "i-0123456789abcdef0"
    first_bytes = {p: open(p, "rb").read() for p in first["files"].values()}

    # The same run again, a check run, then another in the same second: each its own directory, none overwritten.
    second = lab.run_module(MODULE, small_args(report_dir, started="2026-11-29T10:00:00Z"))
    check = lab.run_module(MODULE, small_args(report_dir, started="2026-11-29T11:00:00Z", check_mode=True))
    again = lab.run_module(MODULE, small_args(report_dir, started="2026-11-29T11:00:00Z", check_mode=True))
    assert check["run_directory"].endswith("20261129T110000Z-isolate-check")
    assert again["run_directory"].endswith("20261129T110000Z-isolate-check-2")
    assert sorted(os.listdir(directory / "runs")) == ["20261128T040000Z-isolate", "20261129T100000Z-isolate",
                                                      "20261129T110000Z-isolate-check", "20261129T110000Z-isolate-check-2"]
    assert {p: open(p, "rb").read() for p in first["files"].values()} == first_bytes
    assert second["files"]["json"] != first["files"]["json"]

    index = json.loads((directory / "report.json").read_text())
    assert index["schema"] == "cloudsec.guardduty.incident_index/1"
    assert [r["run"] for r in index["runs"]] == ["20261129T110000Z-isolate-check-2", "20261129T110000Z-isolate-check",
                                                 "20261129T100000Z-isolate", "20261128T040000Z-isolate"]
    (instance,) = index["instances"]
    # the state comes from the newest real run, not from the dry runs after it
    assert instance["state_run"] == "20261129T100000Z-isolate"
    page = (directory / "report.html").read_text()
    assert 'href="runs/20261128T040000Z-isolate/report.html"' in page


def test_check_mode_writes_nothing_and_says_where_it_would_write(lab, tmp_path):
    report_dir = tmp_path / "reports"
    result = lab.run_module(MODULE, small_args(report_dir, started="2026-11-28T04:00:00Z"), check=True)
    assert not report_dir.exists()
    assert result["files"]["json"] == str(report_dir / "INC-77" / "runs" / "20261128T040000Z-isolate" / "report.json")


def test_check_mode_run_and_formats(lab, tmp_path):
    report_dir = tmp_path / "reports"
    args = small_args(report_dir, check_mode=True, started="2026-11-28T04:00:00Z")
    args["formats"] = ["markdown"]
    result = lab.run_module(MODULE, args)
    run_dir = report_dir / "INC-77" / "runs" / "20261128T040000Z-isolate-check"
    assert sorted(os.listdir(run_dir)) == ["report.json", "report.md"], "the JSON is kept for the index"
    assert result["check_mode_run"] is True and result["summary_table"].startswith("CHECK MODE")
    text = (run_dir / "report.md").read_text()
    assert "CHECK MODE (dry run)" in text.split("## Executive summary")[0]
    assert "Calls made" not in text


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
    by_id = isolation["instances"]
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
    saved = json.loads(pathlib.Path(result["files"]["json"]).read_text())
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

    # the executive summary: both contained, in one account and region, nothing known to be exposed
    assert saved["overview"]["states"]["contained"] == 2 and saved["overview"]["accounts"] == ["123456789012"]
    assert saved["overview"]["exposed"] == []
