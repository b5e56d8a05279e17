#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_eradicate
version_added: 1.0.0
short_description: Terminate compromised EC2 instances and replace them, only once their evidence is safe
description:
  - The last resort of step 3 of GuardDuty's remediation procedure. When the unauthorized activity cannot be
    identified and stopped, terminate the instance and replace it.
  - Refuses, per instance and before changing anything, unless every EBS volume of the instance has a C(completed)
    snapshot tagged C(guardduty:incident=<incident_id>) and C(guardduty:volume=<volume id>) (what
    M(cloudsec.guardduty.ec2_forensic_snapshot) takes).
  - Refuses the whole batch unless O(confirm) names exactly the instances, or is C(terminate-<incident_id>).
  - Refuses an instance with termination protection on, unless O(override_protection=true); then the tag
    C(guardduty:termination-protection-was=true) is written and the protection turned off first.
  - Replacement, when O(replace=true). An instance in an Auto Scaling group is terminated with
    C(TerminateInstanceInAutoScalingGroup) and C(ShouldDecrementDesiredCapacity=false), so the group launches a new
    one; an instance in C(Standby) there (the isolate role's O(cloudsec.guardduty.ec2_instance_detach#module:asg_mode=standby))
    is outside the desired capacity, so the group launches none, and the note says so. An instance the isolate role
    detached from its group (its C(guardduty:detach-record) says C(asg_mode=detach)) is not replaced again, since the group
    launched the replacement when it was detached. An instance launched from a launch template (tags
    C(aws:ec2launchtemplate:id) and C(aws:ec2launchtemplate:version)) is replaced by C(RunInstances) from that
    template version in the same subnet (given on the template's primary network interface when the template
    defines network interfaces, since EC2 refuses an instance-level subnet then), tagged
    C(guardduty:replaces=<instance id>) (a rerun finds it and launches no second one); otherwise the result says
    C(no replacement source).
  - An instance already terminated (or shutting down) is reported unchanged.
options:
  instance_ids:
    description: The instances to terminate.
    type: list
    elements: str
    required: true
  incident_id:
    description:
      - The incident whose evidence snapshots must exist.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters; anything else is refused before any AWS call.
    type: str
    required: true
  confirm:
    description:
      - The explicit confirmation. Either the same instance ids as O(instance_ids) (any order), or the single value
        C(terminate-<incident_id>).
    type: list
    elements: str
    required: true
  override_protection:
    description: Turn termination protection off (recorded in a tag) instead of refusing.
    type: bool
    default: false
  replace:
    description: Replace each terminated instance through its Auto Scaling group or launch template.
    type: bool
    default: true
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Evidence first
  cloudsec.guardduty.ec2_forensic_snapshot:
    instance_ids: "{{ compromised_instance_ids }}"
    incident_id: INC-0042
    wait: true

- name: Then terminate and replace
  cloudsec.guardduty.ec2_eradicate:
    instance_ids: "{{ compromised_instance_ids }}"
    incident_id: INC-0042
    confirm: terminate-INC-0042
"""

RETURN = r"""
instances:
  description: Per instance id, the outcome.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether the instance was (or in check mode would be) terminated or changed.
      type: bool
    terminated:
      description: Whether the instance is terminated (or terminating) once done.
      type: bool
    replacement:
      description: The replacement source (C(autoscaling), C(detached) or C(launch_template)), the replacement instance id when known, and a note.
      type: dict
      sample: {"source": {"kind": "autoscaling", "group": "web-asg"}, "instance_id": null,
               "note": "Auto Scaling group web-asg launches the replacement"}
    calls:
      description: The write calls made, in order (in check mode, planned).
      type: list
      elements: str
    error:
      description: Why this instance was refused or failed; names the instance, the action and the code.
      type: dict
      returned: on refusal or failure of this instance
errors:
  description: The refusals and failures, one per instance.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_eradicate as er
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_call, module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    failing_on_error, finish, run_per_instance, validate_ids, with_result)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_instance_detach import RECORD_TAG as DETACH_RECORD_TAG
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import (
    InstanceProblem, describe_instances, problem_from_error)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.evidence_snapshot_tags import attached_volumes

NOT_TERMINATED = {"changed": False, "terminated": False, "replacement": None, "calls": []}


def detached_from(instance):
    """The group isolate detached the instance from, read through the shared tag record codec (records.decode)."""
    try:
        return er.detached_group(records.decode(instance.get("Tags"), DETACH_RECORD_TAG))
    except ValueError as exc:
        raise InstanceProblem(instance["InstanceId"], "ReadDetachRecord", f"{exc}; not terminated (a replacement "
                              "might be launched twice)", "InvalidDetachRecord") from None


