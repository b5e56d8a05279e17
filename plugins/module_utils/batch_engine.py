# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hosts to batches: one module call per (account, region, role) with the whole batch of instances.

Plain functions over host variables; the roles reach them through the filters in plugins/filter/batches.py.
A host names its instance with `instance_id`, its region with `region` (or `aws_region`), its account
with `account_id` (optional) and the role to assume in that account with `responder_role_arn` (optional:
without it the batch runs with the play's own credentials).
"""

import datetime
import json
import re

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class BatchError(ValueError):
    """A host whose variables cannot place it in a batch: named, with the variable at fault."""


def host_target(host, variables):
    """(account_id, region, role_arn, instance_id) for one host, or BatchError naming the host."""
    instance_id = variables.get("instance_id")
    if not instance_id:
        raise BatchError(f"host {host}: no instance_id variable; set it, or use the cloudsec.guardduty.guardduty inventory")
    region = variables.get("region") or variables.get("aws_region")
    if not region or not REGION.match(str(region)):
        raise BatchError(f"host {host} ({instance_id}): region {region!r} is missing or not an AWS region name")
    role_arn = variables.get("responder_role_arn") or None
    account_id = str(variables["account_id"]) if variables.get("account_id") else None
    if role_arn:
        match = ROLE_ARN.match(str(role_arn))
        if not match:
            raise BatchError(f"host {host} ({instance_id}): responder_role_arn {role_arn!r} is not an IAM role ARN")
        if account_id and match.group(1) != account_id:
            raise BatchError(f"host {host} ({instance_id}): responder_role_arn {role_arn} is not in account {account_id}")
        account_id = account_id or match.group(1)
    return account_id, str(region), role_arn, str(instance_id)


def account_batches(hosts, hostvars, size=None):
    """Group hosts into batches, in a stable order (account, region, role), each at most `size` instances.

    Returns a list of {"account_id", "region", "role_arn", "instance_ids", "hosts"} where "hosts" maps
    each instance id to its inventory host name. Raises BatchError listing every host that cannot be placed.
    """
    groups = {}
    problems = []
    for host in hosts:
        try:
            account_id, region, role_arn, instance_id = host_target(host, hostvars[host])
        except BatchError as exc:
            problems.append(str(exc))
            continue
        members = groups.setdefault((account_id or "", region, role_arn or ""), {})
        other = members.get(instance_id)
        if other is not None and other != host:
            problems.append(f"hosts {other} and {host} both name instance {instance_id} in {account_id or 'the current account'} {region}")
            continue
        members[instance_id] = host
    if problems:
        raise BatchError("; ".join(problems))
    batches = []
    for (account_id, region, role_arn), members in sorted(groups.items()):
        ids = list(members)
        step = size or len(ids)
        for start in range(0, len(ids), step):
            chunk = ids[start:start + step]
            batches.append({"account_id": account_id or None, "region": region, "role_arn": role_arn or None,
                            "instance_ids": chunk, "hosts": {i: members[i] for i in chunk}})
    return batches


def instances_of(result):
    """A module result's per-instance answers as {instance_id: part}."""
    return result.get("instances") or {}


def result_for(results, instance_id):
    """The per-instance part of batched module results (a registered loop, or one result).

    Every module of this collection returns {"instances": {instance_id: {...}}, "errors": [...]}: the part
    for `instance_id` is returned, with any batch-level error that names no instance attached, so a host
    whose batch failed before any per-instance work still shows why.
    """
    if isinstance(results, dict) and "results" in results:
        items = results["results"]
    elif isinstance(results, list):
        items = results
    else:
        items = [results]
    for item in items:
        if not isinstance(item, dict) or item.get("skipped"):
            continue
        instances = instances_of(item)
        if instance_id in instances:
            return instances[instance_id]
        batch = item.get("item") or {}
        if instance_id in (batch.get("instance_ids") or []):
            # The module failed for the whole batch (bad credentials, throttled describe, ...).
            return {"changed": False, "error": {"instance_id": instance_id, "action": "batch",
                                                "message": item.get("msg") or "the batch failed"}}
    return None


# -- the play-wide record ---------------------------------------------------------------------------
# The roles keep one record for the whole play, {instance_id: {stage: part}}, set once per stage on one
# host (run_once): per-host bookkeeping costs Ansible a task per host per stage, which at hundreds of
# hosts is most of a run. batch_outcome gives each host its own part.

def batch_key(batch):
    return batch.get("account_id"), batch.get("region"), batch.get("role_arn"), tuple(batch["instance_ids"])


def batch_outcomes(results):
    """(batch, result) for each batch a stage ran its module on, from what the stage registered.

    `results` is a registered loop over batches_loop, or a list of them (one per batch's first host); each
    item is the module's result for a batch, the batch as its `item`.
    """
    registers = results if isinstance(results, list) else [results]
    seen = set()
    for register in registers:
        if not isinstance(register, dict):
            continue
        for result in register.get("results", [register]):
            batch = result.get("item") if isinstance(result, dict) else None
            if not isinstance(batch, dict) or "instance_ids" not in batch:
                continue
            if batch_key(batch) in seen:  # the same batch read from two registers
                continue
            seen.add(batch_key(batch))
            yield batch, result


def stage_parts(results):
    """{instance_id: part} for the instances of the batches the stage ran on, from the module's results.

    A result without per-instance results is the batch's failure before any instance's own work (the
    stages register with failed_when: false, so `failed` cannot tell): every instance of the batch gets
    its message. A result that has them but does not mention an instance was not asked about it (the
    modules answer for every instance they are given): no part (evidence already captured, for one).
    """
    parts = {}
    for batch, result in batch_outcomes(results):
        if result.get("skipped"):
            continue
        instances = instances_of(result)
        for instance_id in batch["instance_ids"]:
            if instance_id in instances:
                parts[instance_id] = instances[instance_id]
            elif not instances:
                parts[instance_id] = {"changed": False, "error": {"instance_id": instance_id, "action": "batch",
                                                                  "message": result.get("msg") or "the batch failed"}}
    return parts


def record_parts(record, stage, parts):
    """The play-wide record with `parts` ({instance_id: part}) kept under `stage`; a new dict."""
    updated = dict(record or {})
    for instance_id, part in (parts or {}).items():
        if part is None:
            continue
        updated[instance_id] = dict(updated.get(instance_id) or {}, **{stage: part})
    return updated


def error_text(error):
    """One line for a part's error: a string, or {action, code, message} as the modules return it."""
    if isinstance(error, dict):
        words = [str(error.get("action") or ""), str(error.get("code") or ""), str(error.get("message") or error)]
        return " ".join(w for w in words if w)
    return str(error)


def instance_failure(record, instance_id, evidence_stages=()):
    """'STAGE failed: CAUSE' for each stage of the instance's record with an error ('; ' between them), else None.

    The stages in `evidence_stages` are left out: see remaining_batches.
    """
    failures = [f"{stage} failed: {error_text(part['error'])}"
                for stage, part in ((record or {}).get(instance_id) or {}).items()
                if stage not in (evidence_stages or ()) and isinstance(part, dict) and part.get("error")]
    return "; ".join(failures) or None


def failed_instances(record):
    """{instance_id: 'STAGE failed: CAUSE[; ...]'} for every instance of the record with a failed stage, evidence included."""
    failures = {i: instance_failure(record, i) for i in (record or {})}
    return {i: message for i, message in failures.items() if message}


def batch_leader(batch):
    """The host that runs a batch's module calls: the one it was given (`leader`), else its first host."""
    return batch.get("leader") or next(iter(batch["hosts"].values()))


def batch_leaders(batches):
    """{leader host: batch}: what each host looks up to find the batch it runs (batches_loop)."""
    return {batch_leader(batch): batch for batch in batches or []}


def remaining_batches(batches, record, hosts=None, by_leader=False, evidence_stages=()):
    """The batches without the instances whose record has a failed stage; empty batches dropped.

    A failed stage named in `evidence_stages` does not count: containment never waits on evidence, so an
    instance whose protection, snapshot or capture failed still gets every later stage (its failure stays in
    the record, and failed_instances / run_failures still fail its host at the end).

    Given `hosts` (the hosts still in the play): by default the instances of the other hosts are left
    out too, and the first host left leads the batch. With `by_leader` (a play of the batches' leaders
    only, the other hosts are not in it) a batch keeps its leader, and is dropped when that leader has
    left the play: roles/batches `tasks_from: outcome` then fails its instances as unfinished.
    """
    in_play = set(hosts) if hosts is not None else None
    remaining = []
    for batch in batches or []:
        leader = batch_leader(batch)
        if by_leader and in_play is not None and leader not in in_play:
            continue
        ids = [i for i in batch["instance_ids"] if instance_failure(record, i, evidence_stages) is None
               and (by_leader or in_play is None or batch["hosts"][i] in in_play)]
        if ids:
            kept = dict(batch, instance_ids=ids, hosts={i: batch["hosts"][i] for i in ids})
            if by_leader:
                kept["leader"] = leader
            else:
                kept.pop("leader", None)
            remaining.append(kept)
    return remaining


def refused_leader_parts(batches, refused):
    """{instance_id: part} for every instance of the batches whose leader's options were refused (`refused`:
    {leader: [problem]}): the batch would run with them, so none of its instances is worked on."""
    parts = {}
    for batch in batches or []:
        leader = batch_leader(batch)
        problems = (refused or {}).get(leader)
        if not problems:
            continue
        error = (f"the options of {leader}, the host that runs this batch, were refused: {'; '.join(problems)}: "
                 "nothing was changed")
        for instance_id in batch["instance_ids"]:
            parts[instance_id] = {"changed": False, "error": error}
    return parts


def run_failures(placed, remaining, failures):
    """{instance_id: why} for every instance placed in a batch that did not finish: its stage failure, or,
    for an instance that left the batches without one (its batch's leader left the play), that the run
    stopped before its batch's stages ended. Nothing for the instances still in `remaining`."""
    still = {i for batch in remaining or [] for i in batch["instance_ids"]}
    unfinished = {}
    for batch in placed or []:
        for instance_id in batch["instance_ids"]:
            if instance_id in (failures or {}):
                unfinished[instance_id] = failures[instance_id]
            elif instance_id not in still:
                unfinished[instance_id] = (f"not finished: the run stopped on {batch_leader(batch)}, the host running "
                                           "its batch, before the batch's stages ended")
    return unfinished


def preflight_parts(batches, role_errors, callers, verify):
    """{instance_id: preflight part} for every instance: the role used, the caller proven, or why not.

    `role_errors` is {role_arn: why it could not be assumed}; `callers` the registered
    sts:GetCallerIdentity loop over the batches (each result: account, arn, or msg).
    """
    identities = {batch_key(b): r for b, r in batch_outcomes(callers or [])}
    parts = {}
    for batch in batches or []:
        identity = identities.get(batch_key(batch)) or {}
        role_arn = batch.get("role_arn")
        error = None
        if role_arn and role_arn in (role_errors or {}):
            error = f"cannot assume {role_arn}: {role_errors[role_arn]}"
        elif verify and identity.get("account") is None:
            error = f"sts:GetCallerIdentity in {batch['region']} failed: {identity.get('msg') or 'no answer'}"
        elif verify and batch.get("account_id") and str(identity["account"]) != str(batch["account_id"]):
            error = f"the credentials are account {identity['account']}'s, the instance is in account {batch['account_id']}"
        for instance_id in batch["instance_ids"]:
            parts[instance_id] = {"changed": False, "account_id": batch.get("account_id") or identity.get("account"),
                                  "role_arn": role_arn, "caller_arn": identity.get("arn"), "error": error}
    return parts


# -- the run: one state for the whole playbook run ----------------------------------------------------
# The action plugins cloudsec.guardduty.batch_stage and batch_outcome keep it in one host fact, RUN_FACT,
# set once per stage for every host of the play (run_once). The responder roles' credentials are never in
# it: they are kept in a 0600 file of the controller named by `credentials_file` (plugins/action/batch_stage.py).

RUN_FACT = "cloudsec_guardduty_run"
OUTCOMES_FACT = "cloudsec_guardduty_outcomes"
# The run's state is kept in its fact as JSON text, not as a dict: ansible-core deep-copies a host's facts on
# every task of every host (VariableManager.get_vars: clean_facts, INJECT_FACTS_AS_VARS; namespace_facts), so a
# dict fact holding a record of N instances costs O(N) per host and task, O(N^2) a run: 48 ms a host at 1,000
# hosts. Text is immutable and is not copied. Templates read it through the cloudsec.guardduty.run filter.


def encode_run(run):
    """The run's fact value: its state as compact JSON text."""
    return json.dumps(run, separators=(",", ":"))


def decode_run(value):
    """The run's state from its fact value: JSON text, or a mapping (a fact set by an earlier version); None if unset."""
    if not value:
        return None
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


def run_outcomes(run):
    """{instance_id: [failed, changed, cause]} of every instance of the run: each host's outcome computed once,
    for the per-host task to look up (host_outcome's answers without its per-call cost over the whole run)."""
    run = run or {}
    unfinished = run_failures(run.get("placed"), run.get("current"), run.get("failures"))
    outcomes = {}
    for instance_id, parts in (run.get("record") or {}).items():
        changed = any(isinstance(part, dict) and part.get("changed") for part in (parts or {}).values())
        outcomes[instance_id] = [False, changed, ""]
    for instance_id, cause in unfinished.items():
        outcomes[instance_id] = [True, False, cause]
    return outcomes


def outcome_of(outcomes, host, instance_id):
    """One host's (failed, changed, message) from run_outcomes' answer; an instance not in it did not fail a stage."""
    label = f"{host} ({instance_id or '-'})"
    failed, changed, cause = (outcomes or {}).get(instance_id) or [False, False, ""]
    return (True, False, f"{label}: {cause}") if failed else (False, bool(changed), f"{label}: no stage failed")


SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


def place_run(hosts, hostvars, incident, size=None, evidence_stages=(), by_leader=False, started=None):
    """The run's state once its hosts are placed in batches: nothing recorded, nothing failed yet.

    `by_leader`: the stages run in a play of the batches' leaders only (roles/isolate), see remaining_batches.
    """
    placed = account_batches(list(hosts), hostvars, size)
    return {"incident": incident, "started": started, "hosts": list(hosts), "placed": placed, "current": placed,
            "leaders": [batch_leader(batch) for batch in placed],
            "record": {}, "failures": {}, "by_leader": bool(by_leader), "evidence_stages": list(evidence_stages or ()),
            "credentials_file": None}


def session_name(name, incident):
    """The RoleSessionName of the responder roles: the one given, else cloudsec-guardduty-<incident>, made safe, at most 64."""
    return name or SESSION_NAME_UNSAFE.sub("-", f"cloudsec-guardduty-{incident}")[:64]


def roles_to_assume(batches, known=()):
    """{role_arn: region} for every role of the batches not assumed yet (the region of its first batch)."""
    roles = {}
    for batch in batches or []:
        if batch.get("role_arn") and batch["role_arn"] not in known:
            roles.setdefault(batch["role_arn"], batch["region"])
    return roles


# A responder role's session is assumed again before a stage when it ends within this many seconds: a run longer
# than the session (batches_session_duration, 1 hour by default) keeps working. botocore's own refreshable
# credentials renew from 15 minutes before the end too.
RENEW_BEFORE_SECONDS = 900


def sessions_to_renew(credentials, now, before=RENEW_BEFORE_SECONDS):
    """[{"role_arn", "region", "session_name", "duration_seconds"}] of the run's assumed roles whose session ends
    within `before` seconds of `now` (epoch seconds), by the Expiration AWS gave. Entries without one (or
    without what AssumeRole needs again) are left as they are."""
    due = []
    for role_arn, creds in sorted((credentials or {}).items()):
        try:
            ends = datetime.datetime.fromisoformat(str(creds["expiration"])).timestamp()
            again = {"role_arn": role_arn, "region": creds["region"], "session_name": creds["session_name"],
                     "duration_seconds": int(creds["duration_seconds"])}
        except (KeyError, TypeError, ValueError):
            continue
        if ends - now < before:
            due.append(again)
    return due


def batch_credentials(batch, credentials):
    """The module options that authenticate a batch: its role's assumed credentials, or none (the play's own)."""
    role_arn = batch.get("role_arn")
    if not role_arn:
        return {}
    creds = (credentials or {}).get(role_arn) or {}
    return {"access_key": creds.get("access_key"), "secret_key": creds.get("secret_key"),
            "session_token": creds.get("session_token")}


def batch_hostvars(batch, hostvars):
    return [hostvars[host] for host in batch["hosts"].values()]


def _finding_ids(batch, hostvars):
    ids = []
    for variables in batch_hostvars(batch, hostvars):
        for finding_id in variables.get("guardduty_finding_ids") or []:
            if finding_id not in ids:
                ids.append(finding_id)
    return ids


# Options a stage's module gets per batch from its hosts' inventory variables (batch_stage's `from_hosts`).
def _option_finding_ids(batch, hostvars):
    return {"finding_ids": _finding_ids(batch, hostvars)}


def _option_account_id(batch, hostvars):
    return {"account_id": batch["account_id"]} if batch.get("account_id") else {}


def _option_findings(batch, hostvars):
    """The inventory's findings, each with its host's instance, when every host of the batch has them (else the
    module reads them from GuardDuty itself)."""
    found = []
    for variables in batch_hostvars(batch, hostvars):
        if "guardduty_findings" not in variables:
            return {}
        found.extend(dict(finding, instance_id=variables.get("instance_id")) for finding in variables["guardduty_findings"] or [])
    return {"findings": found}


def _option_securityhub_findings(batch, hostvars):
    variables = batch_hostvars(batch, hostvars)
    detector = next((v.get("guardduty_detector_id") for v in variables if v.get("guardduty_detector_id")), None)
    options = {"findings": {i: hostvars[h].get("guardduty_finding_ids") or [] for i, h in batch["hosts"].items()}}
    if detector:
        options["detector_id"] = detector
    return options


HOST_OPTIONS = {"finding_ids": _option_finding_ids, "account_id": _option_account_id, "findings": _option_findings,
                "securityhub_findings": _option_securityhub_findings}


def _option_confirm(batch, hostvars):
    """ec2_eradicate's confirmation per batch: its own instance ids (the run's confirmation named them all)."""
    return {"confirm": list(batch["instance_ids"])}


def _option_support_case(batch, hostvars):
    """guardduty_support_case's instances and finding types: the whole account's (one case per account)."""
    types = []
    for variables in batch_hostvars(batch, hostvars):
        for finding_type in variables.get("guardduty_finding_types") or []:
            if finding_type not in types:
                types.append(finding_type)
    return {"instance_ids": list(batch["instance_ids"]), "finding_types": types}


def _option_instance_filter(batch, hostvars):
    """Describe by filter, not by ids: an unknown id then fails only its own instance, not the batch's call."""
    return {"filters": {"instance-id": list(batch["instance_ids"])}}


HOST_OPTIONS.update(confirm=_option_confirm, support_case=_option_support_case, instance_filter=_option_instance_filter)


def records_parts(outcomes, record_tags):
    """{instance_id: records part} from a DescribeInstances per batch (amazon.aws.ec2_instance_info): which of
    `record_tags` the instance carries, its incident tag, and for an instance that carries none the note that there
    is nothing to release; an instance not described, or a batch whose call failed, is the error."""
    parts = {}
    for batch, result in outcomes:
        described = {i.get("instance_id"): i for i in result.get("instances") or []} if "instances" in result else None
        for instance_id in batch["instance_ids"]:
            if described is None or instance_id not in described:
                cause = "instance not found" if described is not None else (result.get("msg") or "the batch was not described")
                parts[instance_id] = {"changed": False, "error": f"DescribeInstances in {batch['region']}: {cause}"}
                continue
            tags = described[instance_id].get("tags") or {}
            part = {"changed": False, "recorded": [t for t in record_tags or () if t in tags],
                    "incident": tags.get("guardduty:incident")}
            if not part["recorded"]:
                part["note"] = (f"nothing to release: the instance carries none of the tags {', '.join(record_tags or ())}, "
                                "so it was not isolated by cloudsec.guardduty (or its release is complete)")
            parts[instance_id] = part
    return parts


def account_batches_of(batches):
    """One batch per account (the first one's region and role) with every instance of the account's batches."""
    merged = {}
    for batch in batches or []:
        key = batch.get("account_id") or ""
        if key not in merged:
            merged[key] = dict(batch, instance_ids=[], hosts={})
        merged[key]["instance_ids"] = merged[key]["instance_ids"] + list(batch["instance_ids"])
        merged[key]["hosts"] = dict(merged[key]["hosts"], **batch["hosts"])
    return list(merged.values())


def stage_calls(batches, options, hostvars, credentials, from_hosts=(), per_instance=True, answered=None, use_credentials=True,
                per_account=False):
    """The module calls of a stage: [(batch, module options)], one per batch, the batches as they are in the run.

    `from_hosts` names HOST_OPTIONS built from the batch's hosts; `answered` ({instance_id: part}) are instances
    whose part is known without asking (the module is not given them; a batch left with none is not called);
    a module over findings (not `per_instance`) is not called for a batch whose hosts have none. `per_account`:
    one call per account (the Support API is global), for all of the account's instances.
    """
    calls = []
    for batch in account_batches_of(batches) if per_account else batches or []:
        ids = [i for i in batch["instance_ids"] if i not in (answered or {})]
        if not ids:
            continue
        batch = dict(batch, instance_ids=ids, hosts={i: batch["hosts"][i] for i in ids})
        args = dict(options or {})
        if per_instance:
            args["instance_ids"] = ids
        for name in from_hosts or ():
            if name not in HOST_OPTIONS:
                raise BatchError(f"unknown from_hosts value {name!r}: one of {', '.join(sorted(HOST_OPTIONS))}")
            args.update(HOST_OPTIONS[name](batch, hostvars))
        if not per_instance and "finding_ids" in (from_hosts or ()) and not args["finding_ids"]:
            continue  # a module over the hosts' findings, and they have none
        if not per_account:
            args["region"] = batch["region"]
        if use_credentials:
            args.update(batch_credentials(batch, credentials))
        calls.append((batch, args))
    return calls


# Modules that take several batches in one process (their `batches` option: module_utils/module_batches.py), and
# the options that may differ between the batches of one process (module_batches.batch_params).
MODULES_TAKING_BATCHES = frozenset(("cloudsec.guardduty.ec2_isolation",))
PER_BATCH_OPTIONS = ("instance_ids", "region", "access_key", "secret_key", "session_token")


def process_calls(calls, processes):
    """The module calls of a stage, [(batch, options)], as at most `processes` calls of a module taking `batches`:
    [([batch, ...], options with `batches`)]. Calls whose other options differ never share a process. The batches
    are spread over the processes largest first, each to the one with the fewest instances so far, and keep
    their order within a process."""
    kinds = {}
    for index, (batch, options) in enumerate(calls):
        shared = {k: v for k, v in options.items() if k not in PER_BATCH_OPTIONS}
        kinds.setdefault(json.dumps(shared, sort_keys=True, default=str), (shared, []))[1].append((index, batch, options))
    grouped = []
    for shared, members in kinds.values():
        count = max(1, min(processes, len(members)))
        loads, shares = [0] * count, [[] for _share in range(count)]
        for member in sorted(members, key=lambda m: (-len(m[2]["instance_ids"]), m[0])):
            target = loads.index(min(loads))
            loads[target] += len(member[2]["instance_ids"])
            shares[target].append(member)
        for share in shares:
            share.sort(key=lambda m: m[0])
            entries = [{k: options[k] for k in PER_BATCH_OPTIONS if options.get(k) is not None} for _i, _b, options in share]
            grouped.append(([batch for _i, batch, _o in share], dict(shared, batches=entries)))
    return grouped


def batch_results(batches, result):
    """[(batch, its own result)] from one process's result over `batches`: the process's `batches` answer, or, when
    the process itself failed (it did not start, or died), its failure for each of its batches."""
    answers = result.get("batches") if isinstance(result, dict) else None
    if isinstance(answers, list) and len(answers) == len(batches):
        return list(zip(batches, answers))
    cause = (result or {}).get("msg") or "the module process over several batches gave no answer for each"
    return [(batch, {"failed": True, "msg": cause, "instances": {}}) for batch in batches]


def support_parts(outcomes):
    """{instance_id: part} of the support case step: each instance of the account gets its account's case."""
    parts = {}
    for batch, result in outcomes:
        for instance_id in batch["instance_ids"]:
            parts[instance_id] = {"changed": bool(result.get("created")), "case": result.get("case"),
                                  "message": result.get("message") or result.get("msg"), "re_post": result.get("re_post"),
                                  # a case that could not be opened (AccessDenied, fail_without_plan) fails every host of its account
                                  "error": (result.get("msg") or "the support case could not be opened") if result.get("failed") else None}
    return parts


PLANNED_TERMINATION_NOTE = ("check mode: a real run takes the missing evidence snapshots and waits for them first, then terminates "
                            "(termination protection and the replacement are checked then)")


def planned_termination(part, snapshots_part):
    """In check mode, ec2_eradicate refuses an instance without completed evidence snapshots, though the run's own
    snapshot step would take them first: the part says what a real run does instead, when that step planned snapshots
    and did not fail. Any other part is returned as it is."""
    error = (part or {}).get("error")
    refused = (isinstance(error, dict) and error.get("code") == "Refused"
               and "no completed evidence snapshot" in str(error.get("message") or ""))
    planned = isinstance(snapshots_part, dict) and not snapshots_part.get("error") and bool(snapshots_part.get("snapshots"))
    if refused and planned:
        return {"changed": True, "terminated": True, "replacement": None, "calls": [], "note": PLANNED_TERMINATION_NOTE}
    return part


def finding_parts(outcomes, hostvars):
    """{instance_id: part} of a per-finding module (guardduty_finding): each instance gets its own host's findings."""
    parts = {}
    for batch, result in outcomes:
        findings = result.get("findings")
        for instance_id, host in batch["hosts"].items():
            own_ids = hostvars[host].get("guardduty_finding_ids") or []
            own = {k: v for k, v in (findings or {}).items() if k in own_ids}
            parts[instance_id] = {"changed": any(isinstance(v, dict) and v.get("changed") for v in own.values()),
                                  "findings": own,
                                  "error": None if findings is not None else (result.get("msg") or "the batch failed")}
    return parts


def record_run(run, stage, parts, hosts=None):
    """The run with `parts` recorded under `stage`; the instances whose part failed leave the current batches
    (but not for an evidence stage, see remaining_batches), and `failures` says why. A new dict."""
    record = record_parts(run.get("record"), stage, parts)
    current = remaining_batches(run.get("current"), record, hosts, run.get("by_leader", False), tuple(run.get("evidence_stages") or ()))
    return dict(run, record=record, failures=failed_instances(record), current=current)


def host_outcome(run, host, instance_id):
    """One host's outcome: (failed, changed, message), from the run's record and batches."""
    return outcome_of(run_outcomes(run), host, instance_id)


def run_summary(run, steps, check_mode=False):
    """The preflight's lines: the incident, then per batch its account, region, role, instances and the steps."""
    run = run or {}
    lines = [f"incident {run.get('incident')}{' (check mode: nothing will change)' if check_mode else ''}"]
    for batch in run.get("current") or []:
        lines.append(f"account {batch.get('account_id') or 'of the current credentials'}, {batch['region']}, "
                     f"as {batch.get('role_arn') or 'the current credentials'}: {len(batch['instance_ids'])} instance(s)")
        lines.append("instances: " + ", ".join(f"{host} ({i})" for i, host in batch["hosts"].items()))
        lines.append("stages: " + ", ".join(s for s in steps or [] if s))
    return lines
