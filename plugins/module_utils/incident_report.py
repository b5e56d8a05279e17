# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident report: per instance, every stage's outcome, as JSON, Markdown and HTML.

Pure functions over plain data, no AWS and no files: `build_report` redacts and summarises what the roles
collected (instance id -> host, account, region and each stage's module result), `render_json`,
`render_markdown` and `render_html` turn the report into text, and `same_but_volatile` tells whether a
file on disk says the same as a new rendering apart from the run's timestamps. The module
(plugins/modules/incident_report.py) only reads and writes files around these.

Everything in the report comes from AWS or from the inventory, and tags and finding titles are written by
whoever controls the instance: every value is escaped for its format, and the HTML carries no script and
loads nothing.
"""

import html
import json
import re
from urllib.parse import quote

from ansible_collections.cloudsec.guardduty.plugins.module_utils import report_overview as overview

SCHEMA = "cloudsec.guardduty.incident_report/1"
REDACTED = "<redacted>"
STATUSES = ("changed", "ok", "failed", "skipped")
FILE_NAMES = {"json": "report.json", "markdown": "report.md", "html": "report.html"}
# The run's times, written as UTC with its Z (YYYY-MM-DDTHH:MM:SSZ).
VOLATILE_RUN_KEYS = ("started", "finished")

# The isolate, release and eradicate roles' stages, in the order they run; other stages follow in the order met.
KNOWN_STAGES = ("preflight", "records", "evidence", "protection", "snapshots", "detach", "network", "isolation",
                "public_ip", "subnet", "credentials", "scan", "triage", "archive", "feedback", "release",
                "eradicate", "support")

# Keys whose values are secrets wherever they are met: AWS keys and tokens (SecretAccessKey, SessionToken,
# aws_secret_access_key, x-amz-security-token...), passwords, Authorization headers, credential blobs.
SECRET_KEY = re.compile(
    r"access[_-]?key|secret|session[_-]?token|security[_-]?token|(?:access|refresh|id|auth|bearer)[_-]?token"
    r"|passw(?:or)?d|passphrase|authorization|credentials?$|private[_-]?key|api[_-]?key",
    re.IGNORECASE)
# Secrets inside free text (error messages quoting a request, notes): access key ids, `secret = value` pairs,
# SigV4 signatures.
SECRET_TEXT = (
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"(?i)\b((?:aws_)?(?:secret_access_key|session_token|security_token|password)[\"']?\s*[:=]\s*)[\"']?[^\s\"',;]+"),
     r"\1" + REDACTED),
    (re.compile(r"(?i)\b(Signature=)[0-9a-f]{16,}"), r"\1" + REDACTED),
)


# -- links to the consoles -------------------------------------------------------------------------------
# Only ids that match these make a link: finding ids, detectors and accounts come from the inventory (GuardDuty).
FINDING_ID = re.compile(r"^[0-9A-Za-z]{1,300}$")
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")


def console(region):
    """(console base URL, partition) of a Region: China and GovCloud have consoles of their own."""
    if region.startswith("cn-"):
        return "https://console.amazonaws.cn", "aws-cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com", "aws-us-gov"
    return f"https://{region}.console.aws.amazon.com", "aws"


def finding_links(finding_ids, region, account_id=None, detector_id=None):
    """Per GuardDuty finding, its page in the GuardDuty console, in Security Hub, and in Amazon Detective.

    GuardDuty: /guardduty/home?region=R#/findings?macros=current&fId=ID (the link GuardDuty's own
    notifications use). Security Hub: the findings page searched on Id EQUALS the finding's ASFF Id
    (arn:P:guardduty:R:ACCOUNT:detector/DETECTOR/finding/ID; needs the account and detector), the search
    value encoded twice as the console does. Detective: /detective/home?region=R#findings/GuardDuty/ID
    (Detective User Guide, "Navigating to a profile using a URL"); a link only, it opens where the account
    has Detective. Ids that do not look like AWS's are left without links."""
    if not isinstance(region, str) or not REGION_NAME.match(region):
        return []
    base, partition = console(region)
    links = []
    for finding_id in finding_ids or []:
        if not isinstance(finding_id, str) or not FINDING_ID.match(finding_id):
            continue
        securityhub = None
        if isinstance(account_id, str) and ACCOUNT_ID.match(account_id) and isinstance(detector_id, str) \
                and FINDING_ID.match(detector_id):
            asff_id = f"arn:{partition}:guardduty:{region}:{account_id}:detector/{detector_id}/finding/{finding_id}"
            search = "Id%3D%255Coperator%255C%253AEQUALS%255C%253A" + quote(quote(asff_id, safe=""), safe="")
            securityhub = f"{base}/securityhub/home?region={region}#/findings?search={search}"
        links.append({"finding_id": finding_id,
                      "guardduty": f"{base}/guardduty/home?region={region}#/findings?macros=current&fId={finding_id}",
                      "securityhub": securityhub,
                      "detective": f"{base}/detective/home?region={region}#findings/GuardDuty/{finding_id}"})
    return links


