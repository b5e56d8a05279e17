#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_subnet_containment
version_added: 1.0.0
short_description: Opt-in - put the whole subnets of compromised EC2 instances behind a deny-all network ACL, reversibly
description:
  - "B(This cuts off every network interface in the subnets, not only the compromised instances): other instances,
    NAT gateways, load balancer nodes, Lambda, RDS and endpoint interfaces. It runs only with
    O(acknowledge_subnet_impact=true); without it the module changes nothing and fails, listing what would be cut off."
  - For flows a security group cannot cut because EC2 keeps tracking them (ICMP, flows through a NAT gateway, NLB,
    Global Accelerator, Network Firewall, PrivateLink endpoint or egress-only internet gateway), a network ACL, which
    is stateless, stops them at the subnet boundary. Traffic between two addresses of the same subnet does not cross
    a network ACL and is not stopped; the isolation security group does that.
  - "O(state=contained): per VPC, find (by C(Name) and the tag C(guardduty:containment=true)) or create the containment
    network ACL; a new custom network ACL denies all inbound and outbound IPv4 and IPv6 traffic, and rules added to it
    by hand are removed. Then, for every subnet of every network interface of the instances: record the subnet's
    current network ACL id in the incident store (O(incident_store), one document per subnet), then in the subnet
    tag C(guardduty:nacl-record), then replace the subnet's association with the containment ACL
    (C(ReplaceNetworkAclAssociation))."
  - "O(state=released): associate each subnet with its recorded network ACL again and delete the record. This
    reopens the whole subnet, for every instance in it. The containment ACL stays, empty, for the next incident."
  - The incident store's record is the authority; the tag is only a hint, which anyone with C(ec2:CreateTags) in
    the member account can rewrite. Containing again keeps the store's record (the pre-incident ACL) even if the
    subnet was put on another ACL meanwhile. O(state=released) refuses by name, changing nothing for that subnet
    and its instances, a tag that differs from the store's record, and a tag the store does not hold unless
    O(trust_tag_records=true).
  - Idempotent; supports check mode and diff. Subnets shared by several instances of the batch are changed once;
    a failure names the instance, the subnet, the AWS action and its error code, and never hides the others' results.
options:
  instance_ids:
    description: The instances whose subnets to contain or release, in the module's account and region.
    type: list
    elements: str
    required: true
  state:
    description: V(contained) puts the subnets behind the containment ACL; V(released) restores the recorded ACLs.
    type: str
    choices: [contained, released]
    default: contained
  acknowledge_subnet_impact:
    description:
      - Must be V(true) for O(state=contained), to confirm that every resource in the subnets loses its network
        (see RV(affected)).
    type: bool
    default: false
  nacl_name:
    description: Name of the containment network ACL, one per VPC.
    type: str
    default: guardduty-containment
  trust_tag_records:
    description:
      - With O(state=released), apply a C(guardduty:nacl-record) tag record the incident store does not know (one
        written by an earlier version, which kept this record in the subnet tag only). Check the tag first, as anyone
        with C(ec2:CreateTags) in the member account can write it, and it names the network ACL the subnet gets.
    type: bool
    default: false
author:
  - cloudsec.guardduty contributors (@cloudsec)
notes:
  - Per-instance deny entries in the subnet's existing network ACL are deliberately not offered; see
    docs/modules/ec2_subnet_containment.md for the trade-offs.
  - "IAM actions: ec2:DescribeInstances, ec2:DescribeNetworkAcls, ec2:DescribeSubnets, ec2:DescribeNetworkInterfaces,
    ec2:CreateNetworkAcl, ec2:DeleteNetworkAclEntry, ec2:ReplaceNetworkAclAssociation, ec2:CreateTags, ec2:DeleteTags
    (policy: docs/iam/containment_paths.json)."
extends_documentation_fragment:
  - cloudsec.guardduty.incident_store
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: See what a subnet containment would cut off (changes nothing, fails with the list)
  cloudsec.guardduty.ec2_subnet_containment:
    instance_ids: [i-0123456789abcdef0]
  check_mode: true
  ignore_errors: true

- name: Contain the whole subnet, knowing every resource in it loses its network
  cloudsec.guardduty.ec2_subnet_containment:
    instance_ids: [i-0123456789abcdef0]
    acknowledge_subnet_impact: true

- name: Reopen the subnet
  cloudsec.guardduty.ec2_subnet_containment:
    instance_ids: [i-0123456789abcdef0]
    state: released
