#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_forensic_snapshot
version_added: 1.0.0
short_description: Snapshot every EBS volume of potentially compromised EC2 instances
description:
  - Takes crash-consistent snapshots of all the EBS volumes of each instance, boot volume included, with one
    CreateSnapshots call per instance.
  - Every snapshot is tagged C(guardduty:incident), C(guardduty:instance), C(guardduty:volume), C(guardduty:device),
    C(guardduty:snapshot-at) and, when O(finding_ids) is given, C(guardduty:findings).
  - A rerun for the same O(incident_id) reuses the snapshots already taken (found by their tags with one
    DescribeSnapshots per batch) and changes nothing. A volume attached since then is snapshotted on its own.
  - Snapshots in state C(error) are not evidence; they are taken again.
  - Works on a batch of instances; a failure on one instance is reported with the AWS action and error code
    and never hides the results of the others (the task fails, every instance's result is returned).
options:
  instance_ids:
    description: The instances to snapshot.
    type: list
    elements: str
    required: true
  incident_id:
    description:
      - The incident the snapshots belong to; the key that makes reruns reuse earlier snapshots.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters; anything else is refused before any AWS call.
    type: str
    required: true
  finding_ids:
    description:
      - GuardDuty finding ids recorded in the C(guardduty:findings) tag, comma-separated.
      - When they do not fit in 256 characters, the tag lists as many as fit followed by C(+N).
    type: list
    elements: str
    default: []
  description:
    description: The snapshots' description. Defaults to one naming the incident and the instance.
    type: str
  copy_to_region:
    description:
      - Also copy each snapshot (CopySnapshot) into this region, in the same account, tagged like its source plus
        C(guardduty:source-snapshot) and C(guardduty:source-region). A rerun reuses the copies.
      - Only completed snapshots are copied, so the module first waits for them as with O(wait=true);
        with O(wait=true) it also waits for the copies.
      - Must differ from the instances' region.
    type: str
  wait:
    description: Wait until every snapshot is C(completed) (or failed), at most O(wait_timeout) seconds.
    type: bool
    default: false
  wait_timeout:
    description: How long to wait for the snapshots, in seconds. Snapshots still pending then fail the instance.
    type: int
    default: 1800
  wait_delay:
    description: Seconds between two DescribeSnapshots while waiting.
    type: int
    default: 15
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Preserve the disks of the instances GuardDuty reported
  cloudsec.guardduty.ec2_forensic_snapshot:
    instance_ids: "{{ compromised_instance_ids }}"
    incident_id: INC-2024-0042
    finding_ids: "{{ finding_ids }}"
    wait: true
  register: snapshots

- name: Show the snapshot of each device
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.snapshots | map(attribute='snapshot_id') | list }}"
  loop: "{{ snapshots.instances | dict2items }}"
"""

RETURN = r"""
instances:
  description: Per instance id, what was done.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether snapshots were created or tagged for this instance.
      type: bool
    snapshots:
      description:
        - One entry per EBS volume, in device order.
        - In check mode, volumes without a snapshot yet have a null C(snapshot_id) and state C((new)).
      type: list
      elements: dict
      sample: [{"snapshot_id": "snap-0123456789abcdef0", "volume_id": "vol-0123456789abcdef0",
                "device": "/dev/xvda", "state": "completed", "progress": "100%"}]
    copies:
      description:
        - With O(copy_to_region), per source snapshot id, its copy C({region, snapshot_id, state}).
        - In check mode, copies still to make have a null C(snapshot_id) and state C((new)).
      type: dict
      returned: when O(copy_to_region) is set
      sample: {"snap-0123456789abcdef0": {"region": "eu-west-1", "snapshot_id": "snap-0fedcba9876543210", "state": "pending"}}
    error:
      description: Why this instance failed; names the instance, the AWS action and its error code.
      type: dict
      returned: on failure of this instance
      sample: {"instance_id": "i-0123456789abcdef0", "action": "CreateSnapshots", "code": "UnauthorizedOperation",
               "message": "i-0123456789abcdef0: CreateSnapshots: You are not authorized ... (UnauthorizedOperation)"}
  sample: {}
