import os

from ansible_collections.cloudsec.guardduty.plugins.module_utils.evidence_captures import latest_captures

WEB = "i-0123456789abcdef0"


def manifest(root, *parts):
    path = os.path.join(root, *parts)
    os.makedirs(path)
    with open(os.path.join(path, "manifest.json"), "w") as handle:
        handle.write("{}")
    return os.path.join(path, "manifest.json")


def test_missing_evidence_directory_is_no_capture(tmp_path):
    assert latest_captures(tmp_path / "never-made", "INC-1") == {}


def test_latest_capture_per_instance(tmp_path):
    manifest(tmp_path, "INC-1", "123456789012", "us-east-1", WEB, "20261205T100000Z")
    newest = manifest(tmp_path, "INC-1", "123456789012", "us-east-1", WEB, "20261205T110000Z")
    manifest(tmp_path, "INC-2", "123456789012", "us-east-1", "i-0fedcba9876543210", "20261205T110000Z")
    os.makedirs(tmp_path / "INC-1" / "123456789012" / "us-east-1" / "not-an-instance" / "x")
    assert latest_captures(tmp_path, "INC-1") == {WEB: newest}


def test_symbolic_links_are_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    manifest(elsewhere, "123456789012", "us-east-1", WEB, "20261205T100000Z")
    (tmp_path / "evidence").mkdir()
    os.symlink(elsewhere, tmp_path / "evidence" / "INC-1")
    assert latest_captures(tmp_path / "evidence", "INC-1") == {}
