"""ec2_instance_evidence against the lab: the files on disk, their hashes and modes, and the journal."""

import base64
import hashlib
import json
import os
import pathlib
import stat

from tests.lab.fixes.ec2_network_interfaces import CONSOLE_SCREENSHOT_JPG

MODULE = "cloudsec.guardduty.ec2_instance_evidence"
FILES = ["attributes.json", "console-output.txt", "console-screenshot.jpg", "instance.json", "network-interfaces.json",
         "volumes.json"]


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def verify_capture(result, evidence_dir, incident, account, instance):
    path = pathlib.Path(result["path"])
    assert path.parent == pathlib.Path(evidence_dir) / incident / account / instance["region"] / instance["id"]
    assert mode(path) == 0o700
    for level in path.relative_to(evidence_dir).parents:
        assert mode(pathlib.Path(evidence_dir) / level) == 0o700
    assert sorted(p.name for p in path.iterdir()) == sorted(FILES + ["manifest.json"])
    manifest = json.loads((path / "manifest.json").read_text())
    assert sha256(path / "manifest.json") == result["manifest_sha256"]
    assert [f["name"] for f in manifest["files"]] == FILES
    for entry in manifest["files"]:
        file = path / entry["name"]
        assert mode(file) == 0o600
        assert sha256(file) == entry["sha256"] and file.stat().st_size == entry["size"]
    assert mode(path / "manifest.json") == 0o600
    assert manifest["instance_id"] == instance["id"] and manifest["account"] == account
    return path, manifest


def test_batch_capture_files_hashes_modes(demo, tmp_path):
    web, app = demo.instance("web-1"), demo.instance("app-1")
    ec2 = demo.client("ec2")
    # An instance whose user data holds a secret: only its hash may reach the evidence store.
    secret = b"#!/bin/sh\nexport DB_PASSWORD=hunter2\n"
    subnet = ec2.describe_instances(InstanceIds=[web["id"]])["Reservations"][0]["Instances"][0]["SubnetId"]
    launched = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                 SubnetId=subnet, UserData=secret.decode())["Instances"][0]
    suspect = {"id": launched["InstanceId"], "region": "us-east-1"}
    evidence_dir = tmp_path / "evidence"
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web["id"], app["id"], suspect["id"]], "incident_id": "INC-1",
                                      "evidence_dir": str(evidence_dir)})
    assert result["changed"] is True
    # ENIs and volumes are described once for the batch.
    assert len(demo.journal(since=mark, action="DescribeNetworkInterfaces")) == 1
    assert len(demo.journal(since=mark, action="DescribeVolumes")) == 1
    assert [e["params"]["Latest"] for e in demo.journal(since=mark, action="GetConsoleOutput")] == ["true"] * 3
    for instance in (web, app):
        path, _ = verify_capture(result["instances"][instance["id"]], evidence_dir, "INC-1", "123456789012", instance)
        assert json.loads((path / "instance.json").read_text())["InstanceId"] == instance["id"]
        assert sorted(n["NetworkInterfaceId"] for n in json.loads((path / "network-interfaces.json").read_text())) \
            == sorted(instance["enis"])
        assert sorted(v["VolumeId"] for v in json.loads((path / "volumes.json").read_text())) == sorted(instance["volumes"])
        # GetConsoleScreenshot returns a JPG: the file is named for what it holds (JPEG magic bytes FF D8 FF)
        assert (path / "console-screenshot.jpg").read_bytes() == CONSOLE_SCREENSHOT_JPG
        assert CONSOLE_SCREENSHOT_JPG.startswith(b"\xff\xd8\xff")
        expected = ec2.get_console_output(InstanceId=instance["id"])["Output"].encode()  # boto3 decodes it
        assert (path / "console-output.txt").read_bytes() == expected
    suspect_path, _ = verify_capture(result["instances"][suspect["id"]], evidence_dir, "INC-1", "123456789012", suspect)
    attributes = json.loads((suspect_path / "attributes.json").read_text())
    assert attributes["userData"]["sha256"] == hashlib.sha256(secret).hexdigest()
    assert attributes["userData"]["size"] == len(secret)
    for file in suspect_path.iterdir():
        assert b"hunter2" not in file.read_bytes()
        assert base64.b64encode(secret) not in file.read_bytes()
    web_path = pathlib.Path(result["instances"][web["id"]]["path"])
    assert json.loads((web_path / "attributes.json").read_text())["userData"]["present"] is False

    # A second run never touches the first capture: it makes a new one beside it.
    first = {p: sha256(p) for p in web_path.iterdir()}
    again = demo.run_module(MODULE, {"instance_ids": [web["id"]], "incident_id": "INC-1", "evidence_dir": str(evidence_dir)})
    assert again["changed"] is True
    second = pathlib.Path(again["instances"][web["id"]]["path"])
    assert second != web_path and second.parent == web_path.parent
    assert {p: sha256(p) for p in web_path.iterdir()} == first
    verify_capture(again["instances"][web["id"]], evidence_dir, "INC-1", "123456789012", web)


def test_member_account_layout(demo, tmp_path):
    worker = demo.instance("worker-1")
    result = demo.run_module(MODULE, {"instance_ids": [worker["id"]], "incident_id": "INC-2", "evidence_dir": str(tmp_path)},
                             account="111122223333")
    verify_capture(result["instances"][worker["id"]], tmp_path, "INC-2", "111122223333", worker)


