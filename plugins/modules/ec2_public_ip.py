#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_public_ip
version_added: 1.0.0
short_description: Take the Elastic IPs off compromised EC2 instances, reversibly, and report the public addresses left
description:
  - "O(state=disassociated): disassociate every Elastic IP from every network interface (ENI) of each instance,
    primary and secondary, with C(DisassociateAddress) by association id. The Elastic IPs stay allocated to the
    account, so nobody else can take them."
  - Before any change, each association (allocation id, ENI, private IP) is written to the instance tag
    C(guardduty:eip-record) (compact JSON, continued in C(guardduty:eip-record:2), ... past 256 characters), and returned.
  - An auto-assigned public IPv4 address has no allocation; it is reported per ENI in RV(instances.remaining_exposure).
    The isolation security group (M(cloudsec.guardduty.ec2_isolation)) already blocks traffic to it. AWS gives the
    instance a new auto-assigned address when the Elastic IP of its primary ENI is removed and it has a single ENI
    (EC2 User Guide, Public IPv4 addresses), so the exposure is read again after the change.
  - With O(remove_auto_assigned=true), the auto-assigned public IPv4 address of the primary ENI (present, or given
    by AWS once the Elastic IP is gone) is removed with C(ModifyNetworkInterfaceAttribute)
    C(AssociatePublicIpAddress=false), which applies to the primary network interface only. O(state=associated)
    does not turn it back on (the Elastic IP comes back; an auto-assigned address would be a new one anyway).
  - "O(state=associated): associate each recorded Elastic IP with the recorded ENI and private IP, with
    C(AllowReassociation=false): if the address was associated elsewhere meanwhile, it is not taken back and the
    instance fails with C(Resource.AlreadyAssociated), naming where it is. The record is deleted once all are back."
  - The batch's addresses are described in one C(DescribeAddresses) call. Idempotent; supports check mode and diff.
    Every instance gets its own result; a failure names the instance, the AWS action and its error code.
  - The record is kept in the incident store (O(incident_store)), written before any change; the tag is only the hint
    to resume. O(state=associated) refuses by name, changing nothing for that instance, a tag that differs from the
    store's record.
options:
  instance_ids:
    description: The instances, in the module's account and region.
    type: list
    elements: str
    required: true
  state:
    description: V(disassociated) removes the Elastic IPs; V(associated) puts back the recorded ones.
    type: str
    choices: [disassociated, associated]
    default: disassociated
  remove_auto_assigned:
    description:
      - With O(state=disassociated), also remove the auto-assigned public IPv4 address of each instance's primary
        network interface (C(ModifyNetworkInterfaceAttribute) with C(AssociatePublicIpAddress=false)), including
        the one AWS assigns when the Elastic IP is disassociated.
    type: bool
    default: false
  trust_tag_records:
    description:
      - With O(state=associated), apply a C(guardduty:eip-record) tag record the incident store does not know (one
        written by an earlier version, which kept records in tags only). Check the tag first, as anyone with
        C(ec2:CreateTags) in the member account can write it.
    type: bool
    default: false
author:
  - cloudsec.guardduty contributors (@cloudsec)
notes:
  - "IAM actions: ec2:DescribeInstances, ec2:DescribeAddresses, ec2:DisassociateAddress, ec2:AssociateAddress,
    ec2:CreateTags, ec2:DeleteTags, ec2:ModifyNetworkInterfaceAttribute (O(remove_auto_assigned=true)) (policy:
    docs/iam/containment_paths.json)."
extends_documentation_fragment:
  - cloudsec.guardduty.incident_store
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Remove the public entry points of the compromised instances
  cloudsec.guardduty.ec2_public_ip:
    instance_ids: "{{ compromised_instance_ids }}"
  register: public_ip

- name: Show what is still reachable from the internet
  ansible.builtin.debug:
    msg: "{{ public_ip.instances | dict2items | map(attribute='value.remaining_exposure') | flatten }}"

- name: Give the Elastic IPs back once the instances are clean
  cloudsec.guardduty.ec2_public_ip:
    instance_ids: "{{ compromised_instance_ids }}"
    state: associated
"""

RETURN = r"""
instances:
  description: Per instance id, the public addresses found and what was done (or planned, in check mode).
  returned: always
  type: dict
  contains:
    changed:
      description: Whether anything was (or in check mode would be) written for this instance.
      type: bool
    before:
      description: The Elastic IPs associated with the instance's ENIs.
      type: list
      elements: dict
      sample: [{"allocation_id": "eipalloc-0123", "association_id": "eipassoc-0123", "public_ip": "198.51.100.7",
                "network_interface_id": "eni-0123", "private_ip": "10.0.1.10"}]
    after:
      description: The Elastic IPs associated once done (predicted).
      type: list
      elements: dict
    record:
      description: The recorded associations, C([allocation id, ENI, private IP]); null if none.
      type: list
      elements: list
    remaining_exposure:
      description: Auto-assigned public IPv4 addresses still on the instance, one sentence per address and ENI.
      type: list
      elements: str
    calls:
      description: The write calls made, in order (in check mode, the calls that would be made).
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
    apply_with_partial_result, batch_output, exit_batch, failing_on_describe_error, failing_on_error, missing_problems,
    run_per_instance, validate_ids)
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import PlanProblem, module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident_store import (
    StoreError, module_store, weigh_instance_record)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import InstanceProblem, describe_instances
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_public_ip import (
    RECORD_TAG, apply_calls, describe_addresses_of, describe_allocations, describe_call, exposure_notes, network_interfaces,
    plan_disassociate, plan_reassociate, plan_remove_auto_assigned, primary_eni, public_addresses)


