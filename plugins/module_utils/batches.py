# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hosts to batches: one module call per (account, region, role) with the whole batch of instances.

Plain functions over host variables; the roles reach them through the filters in plugins/filter/batches.py.
A host names its instance with `instance_id`, its region with `region` (or `aws_region`), its account
with `account_id` (optional) and the role to assume in that account with `responder_role_arn` (optional:
without it the batch runs with the play's own credentials).
"""

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
# hosts is most of a run. A host reads its own part through the lazy `batches_results` variable.

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
