# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident report's pure functions: redaction at any depth, escaping of hostile values, summary counts,
stable output, and the comparison that leaves the run's timestamps out."""

import copy
import html.parser
import json
import re


from ansible_collections.cloudsec.guardduty.plugins.module_utils import incident_report as reporting

WEB = "i-0123456789abcdef0"
APP = "i-0fedcba9876543210"
HOSTILE = '<script>alert("x")</script> | <img src=http://evil.example/x.png onerror=alert(1)> ``` [a](http://evil.example)'
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"


def instances():
    return {
        WEB: {"host": "web-1", "account_id": "123456789012", "region": "us-east-1", "stages": {
            "snapshots": {"changed": True, "snapshots": [
                {"snapshot_id": "snap-0123456789abcdef0", "volume_id": "vol-0a", "device": "/dev/xvda", "state": "pending"}]},
            "network": {"instance_id": WEB, "changed": True, "state": "isolated", "error": None, "warnings": [],
                        "network_interfaces": [{"network_interface_id": "eni-0a", "vpc_id": "vpc-0a",
                                                "original_security_groups": ["sg-0web", "sg-0app"],
                                                "security_groups": ["sg-0iso"]}]},
            "scan": {"changed": True, "scan_id": "scan-1", "status": "COMPLETED", "result": "INFECTED",
                     "threats": [{"name": HOSTILE, "file_path": "/tmp/eicar.com", "hash": "275a02", "severity": "HIGH"}]},
            "triage": {"changed": False, "recommendations": [
                {"kind": "close_exposure", "finding": "f1", "summary": "close port 22", "module": "cloudsec.guardduty.guardduty_find_source"}]},
        }},
        APP: {"host": "app-1", "account_id": "123456789012", "region": "us-east-1", "stages": {
            "snapshots": {"changed": False, "error": {"instance_id": APP, "action": "CreateSnapshots",
                                                      "code": "UnauthorizedOperation", "message": f"{APP}: CreateSnapshots: denied"}},
            "network": {"instance_id": APP, "changed": False, "state": "failed", "error": None,
                        "network_interfaces": [{"network_interface_id": "eni-0b", "error": "ModifyNetworkInterfaceAttribute: denied"}]},
            "scan": None,
        }},
    }


def build(data=None, **run):
    return reporting.build_report("INC-7", instances() if data is None else data,
                                  run=dict({"playbook": "isolate", "check_mode": False}, **run))


def every_format(report):
    return {fmt: render(report) for fmt, render in reporting.RENDERERS.items()}


def test_redaction_at_any_depth_and_in_text():
    data = {"a": {"b": [{"Credentials": {"AccessKeyId": "ASIAABCDEFGHIJKLMNOP", "SecretAccessKey": SECRET}},
                        {"deeper": {"aws_secret_access_key": SECRET, "aws_session_token": TOKEN, "SessionToken": TOKEN,
                                    "password": "hunter2hunter2", "Authorization": "AWS4-HMAC-SHA256 Credential=x",
                                    "x-amz-security-token": TOKEN, "password_set": False, "keep": "kept"}}]},
            "message": f"failed calling with aws_secret_access_key={SECRET} as AKIAABCDEFGHIJKLMNOP, Signature=" + "ab" * 32}
    out = reporting.redact(data)
    text = json.dumps(out)
    for secret in (SECRET, TOKEN, "hunter2hunter2", "AKIAABCDEFGHIJKLMNOP", "ASIAABCDEFGHIJKLMNOP", "Credential=x", "ab" * 32):
        assert secret not in text
    deeper = out["a"]["b"][1]["deeper"]
    assert deeper["keep"] == "kept" and deeper["password_set"] is False
    assert out["a"]["b"][0]["Credentials"] == reporting.REDACTED
    assert out["message"].startswith("failed calling with aws_secret_access_key=<redacted> as <redacted>")
    assert data["a"]["b"][1]["deeper"]["password"] == "hunter2hunter2", "the input is not modified"


def test_secrets_in_stage_results_reach_no_format_but_the_credentials_stage_is_kept():
    data = instances()
    data[WEB]["stages"]["credentials"] = {"changed": True, "role": "web-role",
                                          "record": {"profile_arn": "arn:aws:iam::123456789012:instance-profile/web-role",
                                                     "nested": [{"SessionToken": TOKEN, "SecretAccessKey": SECRET}]}}
    report = build(data, operator="alice", aws_secret_access_key=SECRET)
    web = next(i for i in report["instances"] if i["instance_id"] == WEB)
    assert web["stages"]["credentials"]["result"]["role"] == "web-role"
    assert web["stages"]["credentials"]["result"]["record"]["nested"] == [{"SessionToken": "<redacted>", "SecretAccessKey": "<redacted>"}]
    for fmt, text in every_format(report).items():
        assert SECRET not in text and TOKEN not in text, fmt
        assert "web-role" in text and "instance-profile/web-role" in text, fmt


