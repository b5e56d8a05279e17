#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: securityhub_finding
version_added: 1.0.0
short_description: Set the Security Hub workflow status and a note on the GuardDuty findings of contained instances
description:
  - GuardDuty sends every finding to AWS Security Hub in ASFF, in the same account and Region. This module finds, for
    each instance, the Security Hub copy of its GuardDuty findings and sets their workflow status (O(workflow_status)) and
    a note naming the incident, what was done and where the report is, so that responders who triage in Security Hub
    see the outcome where they work.
  - A Security Hub finding is identified by its C(ProductArn), C(arn:PARTITION:securityhub:REGION::product/aws/guardduty),
    and its C(Id), the GuardDuty finding's ARN C(arn:PARTITION:guardduty:REGION:ACCOUNT:detector/DETECTOR/finding/ID).
    The partition comes from the caller's identity (C(GetCallerIdentity)).
  - Reads the findings first (C(GetFindings), 20 ids a call), then updates only those whose status or note differs,
    with C(BatchUpdateFindings), 100 findings a call. A rerun with nothing to change makes no write call.
  - A finding Security Hub does not hold (Security Hub not enabled in that account and Region, the GuardDuty
    integration turned off, or the finding not sent yet; GuardDuty sends new findings within minutes) fails its
    instance, naming the finding; the instance's other findings are still updated. A finding Security Hub does not
    update (C(UnprocessedFindings)) fails its instance with Security Hub's error code.
  - Check mode reports the calls that would be made; diff shows each changed instance's findings before and after.