def test_check_mode_writes_nothing(demo, tmp_path):
    web = demo.instance("web-1")
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web["id"]], "incident_id": "INC-3", "evidence_dir": str(tmp_path / "e")},
                             check=True)
    assert result["changed"] is True
    assert not (tmp_path / "e").exists()
    assert [f["name"] for f in result["instances"][web["id"]]["files"]][-1] == "manifest.json"
    assert not demo.journal(since=mark, action="GetConsoleOutput")
    assert not demo.journal(since=mark, action="GetConsoleScreenshot")


def test_permission_error_on_one_instance(demo, tmp_path):
    web, app = demo.instance("web-1"), demo.instance("app-1")
    demo.faults({"forced": [{"action": "GetConsoleScreenshot", "resource": web["id"], "code": "UnauthorizedOperation",
                             "status": 403}]})
    result = demo.run_module(MODULE, {"instance_ids": [web["id"], app["id"]], "incident_id": "INC-4",
                                      "evidence_dir": str(tmp_path)}, expect_rc=(2,))
    error = result["instances"][web["id"]]["error"]
    assert error["action"] == "GetConsoleScreenshot" and error["code"] == "UnauthorizedOperation"
    assert not (tmp_path / "INC-4" / "123456789012" / "us-east-1" / web["id"]).exists()
    verify_capture(result["instances"][app["id"]], tmp_path, "INC-4", "123456789012", app)


def test_upload_to_s3_encrypted_never_replacing(demo, tmp_path):
    web = demo.instance("web-1")
    s3 = demo.client("s3")
    s3.create_bucket(Bucket="evidence-store")
    args = {"instance_ids": [web["id"]], "incident_id": "INC-5", "evidence_dir": str(tmp_path),
            "s3_bucket": "evidence-store", "s3_prefix": "captures/"}
    mark = demo.mark()
    result = demo.run_module(MODULE, args)
    got = result["instances"][web["id"]]
    path = pathlib.Path(got["path"])
    relative = path.relative_to(tmp_path).as_posix()
    assert [o["key"] for o in got["s3"]] == [f"captures/{relative}/{n}" for n in FILES + ["manifest.json"]]
    puts = demo.journal(since=mark, action="PutObject")
    assert len(puts) == len(FILES) + 1
    for entry in got["s3"]:
        obj = s3.get_object(Bucket="evidence-store", Key=entry["key"])
        body = obj["Body"].read()
        assert body == (path / entry["key"].rsplit("/", 1)[1]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert obj["ServerSideEncryption"] == "AES256"
    assert got["s3"][-1]["sha256"] == got["manifest_sha256"]


def test_s3_refusal_keeps_the_local_capture(demo, tmp_path):
    web = demo.instance("web-1")
    demo.client("s3").create_bucket(Bucket="evidence-store")
    demo.faults({"forced": [{"action": "PutObject", "code": "AccessDenied", "status": 403}]})
    result = demo.run_module(MODULE, {"instance_ids": [web["id"]], "incident_id": "INC-6", "evidence_dir": str(tmp_path),
                                      "s3_bucket": "evidence-store"}, expect_rc=(2,))
    got = result["instances"][web["id"]]
    assert got["error"]["action"] == "PutObject" and got["error"]["code"] == "AccessDenied"
    assert "local capture" in got["error"]["message"]
    verify_capture(got, tmp_path, "INC-6", "123456789012", web)


def test_console_output_without_latest_on_xen_types_and_when_aws_refuses_it(demo, tmp_path):
    """GetConsoleOutput Latest=true is Nitro-only (the lab refuses it on Xen types, as AWS does): a t2 instance
    is asked without Latest at once; a type AWS refuses it for anyway is asked again without it. Both captures
    complete, and the result and the manifest say the output is the buffered one."""
    ec2 = demo.client("ec2")
    subnet = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]["app-a"]
    xen = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t2.micro", MinCount=1, MaxCount=1,
                            SubnetId=subnet)["Instances"][0]["InstanceId"]
    web = demo.instance("web-1")["id"]
    demo.faults({"forced": [{"action": "GetConsoleOutput", "resource": web, "code": "UnsupportedOperation", "count": 1}]})
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [xen, web], "incident_id": "INC-XEN", "screenshot": False,
                                      "evidence_dir": str(tmp_path / "evidence")})
    assert result["errors"] == [], result
    calls = [(e["params"]["InstanceId"], e["params"].get("Latest"), e["outcome"])
             for e in demo.journal(since=mark, action="GetConsoleOutput")]
    assert [c for c in calls if c[0] == xen] == [(xen, None, "ok")]   # never refused: not asked with Latest
    assert [c[1:] for c in calls if c[0] == web] == [("true", "UnsupportedOperation"), (None, "ok")]
    for instance_id, text in ((xen, "t2.micro is not built on the Nitro System"), (web, "Latest=true refused (UnsupportedOperation)")):
        part = result["instances"][instance_id]
        assert part["changed"] and any(text in n for n in part["notes"]), part
        path = pathlib.Path(part["path"])
        assert (path / "console-output.txt").read_bytes() == ec2.get_console_output(InstanceId=instance_id)["Output"].encode()
        assert json.loads((path / "manifest.json").read_text())["notes"] == part["notes"]
