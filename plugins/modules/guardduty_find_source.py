#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: guardduty_find_source
version_added: 1.0.0
short_description: Recommend, per instance, how to stop the activity GuardDuty reported, and optionally close the exposing rules
description:
  - Step 3 of GuardDuty's remediation procedure (identify the source of the activity). From each finding's type and
    action details, recommendations per instance. SSH or RDP brute force against the instance and port probes name
    the security-group rules exposing the reported local port to C(0.0.0.0/0) or C(::/0); C(CryptoCurrency),
    C(Backdoor), C(Trojan) and malware findings recommend rebuilding from a known-good image
    (M(cloudsec.guardduty.ec2_eradicate)); instance credential exfiltration recommends cutting the role's credentials
    for the instance (M(cloudsec.guardduty.ec2_instance_credentials)); other types, investigation.
  - For an instance isolated by M(cloudsec.guardduty.ec2_isolation), the rules are looked up in its recorded
    original security groups (those it gets back on release).
  - Findings come from O(findings) (GetFindings' shape, or the inventory plugin's summaries with C(instance_id)), or
    are fetched with ListFindings and GetFindings from the region's detector.
  - With O(apply_network=true), the exposing ingress rules are revoked (by rule id). Each revoked rule is recorded
    first in a tag on its group (C(guardduty:revoked-rule:<rule id>)); O(state=released) authorizes the recorded
    rules again and removes the records. A rule in a group shared with other instances is revoked for all of them.
options:
  instance_ids:
    description: The instances to triage.
    type: list
    elements: str
    required: true
  findings:
    description:
      - The findings to triage. Without it, the region's non-archived findings about the instances are fetched.
      - A finding without an instance id is attributed to the only instance of O(instance_ids), and ignored when there are several.
    type: list
    elements: dict
  include_archived:
    description: When fetching findings, include archived ones.
    type: bool
    default: false
  apply_network:
    description: Revoke the ingress rules exposing the reported ports (recorded for O(state=released)).
    type: bool
    default: false
  state:
    description: C(present) to triage (and apply when asked); C(released) to authorize the recorded revoked rules again.
    type: str
    choices: [present, released]
    default: present
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: What should we do about each instance's findings?
  cloudsec.guardduty.guardduty_find_source:
    instance_ids: "{{ compromised_instance_ids }}"
  register: found_source

- name: Close the rules that exposed SSH/RDP to the internet
  cloudsec.guardduty.guardduty_find_source:
    instance_ids: "{{ compromised_instance_ids }}"
    apply_network: true
"""

RETURN = r"""
instances:
  description: Per instance id, the findings considered, the recommendations and the exposing rules.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether rules were (or in check mode would be) revoked or re-authorized for this instance.
      type: bool
    isolated:
      description: Whether the rules were looked up in the recorded original groups of an isolated instance.
      type: bool
    findings:
      description: The ids of the findings considered.
      type: list
      elements: str
    recommendations:
      description: One or more per finding, with C(kind) (close_exposure, rebuild, cut_credentials, investigate), the finding, a summary and the module to use.
      type: list
      elements: dict
    exposing_rules:
      description: The ingress rules exposing a reported port to the internet (DescribeSecurityGroupRules' shape).
      type: list
      elements: dict
    calls:
      description: The write calls made (in check mode, planned).
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

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_call, module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty_find_source as find_source
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    failing_on_error, finish, missing_problems, validate_ids)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import describe_instances, problem_from_error
from ansible_collections.cloudsec.guardduty.plugins.module_utils.isolation import PlanError, decode_record


def isolation_record(tags):
    try:
        return decode_record(tags)
    except PlanError:
        return None  # a damaged record: the current groups are what faces the network