def interfaces_of_template(ec2, instance, asg, detached):
    """The NetworkInterfaces of the launch template a replacement would be launched from ([] if none)."""
    source = er.replacement_source(instance, asg[0] if asg else None, detached)
    if not source or source["kind"] != "launch_template":
        return []
    try:
        return er.template_interfaces(ec2, source["id"], source["version"])
    except Exception as exc:
        raise problem_from_error(instance["InstanceId"], "DescribeLaunchTemplateVersions", exc) from None


def work_on(ec2, autoscaling, instance, params, snapshots, asg, replacement_id, check_mode):
    instance_id = instance["InstanceId"]
    try:
        protected = er.termination_protection(ec2, instance_id)
    except Exception as exc:
        raise problem_from_error(instance_id, "DescribeInstanceAttribute", exc) from None
    detached = detached_from(instance)
    interfaces = interfaces_of_template(ec2, instance, asg, detached) if params["replace"] else []
    refusal, calls, replacement = er.plan_eradicate(instance, params["incident_id"], snapshots, asg[0] if asg else None,
                                                    protected, params["override_protection"], params["replace"],
                                                    replacement_id, asg_lifecycle_state=asg[1] if asg else None,
                                                    detached_from=detached, template_interfaces=interfaces)
    if refusal:
        raise with_result(InstanceProblem(instance_id, "Guard", refusal, "Refused"), dict(NOT_TERMINATED, calls=[]))
    result = {"changed": True, "terminated": True, "replacement": replacement, "calls": []}
    for call in calls:
        if not check_mode:
            try:
                answer = er.make_call(ec2, autoscaling, *call)
            except Exception as exc:
                problem = problem_from_error(instance_id, call[0], exc)
                problem.result = dict(result, changed=bool(result["calls"]), terminated=False)
                raise problem from None
            if call[0] == "RunInstances":
                replacement["instance_id"] = answer["Instances"][0]["InstanceId"]
        result["calls"].append(describe_call(call))
    return result


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        incident_id=dict(type="str", required=True),
        confirm=dict(type="list", elements="str", required=True),
        override_protection=dict(type="bool", default=False),
        replace=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    valid = validate_ids(module, params["instance_ids"])
    problem = guards.incident_id_problem(params["incident_id"])
    if problem:
        module.fail_json(msg=f"{problem}; nothing was changed", instances={}, errors=[])
    if not er.confirmed(params["confirm"], valid, params["incident_id"]):
        module.fail_json(msg=(f"refusing to terminate without confirmation: set confirm to the instance ids "
                              f"({', '.join(valid)}) or to 'terminate-{params['incident_id']}'; nothing was changed"),
                         instances={}, errors=[])
    ec2, autoscaling = module_client(module, "ec2"), module_client(module, "autoscaling")
    with failing_on_error(module, "could not describe the instances, their snapshots and Auto Scaling groups; nothing was changed"):
        found, missing = describe_instances(ec2, valid)
        volumes = sorted({v["volume_id"] for i in found.values() for v in attached_volumes(i)})
        snapshots = er.incident_snapshots_by_volume(ec2, params["incident_id"], volumes) if volumes else []
        groups = er.autoscaling_groups(autoscaling, list(found)) if found else {}
        replacements = er.existing_replacements(ec2, list(found)) if found else {}

    results, problems = {}, []
    for instance_id, reason in missing.items():
        if reason.startswith("instance is "):  # already terminated or terminating: the goal is reached
            results[instance_id] = {"changed": False, "terminated": True, "replacement": None, "calls": []}
        else:
            problems.append(InstanceProblem(instance_id, "DescribeInstances", reason))

    def one(instance_id):
        instance = found[instance_id]
        volume_ids = {v["volume_id"] for v in attached_volumes(instance)}
        mine = [s for s in snapshots if s.get("VolumeId") in volume_ids
                or any(t["Key"] == er.TAG_VOLUME and t["Value"] in volume_ids for t in s.get("Tags") or [])]
        return work_on(ec2, autoscaling, instance, params, mine, groups.get(instance_id), replacements.get(instance_id),
                       module.check_mode)

    run_per_instance([i for i in valid if i in found], one, results, problems, NOT_TERMINATED)

    def diff(done):
        changed = [i for i, r in done.items() if r["changed"]]
        return {"before": {i: "running" for i in changed}, "after": {i: "terminated" for i in changed}}

    finish(module, valid, results, problems, failed="refused or failed", default_result=NOT_TERMINATED, diff=diff, order=valid)


if __name__ == "__main__":
    main()
