#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: guardduty_finding
version_added: 1.0.0
short_description: Archive or unarchive GuardDuty findings and send feedback once remediation is done
description:
  - Reads the findings first (C(GetFindings), 50 ids a call), then archives only those not yet archived
    (O(state=archived)), unarchives only those archived (O(state=active)), and sends O(feedback) only to findings
    whose feedback differs. A rerun with nothing to change makes no write call.
  - B(Only the GuardDuty administrator account can archive findings.) Member accounts cannot archive findings, not
    even their own; GuardDuty refuses with C(BadRequestException), which this module reports as such. Run the task
    with the administrator's credentials, whose detector sees and archives its members' findings in the same Region.
  - GuardDuty does not return the feedback comment, so O(comment) is sent with a feedback change only; a changed comment
    alone does not send the feedback again.
  - Check mode reports the calls that would be made; diff shows each changed finding's archive state and feedback.
options:
  finding_ids:
    description: The findings to update.
    type: list
    elements: str
    required: true
  state:
    description: C(archived) to archive the findings, C(active) to unarchive them; omit to leave the archive state alone.
    type: str
    choices: [archived, active]
  feedback:
    description: Mark the findings as C(USEFUL) or C(NOT_USEFUL).
    type: str
    choices: [USEFUL, NOT_USEFUL]
  comment:
    description: A comment sent with O(feedback).
    type: str
  detector_id:
    description: The GuardDuty detector to use. Defaults to the detector of the caller's account in the Region.
    type: str
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Remediation done, archive the instance's findings and tell GuardDuty they were useful
  cloudsec.guardduty.guardduty_finding:
    finding_ids: "{{ hostvars[inventory_hostname].guardduty_finding_ids }}"
    state: archived
    feedback: USEFUL
    comment: "Instance isolated, imaged and replaced (INC-4211)"
  delegate_to: localhost

- name: A false positive
  cloudsec.guardduty.guardduty_finding:
    finding_ids: [8ac7e1f0b2d94c1c9d5e3f6a7b8c9d0e]
    state: archived
    feedback: NOT_USEFUL
"""

RETURN = r"""
detector_id:
  description: The detector used.
  returned: always
  type: str
findings:
  description: Per finding id, its state before and after.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether the finding was (or in check mode would be) updated.
      type: bool
    before:
      description: C(archived) and C(feedback) as found.
      type: dict
      sample: {"archived": false, "feedback": null}
    after:
      description: C(archived) and C(feedback) once done.
      type: dict
calls:
  description: The write calls made (in check mode, the calls that would be made), with their finding ids.
  returned: always
  type: list
  elements: dict
  sample: [{"action": "ArchiveFindings", "finding_ids": ["8ac7e1f0b2d94c1c9d5e3f6a7b8c9d0e"]}]
missing_finding_ids:
  description: Requested ids GuardDuty did not return (unknown, or not visible to this account); the task fails when any.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import GuardDutyError
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import apply_finding_updates
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import find_detector
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import finding_state
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import get_findings
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import plan_finding_updates
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import state_after_calls


def describe_calls(calls):
    return [{"action": action, "finding_ids": params["FindingIds"],
             **({"feedback": params["Feedback"]} if "Feedback" in params else {})} for action, params in calls]


def main():
    argument_spec = dict(
        finding_ids=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["archived", "active"]),
        feedback=dict(type="str", choices=["USEFUL", "NOT_USEFUL"]),
        comment=dict(type="str"),
        detector_id=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_one_of=[["state", "feedback"]], required_by={"comment": "feedback"})
    params = module.params
    wanted = list(dict.fromkeys(params["finding_ids"]))
    client = module_client(module, "guardduty")
    try:
        detector_id = find_detector(client, params["detector_id"])
        current = {f["Id"]: finding_state(f) for f in get_findings(client, detector_id, wanted)}
    except GuardDutyError as exc:
        module.fail_json(msg=f"{exc}; nothing was changed", error=exc.as_dict())
    missing = [i for i in wanted if i not in current]
    if missing:
        module.fail_json(msg="findings not found (unknown, or not visible to this account): " + ", ".join(missing) +
                         "; nothing was changed", missing_finding_ids=missing, detector_id=detector_id,
                         findings={}, calls=[])
    archived = {"archived": True, "active": False}.get(params["state"])
    calls, after = plan_finding_updates(wanted, current, archived, params["feedback"], params["comment"])
    changed_ids = {i for unused_action, p in calls for i in p["FindingIds"]}
    results = {i: {"changed": i in changed_ids, "before": current[i], "after": after[i]} for i in wanted}
    out = {"detector_id": detector_id, "findings": results, "missing_finding_ids": [],
           "calls": describe_calls(calls), "changed": bool(calls)}
    if module._diff:
        out["diff"] = {"before": {i: current[i] for i in sorted(changed_ids)},
                       "after": {i: after[i] for i in sorted(changed_ids)}}
    if calls and not module.check_mode:
        try:
            apply_finding_updates(client, detector_id, calls)
        except GuardDutyError as exc:
            done = getattr(exc, "done", [])
            done_ids = {i for unused_action, p in done for i in p["FindingIds"]}
            reached = state_after_calls(current, done, wanted)
            for finding_id, result in results.items():
                result.update(changed=finding_id in done_ids, after=reached[finding_id])
            out.update(changed=bool(done), calls=describe_calls(done), error=exc.as_dict())
            out.pop("diff", None)
            module.fail_json(msg=str(exc), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
