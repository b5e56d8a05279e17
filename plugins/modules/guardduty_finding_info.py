#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: guardduty_finding_info
version_added: 1.0.0
short_description: Read GuardDuty findings about EC2 instances, by id, by instance or by criteria
description:
  - Returns GuardDuty findings as C(GetFindings) gives them, snake_cased like amazon.aws info modules, plus a
    summary per instance (highest severity, finding types and families, first and last seen, remote IPs, local ports).
  - Findings are chosen by O(finding_ids), by O(instance_ids), or by the filters alone. The filters are the same
    vocabulary as the C(cloudsec.guardduty.guardduty) inventory plugin. ListFindings is read page by page and
    GetFindings 50 ids at a time.
  - With O(finding_ids) the findings are returned as they are, whatever their type or archive state; the filters
    apply to O(instance_ids) and criteria queries, which return EC2 instance findings only.
  - A GuardDuty administrator account sees its member accounts' findings in the same Region.
options:
  finding_ids:
    description: The findings to read. Mutually exclusive with O(instance_ids).
    type: list
    elements: str
  instance_ids:
    description: Read the findings about these instances. Mutually exclusive with O(finding_ids).
    type: list
    elements: str
  detector_id:
    description: The GuardDuty detector to use. Defaults to the detector of the caller's account in the Region.
    type: str
  min_severity:
    description: Ignore findings below this severity (GuardDuty's 1.0 to 8.9 scale; 4 is medium, 7 high).
    type: float
  finding_types:
    description:
      - Keep findings whose type matches one of these. A plain string is a prefix (C(Backdoor), C(Backdoor:EC2/));
        a string with C(*), C(?) or C([) is a glob (C(*SSHBruteForce)).
    type: list
    elements: str
  exclude_finding_types:
    description: Ignore findings whose type matches one of these (prefix or glob); wins over O(finding_types).
    type: list
    elements: str
  updated_since:
    description: Only findings updated since a duration ago (C(24h), C(30m), C(7d), C(2w), C(3600)) or an ISO 8601 timestamp.
    type: str
  archived:
    description: C(exclude) for active findings only, C(only) for archived ones, C(include) for both.
    type: str
    choices: [exclude, only, include]
    default: exclude
  tags:
    description:
      - Instance tags the finding's instance must carry, a value or a list of values per key; values may be globs.
    type: dict
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: High-severity findings of the last day about production instances
  cloudsec.guardduty.guardduty_finding_info:
    min_severity: 7
    updated_since: 24h
    tags:
      Environment: production
  register: recent

- name: Everything GuardDuty says about two instances, archived findings included
  cloudsec.guardduty.guardduty_finding_info:
    instance_ids: [i-0123456789abcdef0, i-0fedcba9876543210]
    archived: include

- name: The malware findings of a scan
  cloudsec.guardduty.guardduty_finding_info:
    instance_ids: "{{ compromised_instance_ids }}"
    finding_types: ["Execution:EC2/MaliciousFile"]
"""

RETURN = r"""
detector_id:
  description: The detector used.
  returned: always
  type: str
findings:
  description: The findings, as GetFindings returns them, snake_cased; most severe first.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "8ac7e1...", "type": "Backdoor:EC2/C&CActivity.B", "severity": 8.0, "account_id": "123456789012",
            "resource": {"resource_type": "Instance", "instance_details": {"instance_id": "i-0123456789abcdef0"}},
            "service": {"archived": false, "count": 1}}]
instances:
  description: Per instance id, a summary of its findings.
  returned: always
  type: dict
  contains:
    account_id:
      description: The account that owns the instance.
      type: str
    max_severity:
      description: The highest severity among its findings.
      type: float
    severity_label:
      description: C(high), C(medium) or C(low), for the highest severity.
      type: str
    finding_count:
      description: How many findings.
      type: int
    finding_ids:
      description: The findings' ids, most severe first.
      type: list
      elements: str
    finding_types:
      description: The distinct finding types.
      type: list
      elements: str
    finding_families:
      description: The distinct threat purposes (C(Backdoor), C(CryptoCurrency)...).
      type: list
      elements: str
    first_seen:
      description: The earliest first-seen time.
      type: str
    last_seen:
      description: The latest last-seen time.
      type: str
    remote_ips:
      description: Remote IP addresses named by the findings.
      type: list
      elements: str
    local_ports:
      description: Local ports named by the findings.
      type: list
      elements: int
