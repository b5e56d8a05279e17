# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Security Hub custom action ("Contain with Ansible"): the instances an event's findings name.

Pure, and apart from module_utils/securityhub.py (the BatchUpdateFindings calls), because the controller loads it:
the cloudsec.guardduty.securityhub_instances filter uses it, and ansible-core loads every filter file of a collection
the first time any of its filters is used (Jinja2Loader walks plugins/filter/). Importing the AWS layer from here
put boto3 into every playbook's controller, 0.13-0.18 s of CPU before its first task (docs/benchmarks.md).
"""

import json
import re

FINDING_ARN = re.compile(r"^arn:(aws[a-z-]*):guardduty:([a-z0-9-]+):(\d{12}):detector/([0-9A-Za-z]{1,300})/finding/"
                         r"([0-9A-Za-z]{1,300})$")
INSTANCE_ARN = re.compile(r"^arn:aws[a-z-]*:ec2:([a-z]{2}(?:-[a-z]+)+-[0-9]):(\d{12}):instance/(i-[0-9a-f]{8,17})$")


def instances_from_findings(findings):
    """The EC2 instances a Security Hub custom action event's findings name, one entry per instance:
    {instance_id, region, account_id, finding_ids, detector_id}, in the order first named.

    Everything in an event is data from outside: only a resource of type AwsEc2Instance whose Id is a
    well-formed instance ARN counts; the GuardDuty finding id and detector come from a GuardDuty finding
    ARN (other products' findings give the instance only). `findings` may be the JSON text of the list."""
    if isinstance(findings, str):
        findings = json.loads(findings)
    out = {}
    for finding in findings or []:
        if not isinstance(finding, dict):
            continue
        match = FINDING_ARN.match(str(finding.get("Id", "")))
        for resource in finding.get("Resources") or []:
            if not isinstance(resource, dict) or resource.get("Type") != "AwsEc2Instance":
                continue
            arn = INSTANCE_ARN.match(str(resource.get("Id", "")))
            if not arn:
                continue
            region, account, instance_id = arn.groups()
            entry = out.setdefault(instance_id, {"instance_id": instance_id, "region": region, "account_id": account,
                                                 "finding_ids": [], "detector_id": None})
            if match and match.group(3) == account and match.group(5) not in entry["finding_ids"]:
                entry["finding_ids"].append(match.group(5))
                entry["detector_id"] = entry["detector_id"] or match.group(4)
    return list(out.values())
