#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_instance_detach
version_added: 1.0.0
short_description: Take compromised EC2 instances out of Auto Scaling, target groups and classic load balancers, reversibly
description:
  - "O(state=detached): for each instance, deregister it from every Elastic Load Balancing v2 target group that
    holds it (as an instance target, or as an IP target on one of its private addresses), from every classic
    load balancer that lists it, then take it out of its Auto Scaling group (see O(asg_mode))."
  - Before any change, the memberships found (Auto Scaling group with lifecycle state and desired capacity,
    target group ARN with port, classic load balancer name) are written to the instance tag
    C(guardduty:detach-record) (compact JSON, continued in C(guardduty:detach-record:2), ... past the
    256-character tag value limit), and returned.
  - Load balancers are left first, so no new request is sent to the instance, and Auto Scaling last. A target
    group's deregistration delay and a classic load balancer's connection draining let in-flight requests end
    before the instance is really out; the result reports these times in RV(instances.notes).
  - "O(state=released): put back every recorded membership that is missing (C(ExitStandby) or C(AttachInstances),
    C(RegisterTargets) on the recorded port, C(RegisterInstancesWithLoadBalancer)), then delete the record."
  - The memberships of the whole batch are described once per module call (one C(DescribeTargetGroups), one
    C(DescribeTargetHealth) per target group, one C(DescribeLoadBalancers), C(DescribeAutoScalingInstances) by 50).
  - Idempotent; supports check mode and diff. Every instance gets its own result; a failure names the instance,
    the AWS action and its error code, and never hides the others' results.
  - The record is kept in the incident store (O(incident_store)), written before any change; the tag is only the hint
    to resume. O(state=detached) records the memberships described from AWS, never a tag the store does not know.
    O(state=released) refuses by name, changing nothing for that instance, a tag that differs from the store's record,
    and never registers a target id that is not the instance or one of its own private addresses.
options:
  instance_ids:
    description: The instances to detach or release, in the module's account and region.
    type: list
    elements: str
    required: true
  state:
    description: V(detached) takes the instances out; V(released) puts back what the record holds.
    type: str
    choices: [detached, released]
    default: detached
  asg_mode:
    description:
      - How an instance leaves its Auto Scaling group.
      - V(detach) (default) calls C(DetachInstances) with C(ShouldDecrementDesiredCapacity=false). The group no
        longer manages, health-checks or terminates the instance (the evidence is safe from scale-in and instance
        refresh), and it launches a clean replacement at once, so the service keeps its capacity.
      - V(standby) calls C(EnterStandby) with C(ShouldDecrementDesiredCapacity=true), so no replacement starts;
        the instance stays in the group, which can still terminate it when the group is deleted or refreshed, and
        the desired capacity may not go below the group's minimum size.
      - Release uses C(AttachInstances) (which raises the desired capacity by one; the replacement stays) or
        C(ExitStandby) (which restores the desired capacity).
    type: str
    choices: [detach, standby]
    default: detach
  trust_tag_records:
    description:
      - With O(state=released), apply a C(guardduty:detach-record) tag record the incident store does not know (one written by an
        earlier version, which kept records in tags only). Check the tag first, as anyone with C(ec2:CreateTags) in the
        member account can write it.
    type: bool
    default: false
author:
  - cloudsec.guardduty contributors (@cloudsec)
notes:
  - "IAM actions: ec2:DescribeInstances, ec2:CreateTags, ec2:DeleteTags, autoscaling:DescribeAutoScalingInstances,
    autoscaling:DescribeAutoScalingGroups, autoscaling:DetachInstances, autoscaling:AttachInstances,
    autoscaling:EnterStandby, autoscaling:ExitStandby, elasticloadbalancing:DescribeTargetGroups,
    elasticloadbalancing:DescribeTargetHealth, elasticloadbalancing:DescribeTargetGroupAttributes,
    elasticloadbalancing:DeregisterTargets, elasticloadbalancing:RegisterTargets,
    elasticloadbalancing:DescribeLoadBalancers, elasticloadbalancing:DescribeLoadBalancerAttributes,
    elasticloadbalancing:DeregisterInstancesFromLoadBalancer, elasticloadbalancing:RegisterInstancesWithLoadBalancer
    (policy: docs/iam/containment_paths.json)."