options:
  findings:
    description:
      - Per instance id, its GuardDuty finding ids (the inventory's C(guardduty_finding_ids)) or finding ARNs.
      - An instance with no finding is left alone.
    type: dict
    required: true
  workflow_status:
    description:
      - C(NOTIFIED) when containment starts, C(RESOLVED) once eradicated or released as a false positive, C(SUPPRESSED)
        when the findings are to be hidden, C(NEW) to reopen.
    type: str
    choices: [NEW, NOTIFIED, RESOLVED, SUPPRESSED]
    required: true
  note:
    description:
      - What was done. The note written is C(Incident INCIDENT:) O(note) C(Report:) O(report_location); it may be at most
        512 characters (Security Hub's limit), else the task fails before any change.
      - Omit to change the workflow status only.
    type: str
  incident_id:
    description: The incident, named at the start of the note.
    type: str
  report_location:
    description: Where the incident report is, named at the end of the note.
    type: str
  note_updated_by:
    description: The note's C(UpdatedBy).
    type: str
    default: cloudsec.guardduty
  detector_id:
    description:
      - The GuardDuty detector that reported the findings (the inventory's C(guardduty_detector_id)), needed to build
        the finding ARN from a finding id. Defaults to the detector of O(account_id) in the Region (C(ListDetectors)).
    type: str
  account_id:
    description: The account the findings belong to. Defaults to the caller's account.
    type: str
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Containment started, tell Security Hub
  cloudsec.guardduty.securityhub_finding:
    findings:
      i-0123456789abcdef0: [8ac7e1f0b2d94c1c9d5e3f6a7b8c9d0e]
    workflow_status: NOTIFIED
    incident_id: INC-42
    note: contained by cloudsec.guardduty.isolate (network isolated, evidence kept)
    report_location: ~/guardduty-reports/INC-42/
    detector_id: 12abc34d567e8fa901bc2d34e56789f0

- name: A false positive, released
  cloudsec.guardduty.securityhub_finding:
    findings: "{{ {instance_id: guardduty_finding_ids} }}"
    workflow_status: RESOLVED
    incident_id: INC-42
    note: released as a false positive
"""

RETURN = r"""
product_arn:
  description: The ProductArn of GuardDuty findings in this Region and partition.
  returned: always
  type: str
  sample: arn:aws:securityhub:us-east-1::product/aws/guardduty
note:
  description: The note written (null when none).
  returned: always
  type: str
instances:
  description: Per instance id, its findings' workflow status and note before and after, keyed by GuardDuty finding id.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether any of its findings was (or in check mode would be) updated.
      type: bool
    before:
      description: Per finding, C(workflow_status), C(note), C(note_updated_by) and C(record_state) as found.
      type: dict
    after:
      description: The same once done; a finding Security Hub did not update keeps its values.
      type: dict
    findings:
      description: Per GuardDuty finding id, its Security Hub Id.
      type: dict
    calls:
      description: The BatchUpdateFindings calls that carried its findings (in check mode, the calls that would be made).
      type: list
      elements: str
    error:
      description: Why this instance failed; names the instance, the action, the findings and the error code.
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
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import failing_on_error, finish, validate_ids
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import find_detector
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import InstanceProblem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.securityhub import (
    DETECTOR_ID, FINDING_ARN, apply_calls, asff_id, caller_arn, describe_call, get_findings, guardduty_product_arn,
    note_text, partition_of, plan_updates, split_finding_refs)


def validate(module, params):
    """({instance_id: [finding refs]}, note): fails the module, having changed nothing, on bad input."""
    findings = params["findings"] or {}
    valid = validate_ids(module, list(findings))
    refs, errors = {}, []
    for instance_id in valid:
        value = findings[instance_id]
        good, bad = split_finding_refs(value if isinstance(value, list) else [value])
        refs[instance_id] = good
        errors += [InstanceProblem(instance_id, "validate", f"{ref}: {reason}").as_dict() for ref, reason in bad.items()]
    if params["detector_id"] and not DETECTOR_ID.match(params["detector_id"]):
        errors.append({"instance_id": None, "action": "validate", "code": None,
                       "message": f"malformed detector_id {params['detector_id']!r}"})
    try:
        note = note_text(params["note"], params["incident_id"], params["report_location"])
    except ValueError as exc:
        note = None
        errors.append({"instance_id": None, "action": "validate", "code": None, "message": str(exc)})
    if errors:
        module.fail_json(msg="invalid findings or note; nothing was changed: " + "; ".join(e["message"] for e in errors),
                         instances={}, errors=errors)
    return refs, note


def main():
    argument_spec = dict(
        findings=dict(type="dict", required=True),
        workflow_status=dict(type="str", required=True, choices=["NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"]),
        note=dict(type="str"),
        incident_id=dict(type="str"),
        report_location=dict(type="str"),
        note_updated_by=dict(type="str", default="cloudsec.guardduty"),
        detector_id=dict(type="str"),
        account_id=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    refs, note = validate(module, params)
    region = module.region
    with failing_on_error(module, "could not read the caller's identity; nothing was changed"):
        identity = caller_arn(module_client(module, "sts"))
    partition = partition_of(identity["Arn"])
    account = params["account_id"] or identity["Account"]
    detector_id = params["detector_id"]
    if not detector_id and any(not FINDING_ARN.match(r) for rs in refs.values() for r in rs):
        with failing_on_error(module, "could not find the GuardDuty detector (set detector_id); nothing was changed"):
            detector_id = find_detector(module_client(module, "guardduty"))
    product_arn = guardduty_product_arn(partition, region)
    wanted = {i: {r: asff_id(r, partition, region, account, detector_id) for r in rs} for i, rs in refs.items()}
    owner = {hub_id: i for i, by_ref in wanted.items() for hub_id in by_ref.values()}
    client = module_client(module, "securityhub")
    with failing_on_error(module, "could not read the findings from Security Hub; nothing was changed"):
        found = get_findings(client, product_arn, list(owner))

    calls, results, missing = plan_updates(wanted, found, product_arn, params["workflow_status"], note,
                                           params["note_updated_by"])
    for instance_id, result in results.items():
        hub_ids = set(result["findings"].values())
        result["calls"] = [describe_call(c) for c in calls if hub_ids & {f["Id"] for f in c[1]["FindingIdentifiers"]}]
    failures = {} if module.check_mode else apply_calls(client, calls, owner)

    problems = []
    for instance_id in refs:
        result = results[instance_id]
        by_hub_id = {hub_id: key for key, hub_id in result["findings"].items()}
        messages, code = [], None
        if missing.get(instance_id):
            code = "FindingNotFound"
            messages.append("Security Hub holds no finding " + ", ".join(missing[instance_id]) + " (Security Hub not "
                            f"enabled in {account}/{region}, the GuardDuty integration off, or not sent yet)")
        for hub_id, action, failed_code, message in failures.get(instance_id, []):
            key = by_hub_id[hub_id]
            result["after"][key] = result["before"][key]  # not updated
            code = code or failed_code
            messages.append(f"{action} {key}: {message} ({failed_code})")
        result["changed"] = any(result["before"][k] != result["after"][k] for k in result["before"])
        if messages:
            action = "BatchUpdateFindings" if failures.get(instance_id) else "GetFindings"
            problems.append(InstanceProblem(instance_id, action, "; ".join(messages), code))
    finish(module, list(refs), results, problems, product_arn=product_arn, note=note)


if __name__ == "__main__":
    main()
