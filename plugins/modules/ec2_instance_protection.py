#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_instance_protection
version_added: 1.0.0
short_description: Protect potentially compromised EC2 instances and their volumes from deletion, reversibly
description:
  - O(state=protected) turns termination protection on (C(DisableApiTermination)), stop protection on when
    O(stop_protection=true) (C(DisableApiStop)), sets the OS-initiated shutdown behaviour to C(stop), and sets
    C(DeleteOnTermination=false) on every EBS volume, so that neither an API call nor a shutdown from inside the
    instance destroys the evidence.
  - Before changing anything, the values found are written to the instance tag C(guardduty:protection-record)
    (compact JSON; continued in C(guardduty:protection-record:2), ... if longer than a tag value). A rerun keeps
    the first record, adding only volumes attached since with C(DeleteOnTermination=true).
  - O(state=released) restores exactly the recorded values, then removes the record. An instance without a
    record is left as it is.
  - AWS does not allow termination protection on Spot Instances, nor stop protection on Spot or instance store-backed
    instances (C(InstanceLifecycle), C(RootDeviceType) from DescribeInstances); those are not attempted, and RV(instances.skipped)
    says why; the volumes and the shutdown behaviour are still protected.
  - The module is idempotent, so when nothing differs no write call is made. Works on a batch; a failure on one instance names
    the instance, the AWS action and error code, and never hides the others' results.
  - The record is kept in the incident store (O(incident_store)), written before any change; the tag is only the hint
    to resume. O(state=released) refuses by name, changing nothing for that instance, a tag that differs from the
    store's record.
options:
  instance_ids:
    description: The instances to protect or release.
    type: list
    elements: str
    required: true
  state:
    description: C(protected) to protect, C(released) to restore the recorded values.
    type: str
    choices: [protected, released]
    default: protected
  stop_protection:
    description:
      - Also turn stop protection on (C(DisableApiStop)). Off by default, because responders often stop an
        instance to preserve its memory-free state or to detach its volumes.
      - Only with O(state=protected).
    type: bool
    default: false
  trust_tag_records:
    description:
      - With O(state=released), apply a C(guardduty:protection-record) tag record the incident store does not know
        (one written by an earlier version, which kept records in tags only). Check the tag first, as anyone with
        C(ec2:CreateTags) in the member account can write it.
    type: bool
    default: false
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - cloudsec.guardduty.incident_store
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Keep the compromised instances and their disks from being deleted
  cloudsec.guardduty.ec2_instance_protection:
    instance_ids: "{{ compromised_instance_ids }}"
    state: protected

- name: After the investigation, put back what was there before
  cloudsec.guardduty.ec2_instance_protection:
    instance_ids: "{{ compromised_instance_ids }}"
    state: released
"""

RETURN = r"""
instances:
  description: Per instance id, the values before and after, the record and the calls made (or planned in check mode).
  returned: always
  type: dict
  contains:
    changed:
      description: Whether anything was (or in check mode would be) written for this instance.
      type: bool
    before:
      description: The protection values found.
      type: dict
      sample: {"termination_protection": false, "stop_protection": false, "shutdown_behavior": "stop",
               "delete_on_termination": {"/dev/xvda": true, "/dev/sdf": true}}
    after:
      description: The protection values once done.
      type: dict
    record:
      description: The values recorded before the first protection (what O(state=released) restores); null if none.
      type: dict
      sample: {"termination_protection": false, "stop_protection": false, "shutdown_behavior": "stop",
               "delete_on_termination": ["/dev/sdf", "/dev/xvda"]}
    calls:
      description: The write calls made, in order (in check mode, the calls that would be made).
      type: list
      elements: str
    skipped:
      description:
        - The protections AWS does not allow on this instance, with why, not attempted (Spot Instances take neither
          termination nor stop protection; instance store-backed ones no stop protection). Empty otherwise.
      type: dict
      sample: {"termination_protection": "skipped: AWS does not allow termination protection on Spot Instances; the instance
               can still be terminated through the API"}
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

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    apply_with_partial_result, failing_on_error, finish, missing_problems, run_per_instance, validate_ids)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import (
    InstanceProblem, describe_instances, problem_from_error)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident_store import (
    StoreError, module_store, weigh_instance_record)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_instance_protection import (
    RECORD_TAG, apply_calls, current_protection, describe_call, describe_protection_attributes, plan_protect,
    plan_release, record_data, record_from_data, record_tag_keys, unsupported_protection)


