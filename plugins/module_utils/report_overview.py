# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a responder hands to a manager and to the next shift: the state of each instance, an executive summary,
the next steps, and the incident's index over every run. Pure functions over the report's plain data
(module_utils/incident_report.py builds it); nothing here reads files or calls AWS.

States, by what the run did to the instance (not by "changed"):
- contained: its network stage (isolation) succeeded, now or in a run before (ok = already isolated);
- released: its release stage succeeded; terminated: its eradicate stage did;
- failed: a stage failed (what failed is in its errors);
- pending: nothing yet contained it (a scan-only run, or a check run: a dry run changes nothing).
"""

import datetime

CONTAINED, RELEASED, TERMINATED, FAILED, PENDING = "contained", "released", "terminated", "failed", "pending"
STATE_ORDER = (FAILED, PENDING, CONTAINED, RELEASED, TERMINATED)
# The stage whose success decides each state; the first that ran decides.
DECIDING_STAGES = (("eradicate", TERMINATED), ("release", RELEASED), ("network", CONTAINED), ("isolation", CONTAINED))
# A release run records its network step as `isolation` (ec2_isolation, state released): there it means released.
NETWORK_STAGES = ("network", "isolation")


def _ok(status):
    return status in ("changed", "ok")


def instance_state(statuses, check_mode, kind=None):
    """One word for an instance, from its stages' statuses ({stage: changed|ok|failed|skipped}) and the run's kind."""
    if FAILED in statuses.values():
        return FAILED
    if check_mode:
        return PENDING
    for stage, state in DECIDING_STAGES:
        if _ok(statuses.get(stage)):
            return RELEASED if kind == "release" and stage in NETWORK_STAGES else state
    return PENDING


def scan_verdict(stages):
    """The malware scan's verdict in a report's stages ({stage: {"status", "result"}}), or None."""
    result = ((stages or {}).get("scan") or {}).get("result")
    if not isinstance(result, dict):
        return None
    threats = [t.get("name") for t in result.get("threats") or [] if isinstance(t, dict)]
    verdict = result.get("result") or result.get("status")
    if not verdict:
        return None
    return {"verdict": str(verdict), "scan_id": result.get("scan_id"), "threats": [str(t) for t in threats if t]}


def still_exposed(instance):
    """Why an instance is still reachable or able to act, in plain words; empty when nothing is known to be open."""
    reasons = []
    if instance["state"] in (PENDING, FAILED) and not _ok(instance["stages"].get("network", {}).get("status")):
        reasons.append("still on its own security groups (not isolated)")
    for stage in ("network", "public_ip", "credentials", "detach", "subnet"):
        result = (instance["stages"].get(stage) or {}).get("result")
        if isinstance(result, dict):
            reasons.extend(f"{stage}: {item}" for item in result.get("remaining_exposure") or [] if item)
            if stage != "network" and instance["stages"][stage]["status"] == FAILED:
                reasons.append(f"{stage} not done (the stage failed)")
    return reasons


def short_findings(findings):
    """Type, severity, title, first and last seen, count: what the report's findings table shows."""
    out = []
    for finding in findings or []:
        if not isinstance(finding, dict):
            continue
        out.append({key: finding.get(key) for key in ("id", "type", "severity", "title", "first_seen", "last_seen", "count")})
    return sorted(out, key=lambda f: (-(f.get("severity") or 0), str(f.get("type"))))


def executive_summary(report):
    """Counts by state, accounts, regions, and what is still exposed, by instance."""
    states = dict.fromkeys(STATE_ORDER, 0)
    for instance in report["instances"]:
        states[instance["state"]] += 1
    return {
        "states": states,
        "instances": len(report["instances"]),
        "accounts": sorted({str(i["account_id"]) for i in report["instances"] if i.get("account_id")}),
        "regions": sorted({str(i["region"]) for i in report["instances"] if i.get("region")}),
        "exposed": [{"instance_id": i["instance_id"], "name": i.get("name"), "reasons": i["exposed"]}
                    for i in report["instances"] if i["exposed"]],
    }


def next_steps(report):
    """The commands a responder runs next, for this incident (incident ids are validated: no shell quoting needed)."""
    incident = report["incident_id"]
    states = {i["state"] for i in report["instances"]}
    infected = [i for i in report["instances"] if (i.get("scan") or {}).get("verdict") == "INFECTED"]
    steps = []
    if report["check_mode"]:
        steps.append("This was a dry run: run the same command without --check to apply it.")
    if FAILED in states:
        steps.append("Rerun the same playbook: instances that failed are retried, the others are left as they are "
                     "(see each instance's errors below).")
    if CONTAINED in states:
        steps.append("False positive: ansible-playbook cloudsec.guardduty.release -i INVENTORY -l HOST "
                     f"-e incident_id={incident} -e release_confirm={incident}")
        steps.append("Malware scan of the contained instances: ansible-playbook cloudsec.guardduty.scan -i INVENTORY -l HOST "
                     f"-e incident_id={incident} -e scan_wait=true")
        steps.append("Compromise confirmed and the source found: ansible-playbook cloudsec.guardduty.eradicate -i INVENTORY "
                     f"-l HOST -e incident_id={incident} -e eradicate_confirm={incident}")
    if infected:
        steps.append("Malware found on " + ", ".join(i["instance_id"] for i in infected)
                     + ": keep them contained; eradicate (terminate and replace) once the evidence is kept.")
    steps.append("AWS Premium Support customers: a support case with the eradicate playbook "
                 "(-e eradicate_support_case=true); others: AWS re:Post, https://repost.aws/")
    return steps