"""

RETURN = r"""
instances:
  description: Per instance id, its subnets with the network ACL before and after, and the calls made.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether any of its subnets was (or in check mode would be) changed.
      type: bool
    subnets:
      description: Per subnet id, C(before) and C(after) network ACL ids (predicted in check mode).
      type: dict
      sample: {"subnet-0123": {"before": "acl-0123", "after": "acl-0fed"}}
    calls:
      description: The write calls made for its subnets, in order (in check mode, the calls that would be made).
      type: list
      elements: str
    warnings:
      description: What else the containment cuts off in its subnets.
      type: list
      elements: str
    error:
      description: Why this instance failed; names the instance, the subnet, the AWS action and its error code.
      type: dict
      returned: on failure of this instance
affected:
  description: Per subnet, the other network interfaces (and their instance or service) that are cut off too.
  returned: always
  type: dict
containment_acls:
  description: Per VPC, the containment network ACL id (C((new) NAME) in check mode when not created yet).
  returned: always
  type: dict
errors:
  description: The failures, one per failed instance.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    batch_output, exit_batch, failing_on_describe_error, failing_on_error, missing_problems, validate_ids)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import (
    PlanProblem, call, error_code, error_message, module_client)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import InstanceProblem, describe_instances
from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident_store import StoreError, module_store
from ansible_collections.cloudsec.guardduty.plugins.module_utils.records import same
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_subnet_containment import (
    apply_calls, containment_acls, describe_call, describe_subnet_state, instance_subnets, others_in_subnets, plan_contain_subnet, plan_containment_acl,
    plan_release_subnet, subnet_associations, subnet_record)


def run(ec2, calls, check_mode):
    """Make the calls (unless check mode); returns the last answer."""
    if check_mode or not calls:
        return None
    return apply_calls(ec2, calls)