extends_documentation_fragment:
  - cloudsec.guardduty.incident_store
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Take the compromised instances out of their load balancers and Auto Scaling groups
  cloudsec.guardduty.ec2_instance_detach:
    region: us-east-1
    instance_ids: "{{ compromised_instance_ids }}"

- name: Same, without a replacement instance
  cloudsec.guardduty.ec2_instance_detach:
    instance_ids: [i-0123456789abcdef0]
    asg_mode: standby

- name: Put them back once clean
  cloudsec.guardduty.ec2_instance_detach:
    instance_ids: "{{ compromised_instance_ids }}"
    state: released
"""

RETURN = r"""
instances:
  description: Per instance id, what was found, recorded and done (or planned, in check mode).
  returned: always
  type: dict
  contains:
    changed:
      description: Whether anything was (or in check mode would be) written for this instance.
      type: bool
    before:
      description: The memberships found.
      type: dict
      sample: {"autoscaling": {"group": "web-asg", "lifecycle_state": "InService", "desired_capacity": 2, "min_size": 1,
               "max_size": 4}, "target_groups": [{"target_group_arn": "arn:aws:elasticloadbalancing:...:targetgroup/web-tg/0123",
               "id": "i-0123456789abcdef0", "port": 443, "state": "healthy", "deregistration_delay": 300}],
               "load_balancers": [{"name": "api-elb", "connection_draining": 300}]}
    after:
      description: The memberships once done (predicted).
      type: dict
    record:
      description: The memberships recorded for release (held in the C(guardduty:detach-record) tag); null if none.
      type: dict
    calls:
      description: The write calls made, in order (in check mode, the calls that would be made).
      type: list
      elements: str
    notes:
      description: Draining times, capacity changes and other facts the responder should know.
      type: list
      elements: str
    error:
      description: Why this instance failed; names the instance, the AWS action and its error code.
      type: dict
      returned: on failure of this instance
errors:
  description: The failures, one per failed instance.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    WORKERS, apply_with_partial_result, failing_on_describe_error, failing_on_error, finish, missing_problems,
    run_per_instance, validate_ids)
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import PlanProblem, module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_instance_detach import (
    RECORD_TAG, add_draining_times, apply_calls, describe_call, describe_groups, describe_memberships,
    foreign_targets, memberships_of, own_addresses, plan_detach, plan_release, registered_targets, shown_record)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident_store import (
    StoreError, module_store, weigh_instance_record)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import InstanceProblem, describe_instances


def record_of(store, region, instance, state, trust_tag_records):
    """(record to use, store's record, warning) for one instance: the incident store's, the tag only a hint.

    Raises InstanceProblem when release must refuse the instance (nothing of it changes)."""
    instance_id = instance["InstanceId"]
    try:
        record, stored, warning, problem = weigh_instance_record(store, region, instance, "detach", RECORD_TAG,
                                                                 state == "released", trust_tag_records)
    except StoreError as exc:
        raise InstanceProblem(instance_id, "ReadIncidentStore", f"{exc}; nothing was changed", "IncidentStoreError") from None
    if problem is None and record is not None and state == "released":
        foreign = foreign_targets(instance_id, record, own_addresses(instance))
        if foreign:
            problem = (f"{instance_id}: the record registers target ids {', '.join(foreign)}, neither the instance nor "
                       "one of its addresses: refusing to apply it; nothing was changed")
    if problem:
        raise InstanceProblem(instance_id, "CheckDetachRecord", problem, "RecordRefused")
    return record, stored, warning