# -- redaction -----------------------------------------------------------------------------------------

def redact_text(text):
    for pattern, replacement in SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def redact(value):
    """A copy of `value` with every secret replaced by REDACTED, at any depth, in keys' values and in text.

    None and booleans are kept (a `password_set: false` tells nothing); any other value of a secret key goes.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            key = str(key)
            if SECRET_KEY.search(key) and item is not None and not isinstance(item, bool):
                out[key] = REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))


# -- summary -------------------------------------------------------------------------------------------

def _error_entries(stage, result):
    """The errors a stage result carries: its own, and those of its network interfaces."""
    entries = []
    error = result.get("error")
    if not error and result.get("failed"):
        error = result.get("msg") or "the stage failed"
    if error:
        if isinstance(error, dict):
            entries.append({"stage": stage, "action": error.get("action"), "code": error.get("code"),
                            "message": str(error.get("message") or error.get("msg") or json.dumps(error, sort_keys=True))})
        else:
            entries.append({"stage": stage, "action": None, "code": None, "message": str(error)})
    for nic in result.get("network_interfaces") or []:
        if isinstance(nic, dict) and nic.get("error"):
            entries.append({"stage": stage, "action": None, "code": None,
                            "message": f"{nic.get('network_interface_id')}: {nic['error']}"})
    return entries


def stage_status(result):
    """changed, ok, failed or skipped for one stage's per-instance result."""
    if not isinstance(result, dict):
        return "skipped" if result is None else "ok"
    if result.get("error") or result.get("failed") or result.get("state") == "failed" or result.get("action") == "failed":
        return "failed"
    if result.get("skipped"):
        return "skipped"
    return "changed" if result.get("changed") else "ok"


def stage_order(instances):
    """The stages met, known ones in the order the roles run them, then the others in the order met."""
    met = []
    for entry in instances.values():
        for name in (entry.get("stages") or {}):
            if name not in met:
                met.append(name)
    known = [name for name in KNOWN_STAGES if name in met]
    return known + [name for name in met if name not in KNOWN_STAGES]


def _instance_sort_key(item):
    instance_id, entry = item
    return (str(entry.get("account_id") or ""), str(entry.get("region") or ""), str(entry.get("host") or ""), instance_id)


