#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: guardduty_support_case
version_added: 1.0.0
short_description: Open an AWS Support case for a GuardDuty incident, once, and point to AWS re:Post
description:
  - Steps 4 and 5 of GuardDuty's remediation procedure. Opens an AWS Support case (C(CreateCase)) with the incident
    summary, unless the account already has one for the incident (any status). The case subject starts with
    C([<incident_id>]), and the account's cases are listed with C(DescribeCases) to find it.
  - The case body is the given summary, the instance ids and the finding types; AWS access key ids, secret keys,
    session tokens and passwords written as C(key=value) are removed from it.
  - The AWS Support API needs a Business, Enterprise On-Ramp or Enterprise Support plan. Without one AWS answers
    C(SubscriptionRequiredException); the module then says so (C(support_plan=false), a warning) and does not fail,
    so the incident report still gets the re:Post pointer, unless O(fail_without_plan=true).
  - Always returns C(re_post), the text and link for AWS re:Post (step 4), for the report.
  - The Support API lives in C(us-east-1); the module uses that region unless O(region) is given.
options:
  incident_id:
    description:
      - The incident; it prefixes the case subject and is how a rerun finds the case.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters; anything else is refused before any AWS call.
    type: str
    required: true
  subject:
    description: The case subject, after C([<incident_id>]).
    type: str
    default: "Amazon GuardDuty: potentially compromised Amazon EC2 instances"
  summary:
    description: The incident summary for AWS Support (what happened, what was done). Secrets are removed.
    type: str
    required: true
  instance_ids:
    description: The instances concerned, listed in the case body.
    type: list
    elements: str
    default: []
  finding_types:
    description: The GuardDuty finding types, listed in the case body.
    type: list
    elements: str
    default: []
  severity_code:
    description:
      - The case severity. Which ones are available depends on the support plan (C(critical) needs Enterprise).
    type: str
    choices: [low, normal, high, urgent, critical]
    default: high
  service_code:
    description:
      - The AWS Support service code (C(DescribeServices)), for example C(amazon-elastic-compute-cloud-linux).
        Left out of the request when not given.
    type: str
  category_code:
    description: The category code of O(service_code) (C(DescribeServices)). Left out of the request when not given.
    type: str
  cc_email_addresses:
    description: Addresses AWS Support copies on the case correspondence.
    type: list
    elements: str
  language:
    description: The case language, C(en) or C(ja) (and the others AWS Support lists).
    type: str
    default: en
  fail_without_plan:
    description: Fail, instead of warning, when the account has no support plan that allows the Support API.
    type: bool
    default: false
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Ask AWS Support for help with the incident (once)
  cloudsec.guardduty.guardduty_support_case:
    incident_id: INC-0042
    summary: "{{ incident_summary }}"
    instance_ids: "{{ compromised_instance_ids }}"
    finding_types: ["Backdoor:EC2/C&CActivity.B"]
    service_code: amazon-elastic-compute-cloud-linux
  register: support

- name: Report
  ansible.builtin.debug:
    msg: "{{ support.case.displayId | default(support.message) }} - {{ support.re_post.text }}"
"""

RETURN = r"""
case:
  description: The incident's case (found or opened); null when none could be opened. In check mode, the case that would be opened has no C(caseId).
  returned: always
  type: dict
  sample: {"caseId": "case-123456789012-muen-2026-0a1b2c3d4e5f6a7b", "displayId": "1234567890", "subject": "[INC-0042] Amazon GuardDuty: ...",
           "status": "opened", "serviceCode": "amazon-elastic-compute-cloud-linux", "categoryCode": "other", "severityCode": "high",
           "timeCreated": "2026-11-28T05:10:00.000Z"}
created:
  description: Whether this run opened the case (or would in check mode).
  returned: always
  type: bool
support_plan:
  description: False when AWS answered SubscriptionRequiredException (no plan allowing the Support API).
  returned: always
  type: bool
message:
  description: What happened, in a sentence for the report.
  returned: always
  type: str