def record_of(store, region, instance, state, trust_tag_records):
    """(record, store's record, warning): the incident store's record, the tag only a hint; InstanceProblem when
    release must refuse the instance."""
    instance_id = instance["InstanceId"]
    try:
        record, stored, warning, problem = weigh_instance_record(store, region, instance, "eip", RECORD_TAG,
                                                                 state == "associated", trust_tag_records)
    except StoreError as exc:
        raise InstanceProblem(instance_id, "ReadIncidentStore", f"{exc}; nothing was changed", "IncidentStoreError") from None
    if problem:
        raise InstanceProblem(instance_id, "CheckEipRecord", problem, "RecordRefused")
    return record, stored, warning


def work_on(clients, store, instance, addresses, allocations, params, check_mode, warn):
    instance_id = instance["InstanceId"]
    state = params["state"]
    region = clients["ec2"].meta.region_name
    tags = instance.get("Tags") or []
    keys = records.keys(tags, RECORD_TAG)
    record, stored, warning = record_of(store, region, instance, state, params["trust_tag_records"])
    if warning:
        warn(warning)
    elastic, auto = public_addresses(instance, addresses)
    shown_before = [dict(a) for a in elastic]
    try:
        if state == "disassociated":
            calls, shown, after = plan_disassociate(instance_id, elastic, record, tags)
            if params["remove_auto_assigned"]:
                calls += plan_remove_auto_assigned(instance, elastic, auto)
        else:
            enis = {n["NetworkInterfaceId"] for n in network_interfaces(instance)}
            calls, after = plan_reassociate(instance_id, record, keys, allocations, enis)
            shown = record
    except PlanProblem as exc:
        raise InstanceProblem(instance_id, exc.action, str(exc), exc.code) from None
    result = {"changed": bool(calls), "before": shown_before, "after": after, "record": shown,
              "remaining_exposure": exposure_notes(auto, primary_eni(instance)), "calls": [describe_call(c) for c in calls]}
    owner = instance.get("OwnerId") or ""
    if state == "disassociated" and calls and shown and not check_mode and not records.same(shown, stored):
        # The store's record first: before the tag and before any address moves.
        try:
            store.put(owner, region, instance_id, "eip", shown)
        except StoreError as exc:
            raise InstanceProblem(instance_id, "WriteIncidentStore", f"{exc}; nothing was changed", "IncidentStoreError") from None
    result = apply_with_partial_result(instance_id, result, calls, lambda c: apply_calls(clients["ec2"], c), check_mode)
    if state == "associated" and stored is not None and not check_mode:
        try:
            store.drop(owner, region, instance_id, "eip")
        except StoreError as exc:
            warn(f"{instance_id}: associated again, but its record stays in the incident store: {exc}")
    return result


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["disassociated", "associated"], default="disassociated"),
        remove_auto_assigned=dict(type="bool", default=False),
        incident_store=dict(type="str"),
        trust_tag_records=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    valid = validate_ids(module, params["instance_ids"], require_some=True)
    clients = {"ec2": module_client(module, "ec2")}
    ec2 = clients["ec2"]
    store = module_store(module)
    with failing_on_error(module, "could not describe the instances; nothing was changed"):
        found, missing = describe_instances(ec2, valid)
    ordered = [i for i in valid if i in found]
    with failing_on_describe_error(module):
        eni_ids = sorted({n["NetworkInterfaceId"] for i in ordered for n in network_interfaces(found[i])})
        addresses = describe_addresses_of(ec2, eni_ids)
        allocations = {}
        if params["state"] == "associated":
            recorded = set()
            for instance_id in ordered:
                try:
                    recorded.update(entry[0] for entry in record_of(store, module.region, found[instance_id], "associated",
                                                                    params["trust_tag_records"])[0] or [])
                except InstanceProblem:
                    continue  # refused again, by name, when its turn comes
            allocations = describe_allocations(ec2, recorded)

    results, problems = {}, missing_problems(missing)
    run_per_instance(ordered, lambda i: work_on(clients, store, found[i], addresses, allocations, params, module.check_mode,
                                                module.warn), results, problems)
    changed_ids = [i for i, r in results.items() if r["changed"] and not module.check_mode]
    if changed_ids:
        # Removing an Elastic IP can give the primary ENI a new auto-assigned address: read the exposure again.
        try:
            now, _gone = describe_instances(ec2, changed_ids)
            for instance_id, instance in now.items():
                results[instance_id]["remaining_exposure"] = exposure_notes(public_addresses(instance, [])[1], primary_eni(instance))
        except Exception as exc:
            module.warn(f"could not read the remaining public addresses again: {exc}")
    exit_batch(module, valid, problems, batch_output(module, results, problems))


if __name__ == "__main__":
    main()