def build_report(incident_id, instances, run=None, title=None):
    """The report as plain data (what report.json holds), redacted, with its summary and counts.

    `instances` maps instance id -> {host, account_id, region, stages: {stage name: module result}}.
    """
    run = redact(dict(run or {}))
    for key in VOLATILE_RUN_KEYS:
        if run.get(key):
            run[key] = overview.utc_stamp(run[key])
    instances = {str(k): (v if isinstance(v, dict) else {}) for k, v in (instances or {}).items()}
    order = stage_order(instances)
    check_mode = bool(run.get("check_mode")) and str(run.get("check_mode")).lower() not in ("false", "0", "no")
    counts = {"instances": 0, "changed": 0, "failed": 0, "ok": 0, "errors": 0,
              "stages": {name: dict.fromkeys(STATUSES, 0) for name in order}}
    report_instances, summary = [], []
    for instance_id, entry in sorted(instances.items(), key=_instance_sort_key):
        instance_id = redact_text(instance_id)
        # Stage names are the report's structure, not data: only the results under them are redacted.
        stages_in = entry.get("stages") or {}
        stages, statuses, errors = {}, {}, []
        for name in order:
            if name not in stages_in:
                statuses[name] = "skipped"
                continue
            result = redact(stages_in[name])
            status = stage_status(result)
            statuses[name] = status
            if isinstance(result, dict):
                errors.extend(_error_entries(name, result))
            stages[name] = {"status": status, "result": result}
        for name, status in statuses.items():
            counts["stages"][name][status] += 1
        failed = "failed" in statuses.values()
        changed = "changed" in statuses.values()
        counts["instances"] += 1
        counts["errors"] += len(errors)
        counts["failed" if failed else "changed" if changed else "ok"] += 1
        tags = redact(entry.get("tags")) if isinstance(entry.get("tags"), dict) else {}
        row = {"instance_id": instance_id, "host": redact(entry.get("host")), "account_id": redact(entry.get("account_id")),
               "region": redact(entry.get("region")), "status": "failed" if failed else "changed" if changed else "ok",
               "state": overview.instance_state(statuses, check_mode, run.get("kind")), "stages": statuses, "errors": len(errors)}
        summary.append(row)
        findings = entry.get("findings") or []
        finding_ids = [f.get("id") if isinstance(f, dict) else f for f in findings]
        detector_id = entry.get("detector_id") or next((f.get("detector_id") for f in findings if isinstance(f, dict)), None)
        links = finding_links(finding_ids, entry.get("region"), entry.get("account_id"), detector_id)
        full = dict(row, stages=stages, errors=errors, name=tags.get("Name") or redact(entry.get("name")), tags=tags,
                    findings=overview.short_findings(redact([f for f in findings if isinstance(f, dict)])),
                    scan=overview.scan_verdict(stages), **({"finding_links": links} if links else {}))
        full["exposed"] = overview.still_exposed(full)
        report_instances.append(full)
    report = {
        "schema": SCHEMA,
        "incident_id": redact_text(str(incident_id)),
        "title": redact_text(title) if title else f"Incident {redact_text(str(incident_id))}",
        "check_mode": check_mode,
        "run": run,
        "stage_order": order,
        "counts": counts,
        "summary": summary,
        "instances": report_instances,
    }
    report["overview"] = overview.executive_summary(report)
    report["next_steps"] = overview.next_steps(report)
    report["timeline"] = overview.timeline(report)
    return report


def _cell_width_text(value):
    text = "-" if value is None else str(value)
    return " ".join(text.split())


def summary_table(report):
    """Fixed-width text: instance, host, account, region, each stage's status, errors; then the totals."""
    order = report["stage_order"]
    headers = ["INSTANCE", "HOST", "ACCOUNT", "REGION"] + order + ["ERRORS"]
    rows = [[row["instance_id"], row["host"], row["account_id"], row["region"]]
            + [row["stages"][name] for name in order] + [row["errors"]] for row in report["summary"]]
    rows = [[_cell_width_text(cell) for cell in row] for row in rows]
    widths = [max([len(headers[i])] + [len(row[i]) for row in rows]) for i in range(len(headers))]
    lines = []
    if report["check_mode"]:
        lines.append("CHECK MODE (dry run): nothing was changed in AWS; 'changed' means 'would change'")
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    lines.append(_totals(report["counts"], report["check_mode"]))
    return "\n".join(lines) + "\n"


def _totals(counts, check_mode):
    verb = "would change" if check_mode else "changed"
    return (f"{counts['instances']} instance(s): {counts['changed']} {verb}, {counts['ok']} ok, "
            f"{counts['failed']} failed; {counts['errors']} error(s)")


# -- the stage details, once for both Markdown and HTML -------------------------------------------------
# A stage result becomes a list of blocks: ("fields", [(label, value)]), ("table", title, headers, rows),
# ("list", title, items) and ("data", title, value) for whatever has no better shape.