def timeline(report):
    """The run's steps in order: when it started, each stage with how many instances it changed, left, failed."""
    rows = []
    run = report["run"]
    if run.get("started"):
        rows.append({"at": run["started"], "what": f"{run.get('playbook') or 'run'} started"
                     + (" (check mode)" if report["check_mode"] else "")})
    for stage in report["stage_order"]:
        counts = report["counts"]["stages"].get(stage) or {}
        done = ", ".join(f"{counts[k]} {k}" for k in ("changed", "ok", "failed") if counts.get(k))
        if done:
            rows.append({"at": "", "what": f"{stage}: {done}"})
    if run.get("finished"):
        rows.append({"at": run["finished"], "what": "report written"})
    return rows


# -- the incident: every run ------------------------------------------------------------------------------

def utc_stamp(value):
    """An ISO 8601 time as YYYY-MM-DDTHH:MM:SSZ (UTC); unparseable text is returned as it is."""
    if not value:
        return value
    text = str(value).strip()
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id(run, check_mode):
    """The run's directory name: its UTC start, compact, then what ran (and -check for a dry run)."""
    stamp = utc_stamp(run.get("started")) or ""
    compact = stamp.replace("-", "").replace(":", "") if stamp.endswith("Z") else "run"
    # the role (isolate, release, scan, eradicate) when the run names it, else the play's first word
    kind = str(run.get("kind") or (str(run.get("playbook") or "run").split() or ["run"])[0]).lower()
    playbook = "".join(c if c.isalnum() or c in "-_" else "-" for c in kind)
    playbook = "-".join(part for part in playbook.split("-") if part)[:40] or "run"
    return f"{compact}-{playbook}" + ("-check" if check_mode else "")


def build_index(incident_id, runs):
    """The incident's index over its runs: `runs` is [(run directory name, that run's report.json data)].

    Every run newest first, and each instance's current state: from the newest real (not check-mode) run that
    reported it, with the newest scan verdict known from any run.
    """
    ordered = sorted(runs, key=lambda item: (str(item[1].get("run", {}).get("started") or ""), item[0]), reverse=True)
    entries, instances = [], {}
    for name, report in ordered:
        summary = (report.get("overview") or {}).get("states") or {}
        entries.append({"run": name, "playbook": report.get("run", {}).get("playbook"),
                        "check_mode": bool(report.get("check_mode")), "started": report.get("run", {}).get("started"),
                        "finished": report.get("run", {}).get("finished"), "states": summary,
                        "instances": len(report.get("instances") or []), "report": f"runs/{name}/report.html"})
        for instance in report.get("instances") or []:
            iid = instance.get("instance_id")
            current = instances.setdefault(iid, {"instance_id": iid, "name": instance.get("name"), "host": instance.get("host"),
                                                 "account_id": instance.get("account_id"), "region": instance.get("region"),
                                                 "state": None, "state_run": None, "scan": None, "runs": 0})
            current["runs"] += 1
            if not report.get("check_mode"):
                if current["state"] is None and instance.get("state") != PENDING:
                    current["state"], current["state_run"] = instance.get("state"), name
                current.setdefault("newest_real_run", name)
            if current["scan"] is None and instance.get("scan"):
                current["scan"] = instance["scan"]
    for current in instances.values():
        newest_real_run = current.pop("newest_real_run", None)
        if current["state"] is None:  # no run decided it: pending, as of the newest real run if any
            current["state"], current["state_run"] = PENDING, newest_real_run
    return {"schema": "cloudsec.guardduty.incident_index/1", "incident_id": incident_id, "runs": entries,
            "instances": sorted(instances.values(), key=lambda i: (STATE_ORDER.index(i["state"]) if i["state"] in STATE_ORDER
                                                                   else 99, str(i["account_id"]), str(i["instance_id"])))}


def report_entries(hosts, hostvars, record):
    """incident_report's `instances` for the play's hosts: {instance id: {host, account_id, region, stages, tags,
    findings, detector_id}}, the stages from the play-wide record (roles/batches), the rest from the inventory's host
    vars (findings and their detector link each finding to the consoles)."""
    entries = {}
    for host in hosts or []:
        host_vars = hostvars.get(host) or {}
        instance_id = host_vars.get("instance_id")
        if not instance_id:
            continue
        stages = (record or {}).get(instance_id) or {}
        preflight = stages.get("preflight") if isinstance(stages.get("preflight"), dict) else {}
        entries[instance_id] = {
            "host": host,
            "account_id": host_vars.get("account_id") or preflight.get("account_id"),
            "region": host_vars.get("region") or host_vars.get("aws_region"),
            "stages": stages,
            "tags": host_vars.get("guardduty_tags") or {},
            "findings": host_vars.get("guardduty_findings") or host_vars.get("guardduty_finding_ids") or [],
            "detector_id": host_vars.get("guardduty_detector_id"),
        }
    return entries
