#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: incident_report
version_added: 1.0.0
short_description: Write the incident report of a remediation run as JSON, Markdown and HTML
description:
  - Writes, on the controller, the report of a run of the C(isolate), C(release), C(eradicate) or C(scan) roles
    (or of any playbook that registered this collection's modules), per instance, every stage's outcome with
    before and after, the calls made, the evidence (snapshot ids, evidence files and their SHA-256), the
    malware scan and its threats, the triage recommendations, the records release restores, and the errors.
  - Each run keeps its own report, never overwritten, in O(report_dir)/O(incident_id)/runs/RUN/ as C(report.json),
    C(report.md) and C(report.html); RUN is the run's UTC start, then the playbook, then C(-check) for a dry run
    (C(20261205T184200Z-isolate-check)); a second run in the same second gets C(-2).
  - The report puts first what a responder hands on - an executive summary (instances contained, failed and pending,
    accounts, regions, what is still exposed), the findings (type, severity, title, first and last seen, count),
    each instance with its Name and tags, its state and the malware scan's verdict, a timeline and the next steps
    (release, scan, eradicate, support case) - and keeps every stage's per-call detail below (folded in HTML).
  - The incident's top directory holds its index, rebuilt from every run's C(report.json) at each run - C(report.json)
    (every run, newest first, and each instance's current state, from the newest real run that reported it, with
    the newest scan verdict known), C(report.md) and C(report.html) linking to each run's report.
  - Directories are made mode 0700 and every file mode 0600; each file is written to a temporary file of mode 0600
    in the same directory and renamed, so that a reader never sees a half-written or world-readable report.
  - Secrets are never written nor returned. The values of keys that name access keys, secret keys, session or
    security tokens, passwords, C(Authorization) or credentials (C(SecretAccessKey), C(SessionToken),
    C(aws_secret_access_key)...) are replaced by C(<redacted>) at any depth, and access key ids and
    C(secret=value) pairs are redacted inside text.
  - Every value is escaped for its format (tags and finding titles are written by whoever controls the
    instance); the HTML has no script, loads nothing and forbids both through its Content Security Policy.
  - Times are written in UTC with their C(Z).
  - When O(run) has C(check_mode=true) the report says prominently that the run was a dry run and that every
    change it lists is a change that would be made. The roles call this module with C(check_mode=false) so
    that a dry run still leaves its report.
  - Makes no AWS call.
author:
  - cloudsec.guardduty contributors (@cloudsec)
options:
  incident_id:
    description:
      - The incident the report belongs to; also the name of its directory under O(report_dir).
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters.
    type: str
    required: true
  report_dir:
    description:
      - The directory holding one directory per incident. Created (mode 0700) if missing.
    type: path
    required: true
  formats:
    description:
      - The files of this run's report to write (its JSON is always kept, since the incident's index is built from it).
    type: list
    elements: str
    choices: [json, markdown, html]
    default: [json, markdown, html]
  title:
    description:
      - The report's title; C(Incident INCIDENT_ID) if not set.
    type: str
  run:
    description:
      - What the header says about the run; free-form, shown key by key.
      - Usual keys are C(playbook), C(check_mode), C(started), C(finished), C(limit) and C(operator).
      - C(check_mode) true marks the whole report as a dry run. C(finished) is set to the current UTC time when
        not given.
    type: dict
    default: {}
  instances:
    description:
      - Per instance id, C(host) (inventory name), C(account_id), C(region), C(stages), and optionally C(tags)
        (the instance's tags, C(Name) shown as its name), C(findings) and C(detector_id).
      - C(findings) is the inventory's C(guardduty_findings) (type, severity, title, first and last seen, count are shown),
        or only the finding ids (C(guardduty_finding_ids)); C(detector_id) is the GuardDuty detector that reported them
        (C(guardduty_detector_id); also read from the findings). The report links each finding to the GuardDuty console,
        to Security Hub (with the detector) and to Amazon Detective (a link only).
      - C(stages) maps a stage name (any name, for example C(evidence), C(protection), C(snapshots), C(detach), C(network),
        C(public_ip), C(credentials), C(scan), C(triage), C(archive), C(release), C(eradicate)...) to that stage's
        per-instance module result, as the C(cloudsec.guardduty.instance_result) filter returns it.
      - A stage is V(failed) when its result has an C(error) (or C(failed), or C(state=failed)), V(skipped) when
        it is null, has C(skipped) or is absent for the instance, V(changed) when C(changed) is true, else V(ok).
    type: dict
    required: true
notes:
  - Runs on the controller; in a play whose hosts are the suspect instances, use C(delegate_to=localhost) and
    C(run_once=true) as the roles do.
  - Ansible may log a module's arguments to the controller's syslog; the report redacts secrets, but keep
    credentials out of the stage results in the first place (this collection's modules never return any).
attributes:
  check_mode:
    support: full
    description: In check mode nothing is written; the paths say where a run would write.
  diff_mode:
    support: none
    description: The report is the record of the run; no diff is returned.
seealso:
  - module: cloudsec.guardduty.ec2_isolation
  - module: cloudsec.guardduty.ec2_forensic_snapshot
  - module: cloudsec.guardduty.guardduty_malware_scan
  - module: cloudsec.guardduty.guardduty_find_source
"""

EXAMPLES = r"""
- name: Write the report of the isolate role's stages (one task for the whole play)
  cloudsec.guardduty.incident_report:
    incident_id: INC-0042
    report_dir: ~/guardduty-reports
    run:
      playbook: "{{ ansible_play_name }}"
      check_mode: "{{ ansible_check_mode }}"
      limit: "{{ ansible_limit | default(omit) }}"
      operator: "{{ lookup('ansible.builtin.env', 'USER') }}"
    instances: "{{ dict(reported | map(attribute='instance_id') | zip(reported | map(attribute='report_entry'))) }}"
  vars:
    reported: "{{ ansible_play_hosts_all | map('extract', hostvars) | selectattr('report_entry', 'defined') | list }}"
  run_once: true
  delegate_to: localhost
  check_mode: false  # a dry run still leaves its report, marked as such
  register: report

- name: Print the summary table
  ansible.builtin.debug:
    msg: "{{ report.summary_table.splitlines() }}"
  run_once: true

- name: Report two modules' results for one instance, Markdown only
  cloudsec.guardduty.incident_report:
    incident_id: INC-0043
    report_dir: /srv/incidents
    formats: [markdown]
    instances:
      i-0123456789abcdef0:
        host: web-1
        account_id: "123456789012"
        region: us-east-1
        stages:
          snapshots: "{{ snapshots_result.instances['i-0123456789abcdef0'] }}"
          network: "{{ isolation_result.instances['i-0123456789abcdef0'] }}"
"""

RETURN = r"""
files:
  description: The path of each file of this run's report written (in check mode, to be written), by format.
  returned: always
  type: dict
  sample: {"json": "/home/me/guardduty-reports/INC-0042/runs/20261205T184200Z-isolate/report.json",
           "html": "/home/me/guardduty-reports/INC-0042/runs/20261205T184200Z-isolate/report.html"}
index_files:
  description: The incident's index (every run, each instance's current state), by format; empty in check mode.
  returned: always
  type: dict
  sample: {"json": "/home/me/guardduty-reports/INC-0042/report.json", "html": "/home/me/guardduty-reports/INC-0042/report.html"}
run_directory:
  description: This run's directory.
  returned: always
  type: str
  sample: /home/me/guardduty-reports/INC-0042/runs/20261205T184200Z-isolate
overview:
  description: The executive summary - instances by state (contained, failed, pending, released, terminated), accounts,
    regions, and what is still exposed, by instance.
  returned: always
  type: dict
sha256:
  description: The SHA-256 of each file of this run's report, by format; empty in check mode.
  returned: always
  type: dict
  sample: {"json": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
directory:
  description: The incident's directory.
  returned: always
  type: str
  sample: /home/me/guardduty-reports/INC-0042
check_mode_run:
  description: Whether the report is that of a check-mode (dry) run, from C(check_mode) in O(run).
  returned: always
  type: bool
summary_table:
  description: Fixed-width text, one line per instance (instance, host, account, region, each stage's status, errors), then the totals.
  returned: always
  type: str
  sample: |
    INSTANCE             HOST   ACCOUNT       REGION     snapshots  network  ERRORS
    i-0123456789abcdef0  web-1  123456789012  us-east-1  changed    changed  0
    1 instance(s): 1 changed, 0 ok, 0 failed; 0 error(s)
summary:
  description: The rows of the summary table.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance.
      type: str
    host:
      description: Its inventory host.
      type: str
    account_id:
      description: Its account.
      type: str
    region:
      description: Its region.
      type: str
    status:
      description: V(failed) if any stage failed, else V(changed) if any changed, else V(ok).
      type: str
    stages:
      description: Per stage, V(changed), V(ok), V(failed) or V(skipped).
      type: dict
    errors:
      description: How many errors the instance's stages carry.
      type: int
counts:
  description: Instances in total, changed, ok and failed, errors, and per stage the instances in each status.
  returned: always
  type: dict
  sample: {"instances": 2, "changed": 1, "ok": 0, "failed": 1, "errors": 1,
           "stages": {"snapshots": {"changed": 1, "ok": 0, "failed": 1, "skipped": 0}}}
"""

import datetime
import hashlib
import json
import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils import incident_report as reporting


class ReportError(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def incident_directory(module, report_dir, incident_id):
    """The incident's directory, made 0700 (creating it unless in check mode). Returns (path, changed)."""
    path = os.path.join(report_dir, incident_id)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if not module.check_mode:
            os.makedirs(report_dir, mode=0o700, exist_ok=True)
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask, which could only narrow it, but say it plainly
        return path, True
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ReportError(f"{path} exists and is not a directory (a symbolic link is refused too); nothing was written")
    if stat.S_IMODE(info.st_mode) != 0o700:
        if not module.check_mode:
            os.chmod(path, 0o700)
        return path, True
    return path, False


def existing_file(path):
    """(text or None, mode or None) of a regular file; anything else (missing, a link) reads as absent."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(info.st_mode):
        return None, None
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8"), stat.S_IMODE(info.st_mode)
    except UnicodeDecodeError:
        return None, stat.S_IMODE(info.st_mode)


def write_atomic(directory, name, data):
    """Write `data` to directory/name: a 0600 temporary file in the same directory, synced, then renamed."""
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, os.path.join(directory, name))
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    directory_handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_handle)
    finally:
        os.close(directory_handle)


def main():
    argument_spec = dict(
        incident_id=dict(type="str", required=True),
        report_dir=dict(type="path", required=True),
        formats=dict(type="list", elements="str", choices=["json", "markdown", "html"], default=["json", "markdown", "html"]),
        title=dict(type="str"),
        run=dict(type="dict", default={}),
        instances=dict(type="dict", required=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    # The arguments may hold what the report redacts: never echo them back unredacted.
    invocation = {"module_args": reporting.redact(params)}
    incident_id = params["incident_id"]
    if guards.incident_id_problem(incident_id):
        module.fail_json(msg=f"incident_id {reporting.redact_text(incident_id)!r} cannot name a directory: use "
                             f"{guards.INCIDENT_ID_RULE}", invocation=invocation)
    run = dict(params["run"] or {})
    if not run.get("finished"):
        run["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = reporting.build_report(incident_id, params["instances"], run=run, title=params["title"])

    formats = list(dict.fromkeys(params["formats"]))
    name = reporting.overview.run_id(report["run"], report["check_mode"])
    result = dict(changed=False, files={}, sha256={}, index_files={}, check_mode_run=report["check_mode"],
                  summary=report["summary"], counts=report["counts"], overview=report["overview"],
                  summary_table=reporting.summary_table(report), invocation=invocation)
    try:
        directory, _created = incident_directory(module, params["report_dir"], incident_id)
        result["directory"] = directory
        runs = os.path.join(directory, "runs")
        if module.check_mode:
            result["run_directory"] = os.path.join(runs, name)
            result["files"] = {fmt: os.path.join(runs, name, reporting.FILE_NAMES[fmt]) for fmt in formats}
        else:
            run_directory = new_run_directory(runs, name)
            result["run_directory"] = run_directory
            for fmt in formats:
                data = reporting.RENDERERS[fmt](report).encode("utf-8")
                write_atomic(run_directory, reporting.FILE_NAMES[fmt], data)
                result["files"][fmt] = os.path.join(run_directory, reporting.FILE_NAMES[fmt])
                result["sha256"][fmt] = sha256(data)
            if "json" not in formats:  # the index is built from every run's JSON: keep it whatever was asked
                write_atomic(run_directory, reporting.FILE_NAMES["json"], reporting.render_json(report).encode("utf-8"))
            # the incident's top: every run, newest first, and each instance's current state; derived from the
            # runs' own files, which are never rewritten. Runs of one incident may finish together (AWX job
            # slices sharing the directory): rebuilt until no run finished meanwhile, so that the last index
            # written holds every run finished before it.
            while True:
                listed = finished_runs(runs)
                index = reporting.overview.build_index(incident_id, read_runs(runs))
                for fmt, render in reporting.INDEX_RENDERERS.items():
                    write_atomic(directory, reporting.FILE_NAMES[fmt], render(index).encode("utf-8"))
                    result["index_files"][fmt] = os.path.join(directory, reporting.FILE_NAMES[fmt])
                if finished_runs(runs) == listed:
                    break
            result["changed"] = True
    except (OSError, ReportError) as exc:
        module.fail_json(msg=f"could not write the report of {incident_id} in {params['report_dir']}: {exc}", **result)
    module.exit_json(**result)


def new_run_directory(runs, name):
    """runs/NAME, made 0700 and never reused: a second run in the same second gets NAME-2, NAME-3..."""
    if not os.path.isdir(runs):
        os.makedirs(runs, mode=0o700, exist_ok=True)
    info = os.lstat(runs)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ReportError(f"{runs} exists and is not a directory (a symbolic link is refused too); nothing was written")
    os.chmod(runs, 0o700)
    for attempt in range(1, 1000):
        path = os.path.join(runs, name if attempt == 1 else f"{name}-{attempt}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)
        return path
    raise ReportError(f"{runs}: no free run directory for {name}")


def finished_runs(runs):
    """The names of the runs whose report.json is written (a run's files are never removed nor rewritten)."""
    names = []
    for entry in sorted(os.listdir(runs)):
        try:
            info = os.lstat(os.path.join(runs, entry, reporting.FILE_NAMES["json"]))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISREG(info.st_mode):
            names.append(entry)
    return names


def read_runs(runs):
    """[(run directory name, its report.json)] for every run whose report can be read; the others are left out."""
    found = []
    for entry in sorted(os.listdir(runs)):
        path = os.path.join(runs, entry, reporting.FILE_NAMES["json"])
        text, _mode = existing_file(path)
        if text is None:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("schema") == reporting.SCHEMA:
            found.append((entry, data))
    return found


if __name__ == "__main__":
    main()
