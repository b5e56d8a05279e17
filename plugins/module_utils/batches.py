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
        instances = item.get("instances") or {}
        if isinstance(instances, list):
            # ec2_isolation returns a list of {"instance_id": ...} in the order given
            instances = {i.get("instance_id"): i for i in instances if isinstance(i, dict)}
        if instance_id in instances:
            return instances[instance_id]
        batch = item.get("item") or {}
        if instance_id in (batch.get("instance_ids") or []):
            # The module failed for the whole batch (bad credentials, throttled describe, ...).
            return {"changed": False, "error": {"instance_id": instance_id, "action": "batch",
                                                "message": item.get("msg") or "the batch failed"}}
    return None