def test_hostile_values_are_escaped_in_html():
    report = build()
    page = reporting.render_html(report)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page

    class Tags(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.attrs = set(), []

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            self.attrs.extend(attrs)

    parser = Tags()
    parser.feed(page)
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "p", "dl", "dt", "dd",
                           "b", "ul", "details", "summary", "div", "a",
                           "table", "tr", "th", "td", "ol", "li", "pre", "section", "span"}
    assert not [a for a in parser.attrs if a[0].startswith("on") or a[0] in ("src", "href")]
    assert ("http-equiv", "Content-Security-Policy") in parser.attrs
    policy = [value for name, value in parser.attrs if name == "content" and "default-src" in value]
    assert policy and "default-src 'none'" in policy[0] and "script-src" not in policy[0]


def test_hostile_values_are_escaped_in_markdown_tables_and_code():
    data = instances()
    data[WEB]["host"] = "web|1"
    page = reporting.render_markdown(build(data))
    # Every row of a table keeps its table's column count: no pipe from a value splits a cell.
    unescaped_pipes = re.compile(r"(?<!\\)\|")
    width = None
    for line in page.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        width = width or len(unescaped_pipes.findall(line))
        assert len(unescaped_pipes.findall(line)) == width, line
    assert "web\\|1" in page
    # No unescaped angle bracket (raw HTML) and no link: the hostile name shows as text.
    assert not re.search(r"(?<!\\)[<>]", page)
    assert "\\<script\\>alert" in page
    assert not re.search(r"(?<!\\)\]\(", page)


def test_code_fence_outlasts_backticks_in_values():
    data = {WEB: {"host": "h", "stages": {"x": {"changed": False, "other": "```\n# not a heading\n```"}}}}
    page = reporting.render_markdown(build(data))
    assert "````json" in page


def test_summary_counts_with_failed_and_skipped_stages():
    report = build()
    assert report["stage_order"] == ["snapshots", "network", "scan", "triage"]
    rows = {row["instance_id"]: row for row in report["summary"]}
    assert rows[WEB]["stages"] == {"snapshots": "changed", "network": "changed", "scan": "changed", "triage": "ok"}
    assert rows[WEB]["status"] == "changed" and rows[WEB]["errors"] == 0
    assert rows[APP]["stages"] == {"snapshots": "failed", "network": "failed", "scan": "skipped", "triage": "skipped"}
    assert rows[APP]["status"] == "failed" and rows[APP]["errors"] == 2
    counts = report["counts"]
    assert (counts["instances"], counts["changed"], counts["ok"], counts["failed"], counts["errors"]) == (2, 1, 0, 1, 2)
    assert counts["stages"]["snapshots"] == {"changed": 1, "ok": 0, "failed": 1, "skipped": 0}
    assert counts["stages"]["scan"] == {"changed": 1, "ok": 0, "failed": 0, "skipped": 1}
    assert counts["stages"]["triage"] == {"changed": 0, "ok": 1, "failed": 0, "skipped": 1}
    errors = report["instances"][0]["errors"]
    assert [(e["stage"], e["code"]) for e in errors] == [("snapshots", "UnauthorizedOperation"), ("network", None)]
    assert "eni-0b" in errors[1]["message"]


def test_summary_table_is_fixed_width_and_says_check_mode():
    table = reporting.summary_table(build(check_mode=True))
    lines = table.splitlines()
    assert lines[0].startswith("CHECK MODE")
    header, first, second = lines[1], lines[2], lines[3]
    assert header.split() == ["INSTANCE", "HOST", "ACCOUNT", "REGION", "snapshots", "network", "scan", "triage", "ERRORS"]
    assert first.split() == [APP, "app-1", "123456789012", "us-east-1", "failed", "failed", "skipped", "skipped", "2"]
    assert second.split()[:2] == [WEB, "web-1"]
    assert header.index("snapshots") == first.index("failed") == second.index("changed")
    assert lines[-1] == "2 instance(s): 1 would change, 0 ok, 1 failed; 2 error(s)"
    assert not reporting.summary_table(build()).startswith("CHECK MODE")


def test_check_mode_run_is_said_in_every_format():
    report = build(check_mode=True)
    assert report["check_mode"] is True
    pages = every_format(report)
    assert json.loads(pages["json"])["check_mode"] is True
    assert "CHECK MODE (dry run)" in pages["markdown"].split("## Summary")[0]
    assert "CHECK MODE (dry run)" in pages["html"].split("<h2>Summary")[0]
    assert "CHECK MODE" not in reporting.render_markdown(build())


def test_the_specifics_of_each_module_are_shown():
    pages = every_format(build())
    for fmt in ("markdown", "html"):
        page = pages[fmt]
        for value in ("snap-0123456789abcdef0", "sg-0web", "sg-0app", "sg-0iso", "scan-1", "INFECTED", "275a02",
                      "close port 22", "UnauthorizedOperation", "eni-0b"):
            assert value in page, (fmt, value)


def test_output_is_stable_for_identical_input_and_order():
    first = every_format(build())
    shuffled = {k: copy.deepcopy(v) for k, v in reversed(list(instances().items()))}
    for entry in shuffled.values():
        entry["stages"] = dict(reversed(list(entry["stages"].items())))
    assert every_format(build(shuffled)) == first
    assert every_format(build()) == first