re_post:
  description: The AWS re:Post link and text for step 4 of the procedure.
  returned: always
  type: dict
  contains:
    url:
      description: AWS re:Post.
      type: str
    text:
      description: A sentence for the incident report.
      type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty_support_case as support


def no_plan(module, out):
    out.update(support_plan=False, message=support.NO_PLAN)
    if module.params["fail_without_plan"]:
        module.fail_json(msg=support.NO_PLAN, code="SubscriptionRequiredException", **out)
    module.warn(support.NO_PLAN)
    module.exit_json(**out)


def main():
    argument_spec = dict(
        incident_id=dict(type="str", required=True),
        subject=dict(type="str", default="Amazon GuardDuty: potentially compromised Amazon EC2 instances"),
        summary=dict(type="str", required=True),
        instance_ids=dict(type="list", elements="str", default=[]),
        finding_types=dict(type="list", elements="str", default=[]),
        severity_code=dict(type="str", choices=["low", "normal", "high", "urgent", "critical"], default="high"),
        service_code=dict(type="str"),
        category_code=dict(type="str"),
        cc_email_addresses=dict(type="list", elements="str"),
        language=dict(type="str", default="en"),
        fail_without_plan=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    problem = guards.incident_id_problem(params["incident_id"])
    if problem:
        module.fail_json(msg=f"{problem}; no case was opened")
    client = module_client(module, "support", region=params.get("region") or support.SUPPORT_REGION)
    out = {"changed": False, "created": False, "case": None, "support_plan": True, "re_post": support.RE_POST}
    try:
        existing = support.find_case(support.list_cases(client, params["language"]), params["incident_id"])
    except is_boto3_error_code("SubscriptionRequiredException"):
        no_plan(module, out)
    except Exception as exc:  # pylint: disable=duplicate-except
        module.fail_json_aws(exc, msg=f"{params['incident_id']}: DescribeCases failed; no case was opened", **out)
    if existing:
        out.update(case=support.case_view(existing),
                   message=f"{params['incident_id']}: AWS Support case {existing.get('displayId') or existing['caseId']} already open")
        module.exit_json(**out)

    request = {"subject": support.case_subject(params["incident_id"], params["subject"]),
               "communicationBody": support.case_body(params["incident_id"], params["summary"], params["instance_ids"],
                                                      params["finding_types"]),
               "severityCode": params["severity_code"], "language": params["language"], "issueType": "technical"}
    for option, key in (("service_code", "serviceCode"), ("category_code", "categoryCode"),
                        ("cc_email_addresses", "ccEmailAddresses")):
        if params[option]:
            request[key] = params[option]
    case = {"caseId": None, "displayId": None, "subject": request["subject"], "status": None,
            "serviceCode": request.get("serviceCode"), "categoryCode": request.get("categoryCode"),
            "severityCode": request["severityCode"], "timeCreated": None}
    out.update(changed=True, created=True, case=case)
    if module._diff:
        out["diff"] = {"before": {}, "after": {"subject": request["subject"], "body": request["communicationBody"]}}
    if module.check_mode:
        out["message"] = f"{params['incident_id']}: an AWS Support case would be opened"
        module.exit_json(**out)
    try:
        case_id = support.create_case(client, **request)["caseId"]
    except is_boto3_error_code("SubscriptionRequiredException"):
        out.update(changed=False, created=False, case=None)
        no_plan(module, out)
    except Exception as exc:  # pylint: disable=duplicate-except
        out.update(changed=False, created=False, case=None)
        module.fail_json_aws(exc, msg=f"{params['incident_id']}: CreateCase failed; no case was opened", **out)
    try:
        described = support.describe_case(client, case_id, params["language"])
        out["case"] = support.case_view(described) if described else dict(case, caseId=case_id)
    except Exception:  # the case is open; its display id is only a nicety
        out["case"] = dict(case, caseId=case_id)
    out["message"] = f"{params['incident_id']}: AWS Support case {out['case'].get('displayId') or case_id} opened"
    module.exit_json(**out)


if __name__ == "__main__":
    main()
