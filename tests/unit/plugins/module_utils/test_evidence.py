import base64
import hashlib
import json
import os
import stat

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_instance_evidence as e


def test_capture_dir_layout_and_refuses_paths_in_names(tmp_path):
    assert e.capture_dir(str(tmp_path), "INC-1", "123456789012", "us-east-1", "i-0123456789abcdef0", "20240101T000000.000001Z") \
        == str(tmp_path / "INC-1" / "123456789012" / "us-east-1" / "i-0123456789abcdef0" / "20240101T000000.000001Z")
    for bad in ("../etc", "a/b", "..", "", ".hidden"):
        with pytest.raises(ValueError):
            e.capture_dir(str(tmp_path), bad, "1", "r", "i", "t")


def test_user_data_is_hashed_never_kept():
    secret = b"password=hunter2"
    digest = e.user_data_digest(base64.b64encode(secret).decode())
    assert digest == {"present": True, "sha256": hashlib.sha256(secret).hexdigest(), "size": len(secret)}
    assert e.user_data_digest(None) == {"present": False, "sha256": None, "size": 0}
    files = e.evidence_files({"InstanceId": "i-1"}, [], [], base64.b64encode(secret).decode())
    assert all(b"hunter2" not in data for data in files.values())


def test_console_output_and_screenshot_are_decoded_raw_bytes():
    raw = b"boot \xff\xfe log"
    files = e.evidence_files({}, [], [], None, base64.b64encode(raw).decode(), base64.b64encode(b"\xff\xd8\xff").decode())
    assert files[e.FILE_CONSOLE_OUTPUT] == raw and files[e.FILE_SCREENSHOT] == b"\xff\xd8\xff"
    assert e.FILE_SCREENSHOT.endswith(".jpg")  # GetConsoleScreenshot returns a JPG
    assert sorted(files) == sorted(e.planned_files(True, True))


def test_write_capture_modes_hashes_and_never_overwrites(tmp_path):
    os.umask(0o022)
    directory = str(tmp_path / "store" / "INC-1" / "acct" / "t1")
    files = {"a.json": b"{}\n", "b.txt": b"hello"}
    document, body, digest = e.write_capture(directory, files, {"incident_id": "INC-1"})
    assert hashlib.sha256(body).hexdigest() == digest
    assert digest == hashlib.sha256((tmp_path / "store/INC-1/acct/t1/manifest.json").read_bytes()).hexdigest()
    assert json.loads((tmp_path / "store/INC-1/acct/t1/manifest.json").read_text()) == document
    for entry in document["files"]:
        path = tmp_path / "store/INC-1/acct/t1" / entry["name"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"] and entry["size"] == path.stat().st_size
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for level in ("store", "store/INC-1", "store/INC-1/acct", "store/INC-1/acct/t1"):
        assert stat.S_IMODE((tmp_path / level).stat().st_mode) == 0o700
    with pytest.raises(FileExistsError):
        e.write_capture(directory, {"a.json": b"other"}, {})
    assert (tmp_path / "store/INC-1/acct/t1/a.json").read_bytes() == b"{}\n"


def test_s3_keys_follow_the_disk_layout_under_the_prefix():
    rel = os.path.join("INC-1", "123456789012", "us-east-1", "i-1", "t")
    assert e.s3_key("/evidence/", rel, "manifest.json") == "evidence/INC-1/123456789012/us-east-1/i-1/t/manifest.json"
    assert e.s3_key("", rel, "a") == "INC-1/123456789012/us-east-1/i-1/t/a"


def test_latest_console_output_is_asked_only_of_nitro_or_unknown_types():
    from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_instance_evidence import latest_console_supported
    for xen in ("t2.micro", "m4.large", "c4.xlarge", "r4.large", "i3.large", "p3.2xlarge", "x1e.xlarge", "m1.small"):
        assert latest_console_supported(xen) is False, xen
    for nitro in ("t3.micro", "m5.large", "c6i.large", "i3.metal", "p3dn.24xlarge", "m7g.medium", None, ""):
        assert latest_console_supported(nitro) is True, nitro