def work_on(client, store, instance, params, check_mode, warn):
    """The result for one instance; raises InstanceProblem (with what was done so far) on failure."""
    instance_id = instance["InstanceId"]
    state, region, owner = params["state"], client.meta.region_name, instance.get("OwnerId") or ""
    try:
        attributes = describe_protection_attributes(client, instance_id)
    except Exception as exc:
        raise problem_from_error(instance_id, "DescribeInstanceAttribute", exc) from None
    current = current_protection(instance, attributes)
    devices = list(current["delete_on_termination"])
    try:
        data, stored, warning, problem = weigh_instance_record(store, region, instance, "protection", RECORD_TAG,
                                                               state == "released", params["trust_tag_records"])
        record = record_from_data(data, devices) if data is not None else None
    except StoreError as exc:
        raise InstanceProblem(instance_id, "ReadIncidentStore", f"{exc}; nothing was changed", "IncidentStoreError") from None
    except (KeyError, TypeError) as exc:
        raise InstanceProblem(instance_id, "ReadProtectionRecord", f"unreadable protection record: {exc}",
                              "InvalidProtectionRecord") from None
    if problem:
        raise InstanceProblem(instance_id, "CheckProtectionRecord", problem, "RecordRefused")
    if warning:
        warn(warning)
    tags = instance.get("Tags") or []
    skipped = {}
    if state == "protected":
        stop_protection = params["stop_protection"]
        unsupported = unsupported_protection(instance)
        skipped = {k: v for k, v in unsupported.items() if k != "stop_protection" or stop_protection}
        calls, record_after, after = plan_protect(instance_id, current, record, stop_protection, tags, unsupported)
    else:
        calls, after = plan_release(instance_id, current, record, record_tag_keys(tags))
        record_after = None
    result = {"changed": bool(calls), "before": current, "after": after, "record": record_after if state == "protected" else record,
              "calls": [describe_call(c) for c in calls], "skipped": skipped}
    if state == "protected" and calls and not check_mode and stored != record_data(record_after):
        # The store's record first: before the tag and before any attribute changes.
        try:
            store.put(owner, region, instance_id, "protection", record_data(record_after))
        except StoreError as exc:
            raise InstanceProblem(instance_id, "WriteIncidentStore", f"{exc}; nothing was changed", "IncidentStoreError") from None
    result = apply_with_partial_result(instance_id, result, calls, lambda c: apply_calls(client, c), check_mode,
                                       "ModifyInstanceAttribute")
    if state == "released" and stored is not None and not check_mode:
        try:
            store.drop(owner, region, instance_id, "protection")
        except StoreError as exc:
            warn(f"{instance_id}: released, but its record stays in the incident store: {exc}")
    return result


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["protected", "released"], default="protected"),
        stop_protection=dict(type="bool", default=False),
        incident_store=dict(type="str"),
        trust_tag_records=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    valid = validate_ids(module, params["instance_ids"])
    client = module_client(module, "ec2")
    store = module_store(module)
    with failing_on_error(module, "could not describe the instances; nothing was changed"):
        found, missing = describe_instances(client, valid)

    results, problems = {}, missing_problems(missing)
    run_per_instance([i for i in valid if i in found], lambda i: work_on(
        client, store, found[i], params, module.check_mode, module.warn), results, problems)
    finish(module, valid, results, problems)


if __name__ == "__main__":
    main()