FIELD_KEYS = (
    ("state", "State"), ("action", "Action"), ("scan_id", "Scan id"), ("status", "Scan status"), ("result", "Scan result"),
    ("started_at", "Started at"), ("completed_at", "Completed at"), ("finding_id", "Finding"),
    ("path", "Evidence directory"), ("manifest", "Manifest"), ("manifest_sha256", "Manifest SHA-256"),
    ("role", "Role"), ("instance_arn", "Instance ARN"), ("isolated", "Isolated"), ("terminated", "Terminated"),
    ("message", "Message"), ("note", "Note"), ("skip_reason", "Skipped because"),
)
TABLE_KEYS = (
    ("network_interfaces", "Network interfaces (original groups are what release restores)",
     ("network_interface_id", "vpc_id", "original_security_groups", "security_groups", "conversion_seconds", "error")),
    ("snapshots", "Snapshots", ("snapshot_id", "volume_id", "device", "state", "progress")),
    ("files", "Evidence files", ("name", "sha256", "size")),
    ("s3", "Evidence in S3", ("key", "sha256")),
    ("volumes", "Volumes scanned", ("volume_id", "size_gb", "volume_arn")),
    ("skipped_volumes", "Volumes not scanned", ()),
    ("threats", "Threats found", ("name", "file_path", "file_name", "hash", "severity", "volume_arn")),
    ("recommendations", "Recommendations", ("kind", "finding", "summary", "module")),
    ("exposing_rules", "Rules exposing a reported port", ("GroupId", "SecurityGroupRuleId", "IpProtocol", "FromPort", "ToPort",
                                                          "CidrIpv4", "CidrIpv6")),
)
LIST_KEYS = (
    ("calls", "Calls made"), ("warnings", "Warnings"), ("notes", "Notes"),
    ("remaining_exposure", "Remaining exposure"), ("findings", "Findings considered"),
)
QUIET_KEYS = ("changed", "failed", "skipped", "error", "msg", "instance_id", "invocation")
EIP_COLUMNS = ("allocation_id", "association_id", "public_ip", "network_interface_id", "private_ip")


def cell(value):
    """A value as one line of text: scalars as they are, lists of scalars joined, the rest as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list, tuple)) for v in value):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return " ".join(str(value).split())


def _rows_table(title, records, preferred=()):
    records = [r if isinstance(r, dict) else {"value": r} for r in records]
    headers = [h for h in preferred if any(h in r for r in records)]
    for record in records:
        headers.extend(k for k in record if k not in headers)
    return ("table", title, headers, [[cell(r.get(h)) for h in headers] for r in records])


def _before_after(result):
    before, after = result.get("before"), result.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before or {}, after or {}
        keys = list(before) + [k for k in after if k not in before]
        return [("table", "Before and after", ["", "before", "after"],
                 [[k, cell(before.get(k)), cell(after.get(k))] for k in keys])]
    blocks = []
    for label, value in (("Before", before), ("After", after)):
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            blocks.append(_rows_table(label, value, EIP_COLUMNS))
        elif isinstance(value, list):
            blocks.append(("list", label, [cell(v) for v in value] or ["(none)"]))
        elif value is not None:
            blocks.append(("fields", [(label, cell(value))]))
    return blocks


def stage_blocks(result, check_mode=False):
    """The blocks describing one stage's result; every key shows up somewhere."""
    if not isinstance(result, dict):
        return [("data", "Result", result)] if result is not None else []
    blocks, used = [], set(QUIET_KEYS)
    fields = [("Changed", cell(bool(result.get("changed"))))]
    fields.extend(("Error", e["message"] + (f" ({e['code']})" if e["code"] and e["code"] not in e["message"] else ""))
                  for e in _error_entries("", result))
    for key, label in FIELD_KEYS:
        if key in result and not isinstance(result[key], (dict, list)):
            fields.append((label, cell(result[key])))
            used.add(key)
    blocks.append(("fields", fields))
    if "before" in result or "after" in result:
        blocks.extend(_before_after(result))
        used.update(("before", "after"))
    for key, title, preferred in TABLE_KEYS:
        value = result.get(key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            blocks.append(_rows_table(title, value, preferred))
            used.add(key)
    if isinstance(result.get("copies"), dict) and result["copies"]:
        blocks.append(("table", "Snapshot copies", ["source snapshot", "region", "snapshot_id", "state"],
                       [[cell(src), cell((c or {}).get("region")), cell((c or {}).get("snapshot_id")), cell((c or {}).get("state"))]
                        for src, c in result["copies"].items()]))
        used.add("copies")
    if isinstance(result.get("subnets"), dict) and result["subnets"]:
        blocks.append(("table", "Subnets (network ACL)", ["subnet", "before", "after"],
                       [[cell(s), cell((v or {}).get("before")), cell((v or {}).get("after"))] for s, v in result["subnets"].items()]))
        used.add("subnets")
    for key, title in LIST_KEYS:
        value = result.get(key)
        if isinstance(value, list):
            used.add(key)
            if value:
                if key == "calls" and check_mode:
                    title = "Calls a real run would make (check mode: none was made)"
                blocks.append(("list", title, [cell(v) for v in value]))
    if "record" in result:
        used.add("record")
        if result["record"] is not None:
            blocks.append(("data", "Record (what release restores)", result["record"]))
    if isinstance(result.get("replacement"), dict):
        blocks.append(("data", "Replacement", result["replacement"]))
        used.add("replacement")
    rest = {k: v for k, v in result.items() if k not in used}
    if rest:
        blocks.append(("data", "Other details", rest))
    return blocks


# -- JSON ----------------------------------------------------------------------------------------------

def render_json(report):
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


# -- Markdown ------------------------------------------------------------------------------------------

MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


LINK_COLUMNS = (("guardduty", "GuardDuty"), ("securityhub", "Security Hub"), ("detective", "Detective"))


def md(value):
    """Text safe in Markdown prose and table cells: one line, punctuation escaped (pipes, HTML, links)."""
    return MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def md_code_block(value):
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}json", text, fence]