missing_finding_ids:
  description: Requested finding ids GuardDuty did not return (unknown, or not visible to this account).
  returned: always
  type: list
  elements: str
ignored:
  description: How many findings the filters left out, by reason.
  returned: always
  type: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.transformation import camel_dict_to_snake_dict

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils import findings as fnd
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import GuardDutyError
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import find_detector
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import find_findings
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guardduty import get_findings
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import split_instance_ids


def instance_summaries(findings):
    """{instance id: summary} from the findings that name an instance (the inventory plugin's host summary)."""
    hosts, unused_ignored = fnd.build_hosts(findings, fnd.normalize_selection(archived="include"))
    out = {}
    for host in hosts.values():
        instance = host["instance"]
        summary = {key: host[key] for key in ("max_severity", "severity_label", "finding_count", "finding_types",
                                              "finding_families", "first_seen", "last_seen", "remote_ips", "local_ports")}
        summary.update(account_id=instance["account_id"], region=instance["region"],
                       finding_ids=[f["id"] for f in host["findings"]])
        out[instance["instance_id"]] = summary
    return out


def main():
    argument_spec = dict(
        finding_ids=dict(type="list", elements="str"),
        instance_ids=dict(type="list", elements="str"),
        detector_id=dict(type="str"),
        min_severity=dict(type="float"),
        finding_types=dict(type="list", elements="str"),
        exclude_finding_types=dict(type="list", elements="str"),
        updated_since=dict(type="str"),
        archived=dict(type="str", choices=["exclude", "only", "include"], default="exclude"),
        tags=dict(type="dict"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              mutually_exclusive=[["finding_ids", "instance_ids"]])
    params = module.params
    try:
        selection = fnd.normalize_selection(params["min_severity"], params["finding_types"],
                                            params["exclude_finding_types"], params["updated_since"],
                                            params["archived"], params["tags"])
    except fnd.FilterError as exc:
        module.fail_json(msg=str(exc))
    client = module_client(module, "guardduty")
    ignored, missing = {}, []
    try:
        detector_id = find_detector(client, params["detector_id"])
        if params["finding_ids"]:
            wanted = list(dict.fromkeys(params["finding_ids"]))
            found = get_findings(client, detector_id, wanted)
            seen = {f["Id"] for f in found}
            missing = [i for i in wanted if i not in seen]
            selected = found
        else:
            criteria = fnd.finding_criteria(selection)
            if params["instance_ids"] is not None:
                valid, bad = split_instance_ids(params["instance_ids"])
                if bad:
                    module.fail_json(msg="malformed instance ids: " + ", ".join(sorted(bad)))
                if not valid:
                    module.exit_json(changed=False, detector_id=detector_id, findings=[], instances={},
                                     missing_finding_ids=[], ignored={})
                criteria["Criterion"]["resource.instanceDetails.instanceId"] = {"Equals": valid}
            selected = []
            for finding in find_findings(client, detector_id, criteria):
                keep, reason = fnd.finding_selected(finding, selection)
                if keep:
                    selected.append(finding)
                else:
                    ignored[reason] = ignored.get(reason, 0) + 1
    except GuardDutyError as exc:
        module.fail_json(msg=str(exc), error=exc.as_dict())
    selected.sort(key=lambda f: (-float(f.get("Severity") or 0), f.get("Id") or ""))
    module.exit_json(changed=False, detector_id=detector_id,
                     findings=[camel_dict_to_snake_dict(f) for f in selected],
                     instances=instance_summaries(selected), missing_finding_ids=missing, ignored=ignored)


if __name__ == "__main__":
    main()
