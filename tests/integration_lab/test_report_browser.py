"""The incident report in a real browser: Debian's Chromium, headless, renders the report of real module results
from the lab; its screenshot is taken and the page's rendered text checked.

Chromium is installed by the project (tests/tooling/install_chromium.sh, run by `make test`). The sample screenshot in
docs/report-sample.png is this test's screenshot (REPORT_SAMPLE=docs/report-sample.png keeps it).
"""

import html
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import tempfile

import pytest

from tests.lab.pytest_plugin import REPO

MODULE = "cloudsec.guardduty.incident_report"
# The flags a headless Chromium needs on a closed network (docs: the machine's notes on Chromium): no sandbox as root,
# no background networking, a fresh profile.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1"]


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: `make test` installs it (tests/tooling/install_chromium.sh: apt-get install chromium)"
    return path


def run_chromium(*args):
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "a PNG"
    return struct.unpack(">II", head[16:24])


def visible_text(dom):
    body = re.sub(r"(?is)<(style|head)[^>]*>.*?</\1>", " ", dom)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.fixture(scope="module")
def report(lab, tmp_path_factory):
    """A report of real results: web-1 infected (EICAR in the demo), contained with its snapshots; app-1 contained."""
    lab.reset("demo")
    web, app = lab.instance("web-1")["id"], lab.instance("app-1")["id"]
    ids = [web, app]
    snapshots = lab.run_module("cloudsec.guardduty.ec2_forensic_snapshot", {"instance_ids": ids, "incident_id": "INC-88"})
    scan = lab.run_module("cloudsec.guardduty.guardduty_malware_scan", {"instance_ids": ids, "wait": True, "wait_timeout": 120})
    isolation = lab.run_module("cloudsec.guardduty.ec2_isolation", {"instance_ids": ids})
    by_id = isolation["instances"]  # ec2_isolation answers per instance id, as every module
    instances = {iid: {"host": name, "account_id": "123456789012", "region": "us-east-1",
                       "tags": {"Name": name, "Team": "payments"},
                       "findings": [{"id": "f-" + name, "type": "Backdoor:EC2/C&CActivity.B", "severity": 8.0,
                                     "title": f"{name} is querying a command and control server", "count": 4,
                                     "first_seen": "2026-12-05T17:00:00Z", "last_seen": "2026-12-05T18:00:00Z"}],
                       "stages": {"snapshots": snapshots["instances"][iid], "scan": scan["instances"][iid],
                                  "network": by_id[iid]}}
                 for name, iid in (("web-1", web), ("app-1", app))}
    report_dir = tmp_path_factory.mktemp("reports")
    result = lab.run_module(MODULE, {"incident_id": "INC-88", "report_dir": str(report_dir), "instances": instances,
                                     "run": {"kind": "isolate", "playbook": "Isolate potentially compromised EC2 instances",
                                             "check_mode": False, "started": "2026-12-05T18:42:00Z"}})
    return {"result": result, "web": web, "app": app, "dir": report_dir}


def test_report_renders_in_chromium_with_its_summary_first(report, tmp_path):
    page = pathlib.Path(report["result"]["files"]["html"])
    shot = tmp_path / "report.png"
    run_chromium(f"--screenshot={shot}", "--window-size=1280,1500", page.as_uri())
    width, height = png_size(shot)
    assert (width, height) == (1280, 1500) and shot.stat().st_size > 20000, "a real rendering, not a blank page"
    if os.environ.get("REPORT_SAMPLE"):
        shutil.copyfile(shot, REPO / os.environ["REPORT_SAMPLE"])

    text = visible_text(run_chromium("--dump-dom", page.as_uri()))
    web, app = report["web"], report["app"]
    # What a manager reads first, in this order, then the folded detail.
    order = [text.index(s) for s in ("Executive summary", "2 contained", "Still exposed", "Instances", "Findings",
                                     "Timeline", "Next steps", "Every stage and call")]
    assert order == sorted(order), text[:2000]
    assert re.search(rf"web-1 {web} web-1 123456789012 us-east-1 contained INFECTED: EICAR-Test-File", text), text[:3000]
    assert re.search(rf"app-1 {app} app-1 123456789012 us-east-1 contained CLEAN", text), text[:3000]
    assert "Backdoor:EC2/C&CActivity.B 8.0 web-1 is querying a command and control server" in text
    assert "release_confirm=INC-88" in text and "Malware found on " + web in text
    assert "Calls made (planned" not in text


def test_incident_page_renders_in_chromium(report, tmp_path):
    page = pathlib.Path(report["result"]["index_files"]["html"])
    shot = tmp_path / "incident.png"
    run_chromium(f"--screenshot={shot}", "--window-size=1100,700", page.as_uri())
    assert png_size(shot) == (1100, 700)
    text = visible_text(run_chromium("--dump-dom", page.as_uri()))
    assert "Runs, newest first" in text and "20261205T184200Z-isolate" in text
    assert re.search(rf"web-1 {report['web']} 123456789012 us-east-1 contained INFECTED", text), text[:2000]
    index = json.loads(pathlib.Path(report["result"]["index_files"]["json"]).read_text())
    assert [r["report"] for r in index["runs"]] == ["runs/20261205T184200Z-isolate/report.html"]