errors:
  description: The failures, one per failed instance (including malformed or missing instance ids).
  returned: always
  type: list
  elements: dict
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    failing_on_error, finish, map_instances, missing_problems, validate_ids)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import (
    InstanceProblem, describe_instances, problem_from_error)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_forensic_snapshot import (
    apply_plan, copy_snapshot, copy_tags, find_copies, find_incident_snapshots, plan_copies, plan_snapshots,
    planned_snapshots, snapshot_summary, wait_completed)


def run(module, client):
    params = module.params
    incident_id = params["incident_id"]
    if params["copy_to_region"] and params["copy_to_region"] == module.region:
        module.fail_json(msg=f"copy_to_region {params['copy_to_region']} is the instances' region; nothing was changed")
    valid = validate_ids(module, params["instance_ids"])
    problems = [p for p in (guards.incident_id_problem(incident_id), guards.non_negative_problem(params["wait_timeout"], "wait_timeout"),
                            guards.positive_problem(params["wait_delay"], "wait_delay")) if p]
    if problems:
        module.fail_json(msg="; ".join(problems) + "; nothing was changed")

    with failing_on_error(module, "could not describe the instances or their snapshots; nothing was changed"):
        found, missing = describe_instances(client, valid)
        existing = find_incident_snapshots(client, incident_id, list(found))

    snapshot_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    plans = {i: plan_snapshots(found[i], existing[i], incident_id, params["finding_ids"], snapshot_at) for i in found}
    results, problems = {}, missing_problems(missing)

    def apply_one(instance_id):
        plan = plans[instance_id]
        description = params["description"] or f"Forensic snapshot, incident {incident_id}, instance {instance_id}"
        try:
            return apply_plan(client, plan, description)
        except Exception as exc:
            problem = problem_from_error(instance_id, "CreateSnapshots", exc)
            problem.created = getattr(exc, "created", [])
            raise problem from None

    to_change = [i for i in valid if i in plans and (plans[i]["create"] or plans[i]["retag"])]
    for instance_id in valid:
        if instance_id in plans:
            plan = plans[instance_id]
            results[instance_id] = {"changed": instance_id in to_change, "snapshots": planned_snapshots(plan)}
    if not module.check_mode:
        for instance_id, snapshots, problem in map_instances(to_change, apply_one):
            if problem:
                problems.append(problem)
                # What exists after the failure: the reused snapshots and any created before it.
                kept = [s for s in results[instance_id]["snapshots"] if s["snapshot_id"]] + problem.created
                results[instance_id] = {"changed": bool(problem.created), "snapshots": kept, "error": problem.as_dict()}
            else:
                results[instance_id]["snapshots"] = snapshots

    described = {}
    if (params["wait"] or params["copy_to_region"]) and not module.check_mode:
        described = wait_for(client, params, results, problems)
    if params["copy_to_region"]:
        copy_all(module, params, results, problems, described)

    def diff(done):
        return {"before": {i: [s["snapshot_id"] for s in snapshot_summaries(plans[i]["reuse"])] for i in plans},
                "after": {i: [s["snapshot_id"] or f"(new: {s['volume_id']})" for s in done[i]["snapshots"]] for i in plans}}

    finish(module, valid, results, problems, default_result={"changed": False, "snapshots": []}, diff=diff)


def snapshot_summaries(snapshots):
    return [snapshot_summary(s) for s in snapshots]