def work_on(clients, store, instance, memberships, context, params, check_mode, warn):
    """The result for one instance; raises InstanceProblem (carrying what was done so far) on failure."""
    instance_id = instance["InstanceId"]
    region = clients["ec2"].meta.region_name
    tags = instance.get("Tags") or []
    keys = records.keys(tags, RECORD_TAG)
    record, stored, warning = record_of(store, region, instance, params["state"], params["trust_tag_records"])
    if warning:
        warn(warning)
    try:
        if params["state"] == "detached":
            calls, new_record, after, notes = plan_detach(instance_id, memberships, record, tags, params["asg_mode"])
            shown = new_record
        else:
            calls, after, notes = plan_release(instance_id, memberships, record, keys, *context)
            shown = record
    except PlanProblem as exc:
        raise InstanceProblem(instance_id, exc.action, str(exc), exc.code) from None
    result = {"changed": bool(calls), "before": memberships, "after": after, "record": shown_record(shown),
              "calls": [describe_call(c) for c in calls], "notes": notes}
    owner = instance.get("OwnerId") or ""
    if params["state"] == "detached" and calls and not check_mode and not records.same(new_record, stored):
        # The store's record first: before the tag and before any membership changes.
        try:
            store.put(owner, region, instance_id, "detach", new_record)
        except StoreError as exc:
            raise InstanceProblem(instance_id, "WriteIncidentStore", f"{exc}; nothing was changed", "IncidentStoreError") from None
    result = apply_with_partial_result(instance_id, result, calls, lambda c: apply_calls(clients, c), check_mode)
    if params["state"] == "released" and stored is not None and not check_mode:
        try:
            store.drop(owner, region, instance_id, "detach")
        except StoreError as exc:
            warn(f"{instance_id}: released, but its record stays in the incident store: {exc}")
    return result


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["detached", "released"], default="detached"),
        asg_mode=dict(type="str", choices=["detach", "standby"], default="detach"),
        incident_store=dict(type="str"),
        trust_tag_records=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    valid = validate_ids(module, params["instance_ids"], require_some=True)
    clients = {name: module_client(module, name) for name in ("ec2", "autoscaling", "elbv2", "elb")}
    store = module_store(module)
    with failing_on_error(module, "could not describe the instances; nothing was changed"):
        found, missing = describe_instances(clients["ec2"], valid)
    ordered = [i for i in valid if i in found]
    with failing_on_describe_error(module):
        asg_instances, asg_groups, health, target_groups, load_balancers = describe_memberships(clients, ordered, WORKERS)
        if params["state"] == "detached":
            # Draining times are reported for the groups and load balancers being left.
            pending = {i: memberships_of(found[i], asg_instances, asg_groups, health, target_groups, load_balancers) for i in ordered}
            arns = sorted({t["target_group_arn"] for m in pending.values() for t in registered_targets(m)})
            names = {lb["name"] for m in pending.values() for lb in m["load_balancers"]}
            add_draining_times(clients, target_groups, load_balancers, arns, names)
            context = ()
        else:
            recorded_groups = set()
            for instance_id in ordered:
                try:
                    record = record_of(store, module.region, found[instance_id], "released",
                                       params["trust_tag_records"])[0] or {}
                except InstanceProblem:
                    continue  # refused again, by name, when its turn comes
                if record.get("a"):
                    recorded_groups.add(record["a"][0])
            existing_groups = dict(asg_groups)
            missing_groups = sorted(recorded_groups - set(existing_groups))
            if missing_groups:
                existing_groups.update(describe_groups(clients["autoscaling"], missing_groups))
            context = (set(target_groups), {lb["LoadBalancerName"] for lb in load_balancers}, existing_groups)

    def one(instance_id):
        memberships = memberships_of(found[instance_id], asg_instances, asg_groups, health, target_groups, load_balancers)
        try:
            return work_on(clients, store, found[instance_id], memberships, context, params, module.check_mode, module.warn)
        except InstanceProblem as problem:
            # A failure before any call still shows the memberships found.
            problem.result = getattr(problem, "result", None) or {"changed": False, "before": memberships, "calls": []}
            raise

    results, problems = {}, missing_problems(missing)
    run_per_instance(ordered, one, results, problems)
    finish(module, valid, results, problems)


if __name__ == "__main__":
    main()