def store_problem(subnet_id, action, exc):
    return (action, PlanProblem(action, f"subnet {subnet_id}: {exc}; nothing was changed", "IncidentStoreError"))


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["contained", "released"], default="contained"),
        acknowledge_subnet_impact=dict(type="bool", default=False),
        nacl_name=dict(type="str", default="guardduty-containment"),
        incident_store=dict(type="str"),
        trust_tag_records=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params["nacl_name"]
    valid = validate_ids(module, params["instance_ids"], require_some=True)
    ec2 = module_client(module, "ec2")
    store = module_store(module)
    releasing = params["state"] == "released"
    with failing_on_error(module, "could not describe the instances; nothing was changed"):
        found, missing = describe_instances(ec2, valid)
    ordered = [i for i in valid if i in found]
    subnets_of = {i: instance_subnets(found[i]) for i in ordered}
    all_subnets = {s: v for m in subnets_of.values() for s, v in m.items()}
    acls, subnets, enis = [], [], []
    if all_subnets:
        with failing_on_describe_error(module):
            acls, subnets, enis = describe_subnet_state(ec2, set(all_subnets.values()), set(all_subnets))
    affected = others_in_subnets(enis, set(all_subnets), set(ordered))
    if params["state"] == "contained" and not params["acknowledge_subnet_impact"]:
        listing = "; ".join(f"{s}: {', '.join(v) or 'nothing else'}" for s, v in sorted(affected.items()))
        module.fail_json(msg="refusing to contain whole subnets without acknowledge_subnet_impact=true: every network interface "
                             f"in them loses its network. Nothing was changed. Subnets and what else is in them: {listing}",
                         instances={}, affected=affected, containment_acls={}, errors=[])

    associations = subnet_associations(acls)
    subnet_by_id = {s["SubnetId"]: s for s in subnets}
    existing = containment_acls(acls, name)
    acl_ids = {a["NetworkAclId"] for a in acls}
    owner_of = {s: found[i].get("OwnerId") for i in ordered for s in subnets_of[i]}
    subnet_results = {}   # subnet id -> {"before", "after", "calls", "error", "warning"}
    vpc_acl = {}
    vpc_problem = {}
    if params["state"] == "contained":
        for vpc_id in sorted(set(all_subnets.values())):
            calls, acl_id = plan_containment_acl(vpc_id, existing.get(vpc_id), name)
            try:
                if not module.check_mode and calls and calls[0][0] == "CreateNetworkAcl":
                    answer = call(ec2, "CreateNetworkAcl", **calls[0][1])
                    acl_id = answer["NetworkAcl"]["NetworkAclId"]
                    calls = calls[1:]
                run(ec2, calls, module.check_mode)
            except Exception as exc:
                vpc_problem[vpc_id] = (getattr(exc, "action", "CreateNetworkAcl"), exc)
            vpc_acl[vpc_id] = acl_id
    for subnet_id, vpc_id in sorted(all_subnets.items()):
        if vpc_id in vpc_problem:
            subnet_results[subnet_id] = {"error": vpc_problem[vpc_id], "calls": []}
            continue
        if subnet_id not in associations:
            subnet_results[subnet_id] = {"error": ("DescribeNetworkAcls", PlanProblem(
                "DescribeNetworkAcls", f"subnet {subnet_id} has no network ACL association", "InvalidAssociationID.NotFound")), "calls": []}
            continue
        subnet = subnet_by_id.get(subnet_id) or {"SubnetId": subnet_id}
        owner = subnet.get("OwnerId") or owner_of.get(subnet_id) or ""  # a shared VPC's subnet is its owner's
        try:
            stored = store.section(owner, module.region, subnet_id, "nacl")
        except StoreError as exc:
            subnet_results[subnet_id] = {"error": store_problem(subnet_id, "ReadIncidentStore", exc), "calls": []}
            continue
        record, problem, warning = subnet_record(subnet, stored, releasing, params["trust_tag_records"])
        if problem:
            subnet_results[subnet_id] = {"error": ("CheckNaclRecord", PlanProblem("CheckNaclRecord", problem, "RecordRefused")),
                                         "calls": [], "warning": warning}
            continue
        try:
            if not releasing:
                calls, before, after = plan_contain_subnet(subnet, associations[subnet_id], vpc_acl[vpc_id], name, record)
            else:
                calls, before, after = plan_release_subnet(subnet, associations[subnet_id], acl_ids, name, record)
        except PlanProblem as exc:
            subnet_results[subnet_id] = {"error": (exc.action, exc), "calls": [], "warning": warning}
            continue
        if releasing and record and before == after:
            warning = (f"subnet {subnet_id}: already off the containment network ACL (on {before}), left as it is; "
                       "its record is dropped")
        result = {"before": before, "after": after, "calls": [describe_call(c) for c in calls], "warning": warning}
        original = record or before
        if not releasing and calls and not module.check_mode and not same(original, stored):
            try:  # the store's record first: before the tag and before the association changes
                store.put(owner, module.region, subnet_id, "nacl", original)
            except StoreError as exc:
                subnet_results[subnet_id] = dict(result, after=before, calls=[], error=store_problem(
                    subnet_id, "WriteIncidentStore", exc))
                continue
        try:
            run(ec2, calls, module.check_mode)
        except Exception as exc:
            done = getattr(exc, "done", [])
            result.update(after=before if not done else None, calls=done, error=(getattr(exc, "action", "apply"), exc))
            result["changed"] = bool(done)
        if releasing and stored is not None and record and not result.get("error") and not module.check_mode:
            try:  # restored (or someone else's choice kept): the record has served
                store.drop(owner, module.region, subnet_id, "nacl")
            except StoreError as exc:
                result["warning"] = f"subnet {subnet_id}: released, but its record stays in the incident store: {exc}"
        subnet_results[subnet_id] = result

    results, problems = {}, missing_problems(missing)
    for instance_id in ordered:
        mine = {s: subnet_results[s] for s in sorted(subnets_of[instance_id])}
        result = {"changed": any(r.get("changed", bool(r.get("calls"))) for r in mine.values()),
                  "subnets": {s: {"before": r.get("before"), "after": r.get("after")} for s, r in mine.items()},
                  "calls": [c for r in mine.values() for c in r.get("calls", [])],
                  "warnings": [f"subnet {s}: also cuts off {', '.join(affected[s])}" for s in mine if affected.get(s)] +
                              [r["warning"] for r in mine.values() if r.get("warning")]}
        failed = [(s, r["error"]) for s, r in mine.items() if r.get("error")]
        if failed:
            subnet_id, (action, exc) = failed[0]
            code = exc.code if isinstance(exc, PlanProblem) else error_code(exc)
            problem = InstanceProblem(instance_id, action, f"subnet {subnet_id}: {error_message(exc)}", code)
            problems.append(problem)
            result["error"] = problem.as_dict()
        results[instance_id] = result

    def diff(unused_results):  # the subnets changed, not the instances
        return {"before": {s: r.get("before") for s, r in subnet_results.items() if r.get("calls")},
                "after": {s: r.get("after") for s, r in subnet_results.items() if r.get("calls")}}

    out = batch_output(module, results, problems, diff=diff, affected=affected, containment_acls=vpc_acl)
    if not problems and params["state"] == "contained" and out["changed"]:
        module.warn("network ACL containment applies to whole subnets: " + "; ".join(
            f"{s} also cuts off {', '.join(v)}" for s, v in sorted(affected.items()) if v) if any(affected.values())
            else "network ACL containment applies to whole subnets")
    exit_batch(module, valid, problems, out)


if __name__ == "__main__":
    main()