def wait_for(client, params, results, problems):
    ids = [s["snapshot_id"] for r in results.values() if "error" not in r for s in r["snapshots"] if s["snapshot_id"]]
    try:
        described = wait_completed(client, ids, params["wait_timeout"], params["wait_delay"])
    except Exception as exc:
        for instance_id, result in results.items():
            if "error" not in result:
                problems.append(problem_from_error(instance_id, "DescribeSnapshots", exc))
                result["error"] = problems[-1].as_dict()
        return {}
    for instance_id, result in results.items():
        if "error" in result:
            continue
        for snapshot in result["snapshots"]:
            latest = described.get(snapshot["snapshot_id"])
            if latest:
                snapshot.update(state=latest.get("State"), progress=latest.get("Progress"))
        unfinished = [s for s in result["snapshots"] if s["state"] != "completed"]
        if unfinished:
            states = ", ".join(f"{s['snapshot_id']} {s['state']}" for s in unfinished)
            code = "SnapshotFailed" if any(s["state"] in ("error", "recoverable") for s in unfinished) else "WaitTimeout"
            problems.append(InstanceProblem(instance_id, "WaitSnapshotCompleted", f"snapshots not completed: {states}", code))
            result["error"] = problems[-1].as_dict()
    return described


def copy_all(module, params, results, problems, described):
    """Copy each instance's completed snapshots to copy_to_region, reusing the incident's copies there."""
    target, source_region = params["copy_to_region"], module.region
    instance_ids = [i for i, r in results.items() if "error" not in r]
    if not instance_ids:
        return
    dest = module_client(module, "ec2", region=target)
    try:
        copies = find_copies(dest, params["incident_id"], instance_ids)
    except Exception as exc:
        for instance_id in instance_ids:
            problems.append(problem_from_error(instance_id, "DescribeSnapshots", exc))
            results[instance_id]["error"] = problems[-1].as_dict()
        return
    made = {}
    for instance_id in instance_ids:
        result = results[instance_id]
        reuse, to_copy = plan_copies(result["snapshots"], copies)
        result["copies"] = {src: {"region": target, "snapshot_id": c["SnapshotId"], "state": c.get("State")} for src, c in reuse.items()}
        pending = to_copy if not module.check_mode else [s for s in result["snapshots"] if s["snapshot_id"] not in reuse]
        for source in pending:
            if module.check_mode:
                result["copies"][source["snapshot_id"] or f"(new: {source['volume_id']})"] = {
                    "region": target, "snapshot_id": None, "state": "(new)"}
                result["changed"] = True
                continue
            tags = copy_tags(described.get(source["snapshot_id"], {}).get("Tags"), source["snapshot_id"], source_region)
            try:
                copy_id = copy_snapshot(dest, source_region, source["snapshot_id"], tags,
                                        f"Copy of {source['snapshot_id']} ({source_region}), incident {params['incident_id']}")
            except Exception as exc:
                problems.append(problem_from_error(instance_id, "CopySnapshot", exc))
                result["error"] = problems[-1].as_dict()
                break
            result["copies"][source["snapshot_id"]] = {"region": target, "snapshot_id": copy_id, "state": "pending"}
            result["changed"] = True
            made[copy_id] = (instance_id, source["snapshot_id"])
    if params["wait"] and made:
        try:
            latest = wait_completed(dest, list(made), params["wait_timeout"], params["wait_delay"])
        except Exception as exc:
            latest = {}
            for instance_id in {pair[0] for pair in made.values()}:
                problems.append(problem_from_error(instance_id, "DescribeSnapshots", exc))
                results[instance_id]["error"] = problems[-1].as_dict()
        for copy_id, (instance_id, source_id) in made.items():
            if copy_id in latest:
                results[instance_id]["copies"][source_id]["state"] = latest[copy_id].get("State")


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        incident_id=dict(type="str", required=True),
        finding_ids=dict(type="list", elements="str", default=[]),
        description=dict(type="str"),
        copy_to_region=dict(type="str"),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=1800),
        wait_delay=dict(type="int", default=15),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    client = module_client(module, "ec2")
    run(module, client)


if __name__ == "__main__":
    main()
