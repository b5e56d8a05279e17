"""The evidence step's parts for instances already captured for the incident (plugins/filter/evidence.py)."""

import os

from ansible_collections.cloudsec.guardduty.plugins.filter.evidence import evidence_earlier

WEB = "i-0123456789abcdef0"


def test_an_instance_captured_earlier_gets_its_latest_capture_as_its_part(tmp_path):
    for stamp in ("20261201T000000Z", "20261202T000000Z"):
        path = tmp_path / "INC-1" / "123456789012" / "us-east-1" / WEB / stamp
        os.makedirs(path)
        (path / "manifest.json").write_text("{}")
    parts = evidence_earlier(str(tmp_path), "INC-1")
    assert parts == {WEB: {"changed": False, "path": str(tmp_path / "INC-1" / "123456789012" / "us-east-1" / WEB / "20261202T000000Z"),
                           "files": [], "note": "captured earlier for this incident (isolate_evidence_recapture true captures again)"}}
    assert evidence_earlier(str(tmp_path), "INC-2") == {}