def attribute(findings, valid):
    by_instance = {i: [] for i in valid}
    for finding in findings:
        normalized = find_source.normalize(finding)
        instance_id = normalized["instance_id"] or (valid[0] if len(valid) == 1 else None)
        if instance_id in by_instance:
            by_instance[instance_id].append(normalized)
    return by_instance


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        findings=dict(type="list", elements="dict"),
        include_archived=dict(type="bool", default=False),
        apply_network=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "released"], default="present"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    valid = validate_ids(module, params["instance_ids"])
    ec2 = module_client(module, "ec2")
    with failing_on_error(module, "could not describe the instances; nothing was changed"):
        found, missing = describe_instances(ec2, valid)
        nic_ids = [n["NetworkInterfaceId"] for i in found.values() for n in i.get("NetworkInterfaces") or []]
        nic_tags = find_source.describe_interface_tags(ec2, nic_ids) if nic_ids else {}
    findings = params["findings"]
    if findings is None and params["state"] == "present" and found:
        with failing_on_error(module, "could not fetch the instances' GuardDuty findings; nothing was changed"):
            findings = find_source.fetch_findings(module_client(module, "guardduty"), list(found), params["include_archived"])
    by_instance = attribute(findings or [], valid)

    results, problems = {}, {}
    groups_of = {}
    for instance_id in [i for i in valid if i in found]:
        groups, isolated = find_source.instance_groups(found[instance_id], nic_tags, isolation_record)
        groups_of[instance_id] = groups
        recommendations = [r for f in by_instance[instance_id] for r in find_source.recommend(f)]
        results[instance_id] = {"changed": False, "isolated": isolated, "findings": [f["id"] for f in by_instance[instance_id]],
                                "recommendations": recommendations, "exposing_rules": [], "calls": []}
    all_groups = sorted({g for gs in groups_of.values() for g in gs})
    with failing_on_error(module, "could not describe the instances' security groups; nothing was changed"):
        rules = find_source.describe_rules(ec2, all_groups) if all_groups else []
        group_tags = find_source.describe_group_tags(ec2, all_groups) if all_groups else {}

    # Plan, per group: the rules to revoke (present) or authorize again (released), and the instances concerned.
    per_group = {}
    for instance_id, result in results.items():
        mine = [r for r in rules if r["GroupId"] in groups_of[instance_id]]
        for rec in result["recommendations"]:
            if rec["kind"] == "close_exposure" and rec.get("ports"):
                for rule in find_source.exposing_rules(mine, rec["ports"], rec.get("protocol", "tcp")):
                    if rule not in result["exposing_rules"]:
                        result["exposing_rules"].append(rule)
        if params["state"] == "present" and params["apply_network"]:
            for rule in result["exposing_rules"]:
                plan = per_group.setdefault(rule["GroupId"], {"instances": set(), "rules": {}})
                plan["instances"].add(instance_id)
                plan["rules"].setdefault(rule["SecurityGroupRuleId"], (rule, instance_id))
        elif params["state"] == "released":
            for group_id in groups_of[instance_id]:
                for key, value in (group_tags.get(group_id) or {}).items():
                    if key.startswith(find_source.RECORD_PREFIX):
                        try:
                            owner, permission = find_source.permission_from_record(value)
                        except (ValueError, KeyError):
                            continue
                        if owner == instance_id:
                            plan = per_group.setdefault(group_id, {"instances": set(), "records": {}})
                            plan["instances"].add(instance_id)
                            plan["records"][key] = permission

    def fail(instance_ids, action, exc):
        for instance_id in instance_ids:
            problems[instance_id] = problem_from_error(instance_id, action, exc)

    for group_id, plan in sorted(per_group.items()):
        if params["state"] == "present":
            # The record goes first: a revoked rule is always recorded.
            tags = [{"Key": k, "Value": v} for k, v in (find_source.rule_record(r, i) for r, i in plan["rules"].values())]
            calls = [("CreateTags", {"Resources": [group_id], "Tags": tags}),
                     ("RevokeSecurityGroupIngress", {"GroupId": group_id, "SecurityGroupRuleIds": sorted(plan["rules"])})]
        else:
            calls = [("AuthorizeSecurityGroupIngress", {"GroupId": group_id, "IpPermissions": [p]})
                     for p in plan["records"].values()]
            calls.append(("DeleteTags", {"Resources": [group_id], "Tags": [{"Key": k} for k in sorted(plan["records"])]}))
        for action, call_params in calls:
            if not module.check_mode:
                try:
                    find_source.ec2_call(ec2, action, call_params)
                except is_boto3_error_code("InvalidPermission.Duplicate"):
                    pass  # already authorized again: the goal is reached
                except Exception as exc:  # pylint: disable=duplicate-except
                    fail(plan["instances"], action, exc)
                    break
            for instance_id in plan["instances"]:
                results[instance_id]["calls"].append(describe_call((action, call_params)))
                results[instance_id]["changed"] = True

    problems.update((p.instance_id, p) for p in missing_problems(missing))

    def diff(done):
        changed = {i: r for i, r in done.items() if r["changed"]}
        return {"before": {i: [r["SecurityGroupRuleId"] for r in res.get("exposing_rules", [])] for i, res in changed.items()},
                "after": {i: [] if params["state"] == "present" else "re-authorized" for i in changed}}

    finish(module, valid, results, [problems[i] for i in valid if i in problems], diff=diff, order=valid)


if __name__ == "__main__":
    main()