def md_table(headers, rows):
    lines = ["| " + " | ".join(md(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(md(c) for c in row) + " |" for row in rows)
    return lines


def md_blocks(blocks):
    lines = []
    for block in blocks:
        kind = block[0]
        if kind == "fields":
            lines.extend(f"- **{md(label)}**: {md(value)}" for label, value in block[1] if value != "")
        elif kind == "table":
            lines += ["", f"**{md(block[1])}**", ""] + md_table(block[2], block[3])
        elif kind == "list":
            lines += ["", f"**{md(block[1])}**", ""] + [f"1. {md(item)}" for item in block[2]]
        else:
            lines += ["", f"**{md(block[1])}**", ""] + md_code_block(block[2])
        if kind != "fields":
            lines.append("")
    return lines


def _run_fields(report):
    run = report["run"]
    fields = [(str(k), cell(v)) for k, v in run.items() if k != "check_mode"]
    fields.append(("check_mode", cell(report["check_mode"])))
    return fields


def render_markdown(report):
    order = report["stage_order"]
    lines = [f"# {md(report['title'])}", ""]
    if report["check_mode"]:
        lines += ["> **CHECK MODE (dry run)**: nothing was changed in AWS. Every *changed* below means "
                  "*would change*, and the calls listed are the ones a real run would make.", ""]
    lines += [f"- **Incident**: {md(report['incident_id'])}"]
    lines += [f"- **{md(k)}**: {md(v)}" for k, v in _run_fields(report) if v != ""]
    summary = report["overview"]
    lines += ["", "## Executive summary", ""]
    lines += [f"- **{md(state)}**: {count}" for state, count in summary["states"].items()
              if count or state in ("contained", "failed", "pending")]
    lines += [f"- **Accounts**: {md(', '.join(summary['accounts']) or '-')}",
              f"- **Regions**: {md(', '.join(summary['regions']) or '-')}", "", "### Still exposed", ""]
    lines += [f"- {md(e['instance_id'])} ({md(cell(e['name']))}): {md('; '.join(e['reasons']))}" for e in summary["exposed"]] \
        or ["Nothing known to be exposed."]
    lines += ["", "## Instances", ""]
    lines += md_table(["name", "instance", "host", "account", "region", "state", "malware scan", "findings"],
                      [[cell(i["name"]), i["instance_id"], cell(i["host"]), cell(i["account_id"]), cell(i["region"]), i["state"],
                        _scan_text(i["scan"]), str(len(i["findings"]))] for i in report["instances"]])
    findings = [(i, f) for i in report["instances"] for f in i["findings"]]
    if findings:
        lines += ["", "## Findings", ""]
        lines += md_table(["instance", "type", "severity", "title", "first seen", "last seen", "count"],
                          [[i["instance_id"], cell(f["type"]), cell(f["severity"]), cell(f["title"]), cell(f["first_seen"]),
                            cell(f["last_seen"]), cell(f["count"])] for i, f in findings])
    lines += ["", "## Timeline", ""] + [f"1. {md((t['at'] + ' ') if t['at'] else '')}{md(t['what'])}" for t in report["timeline"]]
    lines += ["", "## Next steps", ""] + [f"1. {md(step)}" for step in report["next_steps"]]
    lines += ["", "## Detail", "", f"- **Totals**: {md(_totals(report['counts'], report['check_mode']))}", ""]
    lines += md_table(["instance", "host", "account", "region"] + order + ["errors"],
                      [[r["instance_id"], cell(r["host"]), cell(r["account_id"]), cell(r["region"])]
                       + [r["stages"][s] for s in order] + [str(r["errors"])] for r in report["summary"]])
    lines.append("")
    for instance in report["instances"]:
        lines += [f"### {md(instance['instance_id'])} ({md(cell(instance['host']))})", "",
                  f"- **Account**: {md(cell(instance['account_id']))}", f"- **Region**: {md(cell(instance['region']))}",
                  f"- **State**: {md(instance['state'])}", ""]
        if instance["errors"]:
            lines += ["**Errors**", ""]
            lines += md_table(["stage", "action", "code", "message"],
                              [[e["stage"], cell(e["action"]), cell(e["code"]), e["message"]] for e in instance["errors"]])
            lines.append("")
        if instance.get("finding_links"):
            lines += ["**Findings**", "", "| finding | GuardDuty | Security Hub | Detective |", "|---|---|---|---|"]
            lines += [f"| {md(f['finding_id'])} | " + " | ".join(
                f"[{label}](<{f[key]}>)" if f.get(key) else "" for key, label in LINK_COLUMNS) + " |"
                for f in instance["finding_links"]]
            lines.append("")
        for name in order:
            stage = instance["stages"].get(name)
            if stage is None:
                continue
            lines += [f"#### {md(name)}: {md(stage['status'])}", ""]
            lines += md_blocks(stage_blocks(stage["result"], report["check_mode"]))
            lines.append("")
    return "\n".join(_squeeze(lines)).rstrip("\n") + "\n"


def _squeeze(lines):
    """No two blank lines in a row."""
    out = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return out


# -- HTML ----------------------------------------------------------------------------------------------

def esc(value):
    return html.escape(str(value), quote=True)


HTML_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#111;max-width:80em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}td{font-size:.95em;overflow-wrap:anywhere}td.id,.id{font-family:ui-monospace,monospace;white-space:nowrap;overflow-wrap:normal}
.banner{background:#fff3cd;border:2px solid #b58100;padding:.7em;font-weight:bold}
.contained{background:#cdeccd}.failed{background:#f8c4c4}.pending{background:#fff0c2}.released{background:#d6e6fb}
.terminated{background:#e2e2e2}.skipped{color:#777}
.states{display:flex;gap:1em;margin:.5em 0}.states div{padding:.5em 1em;border:1px solid #999;border-radius:.3em;font-size:1.1em}
.states b{font-size:1.6em;display:block}
pre{background:#f6f6f6;padding:.5em;overflow:auto}section{border-top:1px solid #ccc;margin-top:1.5em}
details{margin-top:1em}summary{cursor:pointer;font-weight:bold}"""
# Belt and braces: even if a value slipped through unescaped, the browser runs no script and loads nothing.
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; base-uri 'none'"


def html_table(headers, rows, status_columns=(), id_columns=()):
    out = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            # colour means state: only a failure is coloured among stage statuses ("changed" is not a state)
            klass = ' class="failed"' if index in status_columns and value == "failed" else ""
            klass = ' class="id"' if index in id_columns else klass
            cells.append(f"<td{klass}>{esc(value)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return out


def html_blocks(blocks):
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "fields":
            out.append("<dl>" + "".join(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in block[1] if value != "")
                       + "</dl>")
        elif kind == "table":
            out += [f"<h4>{esc(block[1])}</h4>"] + html_table(block[2], block[3])
        elif kind == "list":
            out += [f"<h4>{esc(block[1])}</h4>", "<ol>"] + [f"<li>{esc(item)}</li>" for item in block[2]] + ["</ol>"]
        else:
            text = json.dumps(block[2], indent=2, sort_keys=True, ensure_ascii=False, default=str)
            out += [f"<h4>{esc(block[1])}</h4>", f"<pre>{esc(text)}</pre>"]
    return out


def _html_head(title):
    return ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(HTML_CSP)}">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{esc(title)}</title>", f"<style>{HTML_STYLE}</style>", "</head>", "<body>", f"<h1>{esc(title)}</h1>"]


def _html_states(states):
    return ['<div class="states">'] + [f'<div class="{esc(state)}"><b>{esc(count)}</b>{esc(state)}</div>'
                                       for state, count in states.items() if count or state in ("contained", "failed", "pending")] + ["</div>"]


def _html_state_cell(state):
    return f'<td class="{esc(state)}">{esc(state)}</td>'


def _scan_text(scan):
    if not scan:
        return "not scanned"
    text = scan["verdict"]
    if scan.get("threats"):
        text += ": " + ", ".join(scan["threats"])
    return text


def render_html(report):
    order = report["stage_order"]
    summary = report["overview"]
    out = _html_head(report["title"])
    if report["check_mode"]:
        out.append('<p class="banner">CHECK MODE (dry run): nothing was changed in AWS. Every "changed" below means '
                   '"would change", and the calls listed are the ones a real run would make.</p>')
    out.append("<dl>" + f"<dt>Incident</dt><dd>{esc(report['incident_id'])}</dd>"
               + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _run_fields(report) if v != "")
               + "</dl>")
    out.append("<h2>Executive summary</h2>")
    out += _html_states(summary["states"])
    out.append(f"<p>{esc(summary['instances'])} instance(s) in {esc(len(summary['accounts']))} account(s) "
               f"({esc(', '.join(summary['accounts']) or '-')}) and {esc(len(summary['regions']))} region(s) "
               f"({esc(', '.join(summary['regions']) or '-')}).</p>")
    out.append("<h3>Still exposed</h3>")
    if summary["exposed"]:
        out += ["<ul>"] + [f'<li><span class="id">{esc(e["instance_id"])}</span> ({esc(cell(e["name"]))}): '
                           f'{esc("; ".join(e["reasons"]))}</li>' for e in summary["exposed"]] + ["</ul>"]
    else:
        out.append("<p>Nothing known to be exposed.</p>")
    out += ["<h2>Instances</h2>", "<table>", "<tr><th>Name</th><th>Instance</th><th>Host</th><th>Account</th><th>Region</th>"
            "<th>State</th><th>Malware scan</th><th>Findings</th><th>Tags</th></tr>"]
    for i in report["instances"]:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(i["tags"].items()) if k != "Name")
        out.append(f"<tr><td>{esc(cell(i['name']))}</td><td class=\"id\">{esc(i['instance_id'])}</td><td>{esc(cell(i['host']))}</td>"
                   f"<td class=\"id\">{esc(cell(i['account_id']))}</td><td class=\"id\">{esc(cell(i['region']))}</td>"
                   + _html_state_cell(i["state"]) + f"<td>{esc(_scan_text(i['scan']))}</td><td>{esc(len(i['findings']))}</td>"
                   f"<td>{esc(tags)}</td></tr>")
    out.append("</table>")
    findings = [(i, f) for i in report["instances"] for f in i["findings"]]
    if findings:
        out.append("<h2>Findings</h2>")
        out += html_table(["instance", "type", "severity", "title", "first seen", "last seen", "count"],
                          [[i["instance_id"], cell(f["type"]), cell(f["severity"]), cell(f["title"]), cell(f["first_seen"]),
                            cell(f["last_seen"]), cell(f["count"])] for i, f in findings], id_columns=(0,))
    out += ["<h2>Timeline</h2>", "<ol>"] + [f"<li>{esc(t['at'] + ' ' if t['at'] else '')}{esc(t['what'])}</li>"
                                            for t in report["timeline"]] + ["</ol>"]
    out += ["<h2>Next steps</h2>", "<ol>"] + [f"<li>{esc(step)}</li>" for step in report["next_steps"]] + ["</ol>"]
    out += ["<h2>Detail</h2>", f"<p>Totals: {esc(_totals(report['counts'], report['check_mode']))}</p>",
            "<details>", "<summary>Every stage and call, by instance</summary>"]
    out += html_table(["instance", "host", "account", "region"] + order + ["errors"],
                      [[r["instance_id"], cell(r["host"]), cell(r["account_id"]), cell(r["region"])]
                       + [r["stages"][s] for s in order] + [str(r["errors"])] for r in report["summary"]],
                      status_columns=range(4, 4 + len(order)), id_columns=(0, 2, 3))
    for instance in report["instances"]:
        out += ["<section>", f"<h2><span class=\"id\">{esc(instance['instance_id'])}</span> ({esc(cell(instance['host']))})</h2>",
                f"<dl><dt>Account</dt><dd>{esc(cell(instance['account_id']))}</dd><dt>Region</dt>"
                f"<dd>{esc(cell(instance['region']))}</dd><dt>State</dt>"
                f"<dd class=\"{esc(instance['state'])}\">{esc(instance['state'])}</dd></dl>"]
        if instance["errors"]:
            out.append("<h3>Errors</h3>")
            out += html_table(["stage", "action", "code", "message"],
                              [[e["stage"], cell(e["action"]), cell(e["code"]), e["message"]] for e in instance["errors"]])
        if instance.get("finding_links"):
            out += ["<h3>Findings</h3>", "<table>", "<tr><th>finding</th><th>GuardDuty</th><th>Security Hub</th>"
                    "<th>Detective</th></tr>"]
            out += ["<tr>" + f"<td>{esc(f['finding_id'])}</td>" + "".join(
                f'<td><a href="{esc(f[key])}" rel="noreferrer noopener">{esc(label)}</a></td>' if f.get(key) else "<td></td>"
                for key, label in LINK_COLUMNS) + "</tr>" for f in instance["finding_links"]]
            out.append("</table>")
        for name in order:
            stage = instance["stages"].get(name)
            if stage is None:
                continue
            klass = ' class="failed"' if stage["status"] == "failed" else ""
            out.append(f'<h3>{esc(name)}: <span{klass}>{esc(stage["status"])}</span></h3>')
            out += html_blocks(stage_blocks(stage["result"], report["check_mode"]))
        out.append("</section>")
    out += ["</details>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def render_index_html(index):
    """The incident's page: each instance's current state, then every run, newest first, linked."""
    out = _html_head(f"Incident {index['incident_id']}: every run")
    states = {}
    for instance in index["instances"]:
        states[instance["state"]] = states.get(instance["state"], 0) + 1
    out.append("<h2>Now</h2>")
    out += _html_states({s: states.get(s, 0) for s in overview.STATE_ORDER})
    out += ["<table>", "<tr><th>Name</th><th>Instance</th><th>Account</th><th>Region</th><th>State</th><th>Malware scan</th>"
            "<th>State from run</th></tr>"]
    for i in index["instances"]:
        out.append(f"<tr><td>{esc(cell(i['name']))}</td><td class=\"id\">{esc(i['instance_id'])}</td>"
                   f"<td class=\"id\">{esc(cell(i['account_id']))}</td><td class=\"id\">{esc(cell(i['region']))}</td>"
                   + _html_state_cell(i["state"]) + f"<td>{esc(_scan_text(i['scan']))}</td><td class=\"id\">{esc(cell(i['state_run']))}</td></tr>")
    out += ["</table>", "<h2>Runs, newest first</h2>", "<table>",
            "<tr><th>Run</th><th>Playbook</th><th>Check mode</th><th>Started</th><th>Instances</th><th>States</th></tr>"]
    for run in index["runs"]:
        states_text = ", ".join(f"{n} {s}" for s, n in (run["states"] or {}).items() if n)
        out.append(f'<tr><td class="id"><a href="{esc(run["report"])}">{esc(run["run"])}</a></td><td>{esc(cell(run["playbook"]))}</td>'
                   f"<td>{esc(cell(run['check_mode']))}</td><td class=\"id\">{esc(cell(run['started']))}</td>"
                   f"<td>{esc(run['instances'])}</td><td>{esc(states_text)}</td></tr>")
    out += ["</table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def render_index_markdown(index):
    lines = [f"# Incident {md(index['incident_id'])}: every run", "", "## Now", ""]
    lines += md_table(["name", "instance", "account", "region", "state", "malware scan", "state from run"],
                      [[cell(i["name"]), i["instance_id"], cell(i["account_id"]), cell(i["region"]), i["state"],
                        _scan_text(i["scan"]), cell(i["state_run"])] for i in index["instances"]])
    lines += ["", "## Runs, newest first", ""]
    lines += md_table(["run", "playbook", "check mode", "started", "instances"],
                      [[r["run"], cell(r["playbook"]), cell(r["check_mode"]), cell(r["started"]), str(r["instances"])]
                       for r in index["runs"]])
    return "\n".join(lines) + "\n"


INDEX_RENDERERS = {"json": render_json, "markdown": render_index_markdown, "html": render_index_html}


RENDERERS = {"json": render_json, "markdown": render_markdown, "html": render_html}
