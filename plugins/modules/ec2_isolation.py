#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_isolation
version_added: 1.0.0
short_description: Isolate compromised EC2 instances from the network, and release them
description:
  - Contains a batch of EC2 instances the way Amazon GuardDuty's remediation guide and AWS's
    C(AWSSupport-ContainEC2Instance) runbook do, cutting established connections, and releases them later.
  - "O(state=isolated): for every network interface (ENI) of every instance, primary and secondary:
    1. record the ENI's original security groups in tags on the ENI, before any change;
    2. per VPC, find or create a conversion group (all traffic in and out, IPv4 and IPv6) and an isolation
    group (no rules but O(allowed_access)), found by name and tag, never duplicated;
    3. move the ENI to the conversion group, which makes its TCP/UDP flows untracked, then at once to the
    isolation group, which cuts them; 4. tag the instance C(guardduty:isolation=isolated)."
  - A security-group change alone does not cut connections EC2 is tracking (TCP for up to 5 days); the
    conversion step is what cuts them. ICMP and flows through a NAT gateway, NLB, Global Accelerator,
    Network Firewall, PrivateLink endpoint or egress-only internet gateway stay tracked (see docs/isolation.md).
  - If the move to the isolation group fails after an ENI reached the conversion group, the ENI is put back
    on its original groups and the instance is reported failed with that ENI named; an ENI is never left on
    the open conversion group by a run that could still reach AWS.
  - Requester-managed interfaces, and interfaces of another service's type, cannot be changed; they are
    reported per ENI and the instance fails.
  - "O(state=released): restore every ENI's recorded groups, delete the record and mark the instance
    C(guardduty:isolation=released). An instance with no record fails with a clear error."
  - Running again on an isolated (or released) instance makes no AWS write call and reports no change.
  - Every instance gets its own result; the task fails if any instance failed, after trying all of them.
    An instance that cannot be worked on (malformed or unknown id, terminated, another region) is left
    untouched and reported; the others are still processed.
author:
  - cloudsec.guardduty contributors (@cloudsec)
options:
  instance_ids:
    description:
      - The instances to isolate or release, in the module's account and region.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(isolated) contains the instances; V(released) restores their original security groups.
    type: str
    choices: [isolated, released]
    default: isolated
  isolation_group_name:
    description:
      - Name of the isolation security group, one per VPC, shared by every isolated instance of the VPC.
      - It holds no rule except examiner access (O(allowed_access), this run's and, unless O(allowed_access_exclusive), earlier
        runs'); any other rule added to it by hand is revoked.
      - AWS refuses names longer than 255 characters or starting with C(sg-); they are refused before any call.
    type: str
    default: guardduty-isolation
  conversion_group_name:
    description:
      - Name of the conversion security group, one per VPC, that allows all traffic so that the ENI's
        flows become untracked. ENIs stay on it for one API call.
    type: str
    default: guardduty-isolation-conversion
  allowed_access:
    description:
      - Examiner access kept in the isolation group, for example SSH from a forensics host.
      - It applies to every instance isolated in the VPC. An open CIDR (C(0.0.0.0/0), C(::/0)) or one broader than
        C(/8) (IPv4) or C(/32) (IPv6), such as C(0.0.0.0/1) and C(128.0.0.0/1), is always refused.
      - A public range (not RFC 1918 or C(fc00::/7)), or a private one broader than C(/16) (IPv4) or C(/48) (IPv6), is
        refused unless O(allowed_access_acknowledge_public=true).
      - Rules are only added; leaving this out does not remove the examiner access an earlier run added for another
        incident (see O(allowed_access_exclusive)).
    type: list
    elements: dict
    suboptions:
      cidr:
        description: IPv4 or IPv6 network of the examiner.
        type: str
        required: true
      protocol:
        description: V(all) for all traffic.
        type: str
        choices: [tcp, udp, icmp, all]
        default: tcp
      port:
        description: First port (ICMP type, V(-1) to V(255), V(-1) for all types); required for V(tcp) and V(udp).
        type: int
      to_port:
        description:
          - Last port; defaults to O(allowed_access[].port).
          - For V(icmp), the ICMP code (V(-1) to V(255), default V(-1), all codes); with type V(-1) it must be V(-1).
        type: int
      direction:
        description: Traffic direction the rule allows.
        type: str
        choices: [ingress, egress]
        default: ingress
  allowed_access_acknowledge_public:
    description:
      - Accept in O(allowed_access) public ranges and private ones broader than C(/16) (IPv4) or C(/48) (IPv6),
        knowing that they reach every instance isolated in the VPC. Open and broader than C(/8) or C(/32) stay refused.
    type: bool
    default: false
  allowed_access_exclusive:
    description:
      - Make the isolation group's rules exactly O(allowed_access), revoking the examiner access earlier runs (other
        incidents) added. Without it, rules are only added, and only rules that are not examiner access (open or too
        broad ranges, group or prefix-list references) are revoked.
    type: bool
    default: false
  incident_id:
    description:
      - Incident reference written to the instance's C(guardduty:incident) tag.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters; anything else is
        refused before any AWS call.
    type: str
  max_concurrency:
    description:
      - How many network interfaces are moved at the same time.
    type: int
    default: 8
notes:
  - Supports check mode and diff mode; check mode makes only Describe calls and returns the same plan a
    real run would execute. Groups not created yet are shown as C((new) NAME).
  - "IAM actions: ec2:DescribeInstances, ec2:DescribeNetworkInterfaces, ec2:DescribeSecurityGroups,
    ec2:CreateSecurityGroup, ec2:AuthorizeSecurityGroupIngress, ec2:AuthorizeSecurityGroupEgress,
    ec2:RevokeSecurityGroupIngress, ec2:RevokeSecurityGroupEgress, ec2:ModifyNetworkInterfaceAttribute,
    ec2:CreateTags, ec2:DeleteTags, and ec2:DescribeVpcs when it creates groups (policy: docs/iam/ec2_isolation.json)."
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Isolate the instances of a finding, keeping SSH from the forensics host
  cloudsec.guardduty.ec2_isolation:
    region: us-east-1
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210
    incident_id: IR-2024-0042
    allowed_access:
      - cidr: 10.99.0.10/32
        port: 22

- name: Release an instance once it is clean
  cloudsec.guardduty.ec2_isolation:
    region: us-east-1
    instance_ids: [i-0123456789abcdef0]
    state: released
"""

RETURN = r"""
instances:
  description: One result per requested instance id, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance id as given.
      type: str
      sample: i-0123456789abcdef0
    changed:
      description: Whether anything was (or in check mode would be) changed for this instance.
      type: bool
    state:
      description: V(isolated), V(released) or V(failed) (nothing isolated, or a step failed).
      type: str
      sample: isolated
    network_interfaces:
      description: Every network interface of the instance.
      type: list
      elements: dict
      contains:
        network_interface_id:
          description: The ENI.
          type: str
        vpc_id:
          description: Its VPC.
          type: str
        original_security_groups:
          description: The groups recorded before isolation, restored by release.
          type: list
          elements: str
        security_groups:
          description: Its groups after the run (predicted in check mode).
          type: list
          elements: str
        conversion_seconds:
          description: How long the ENI was on the conversion group (real runs that moved it).
          type: float
        error:
          description: Why this ENI could not be changed, if so.
          type: str
    warnings:
      description: Things the responder should know that did not fail the instance.
      type: list
      elements: str
    error:
      description: Why the instance failed (names the instance or ENI, the action and AWS's error code).
      type: str
  sample:
    - instance_id: i-0123456789abcdef0
      changed: true
      state: isolated
      network_interfaces:
        - network_interface_id: eni-0123456789abcdef0
          vpc_id: vpc-0123456789abcdef0
          original_security_groups: [sg-0123456789abcdef0]
          security_groups: [sg-0fedcba9876543210]
      warnings: []
      error: null
security_groups:
  description: The conversion and isolation group of each VPC involved.
  returned: always
  type: dict
  sample: {"vpc-0123456789abcdef0": {"conversion": "sg-01234567890abcdef", "isolation": "sg-0fedcba9876543210"}}
plan:
  description: The write calls planned from the described state, in order; the same in check mode.
  returned: always
  type: list
  elements: dict
"""

import datetime
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import botocore.config
    import botocore.exceptions
    # A timeout or a dropped connection (BotoCoreError) is an error of the call like any ClientError:
    # the ENI it concerned must not be left on the conversion group because of it.
    AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
except ImportError:
    AWS_ERRORS = ()  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_network
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils import isolation
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import describe_instances
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import split_instance_ids


def batch_label(instance_ids):
    """`batch (i-1, i-2 and 3 more)`: errors before any per-instance work still name the instances."""
    named = ", ".join(instance_ids[:10]) + (f" and {len(instance_ids) - 10} more" if len(instance_ids) > 10 else "")
    return f"batch ({named})"


def failure(resource, action, exc):
    """`resource: ec2:Action: message (Code)`, the shape every error of this module takes."""
    message = (getattr(exc, "response", None) or {}).get("Error", {}).get("Message") or str(exc)
    return f"{resource}: ec2:{action}: {message} ({error_code(exc)})"


class Isolation:
    """Runs the plan against AWS: groups per VPC, then records, then ENI moves, then instance tags."""

    def __init__(self, client, names, allowed_rules, max_concurrency):
        self.client = client
        self.names = names
        self.allowed_rules = allowed_rules
        self.workers = max(1, max_concurrency)

    # -- groups ---------------------------------------------------------------------------------
    def ensure_groups(self, steps, groups, ipv6_vpcs):
        """Create the missing groups, then set every group's rules.

        Returns ({(vpc, role): id}, {vpc: error}, the rule steps run). Created groups are described
        again before their rules are set: the rules changed are the ones the group really has, and a
        group a concurrent run created (InvalidGroup.Duplicate) is adopted the same way.
        """
        groups, errors = dict(groups), {}
        creates = [s for s in steps if s["action"] == "CreateSecurityGroup"]
        rule_steps = [s for s in steps if s["action"] != "CreateSecurityGroup"]

        def create(step):
            try:
                return step, ec2_network.create_security_group(self.client, step["vpc_id"], step["group_name"],
                                                               step["description"], {isolation.TAG_GROUP_ROLE: step["role"]})
            except AWS_ERRORS as exc:
                return step, failure(f"{step['group_name']} in {step['vpc_id']}", "CreateSecurityGroup", exc)

        if creates:
            for step, outcome in _in_pool(self, create, creates):
                if outcome is not None and not outcome.startswith("sg-"):
                    errors[step["vpc_id"]] = outcome
            try:
                described = ec2_network.describe_groups_by_name(self.client, [s["vpc_id"] for s in creates],
                                                                self.names.values())
            except AWS_ERRORS as exc:
                for step in creates:
                    errors.setdefault(step["vpc_id"], failure(step["vpc_id"], "DescribeSecurityGroups", exc))
                described = []
            touched = {s["vpc_id"] for s in creates} - set(errors)
            redo, found, redo_errors = isolation.plan_groups(
                touched, [isolation.group_view(g) for g in described], self.names, self.allowed_rules, ipv6_vpcs)
            errors.update(redo_errors)
            for vpc_id in touched - set(redo_errors):
                missing = [r for r in (isolation.CONVERSION, isolation.ISOLATION) if not found.get((vpc_id, r))]
                if missing:
                    errors[vpc_id] = f"{vpc_id}: created {', '.join(missing)} group not found by DescribeSecurityGroups"
            groups.update({k: v for k, v in found.items() if v})
            rule_steps = [s for s in rule_steps if s["vpc_id"] not in touched] + \
                [s for s in redo if s["action"] != "CreateSecurityGroup"]

        by_vpc = {}
        for step in rule_steps:
            if step["vpc_id"] not in errors:
                by_vpc.setdefault(step["vpc_id"], []).append(step)

        def converge(vpc_steps):
            for step in vpc_steps:  # in plan order: revokes before authorizations
                group_id = step.get("group_id") or groups[(step["vpc_id"], step["role"])]
                try:
                    ec2_network.change_rules(self.client, step["action"], group_id, step["permissions"])
                except AWS_ERRORS as exc:
                    return step["vpc_id"], failure(f"{step['group_name']} ({group_id}) in {step['vpc_id']}",
                                                   step["action"], exc)
            return None, None

        for vpc_id, error in _in_pool(self, converge, list(by_vpc.values())):
            if vpc_id:
                errors[vpc_id] = error
        executed = [s for s in steps if s["action"] == "CreateSecurityGroup"] + rule_steps
        return groups, errors, executed

    # -- instances ------------------------------------------------------------------------------
    def tag_batches(self, steps, call):
        """Run CreateTags/DeleteTags steps, one call per identical tag set; returns {instance_id: error}."""
        batches = {}
        for step in steps:
            key = tuple(sorted(step["tags"].items())) if isinstance(step["tags"], dict) else tuple(step["tags"])
            batches.setdefault(key, []).append(step)
        errors = {}

        def run(batch):
            resources = [s["resource"] for s in batch]
            try:
                call(self.client, resources, batch[0]["tags"])
            except AWS_ERRORS as exc:
                action = "CreateTags" if call is ec2_network.create_tags else "DeleteTags"
                for step in batch:
                    errors[step["instance_id"]] = failure(step["resource"], action, exc)

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(run, batches.values()))
        return errors

    def isolate_interface(self, step, groups, original):
        """Conversion group, then isolation group at once. On failure after the conversion move, the ENI
        goes back to its original groups: it must never stay on the open conversion group."""
        eni_id, vpc_id = step["resource"], step["vpc_id"]
        conversion, final = groups[(vpc_id, isolation.CONVERSION)], groups[(vpc_id, isolation.ISOLATION)]
        try:
            ec2_network.set_interface_groups(self.client, eni_id, [conversion])
        except botocore.exceptions.ClientError as exc:
            return None, None, failure(eni_id, "ModifyNetworkInterfaceAttribute", exc) + \
                " (moving to the conversion group; the ENI is unchanged)"
        except botocore.exceptions.BotoCoreError as exc:
            # No answer: the move may have happened. Put the original groups back (idempotent) so the ENI is
            # not on the open group; isolation is retried on the next run.
            error = failure(eni_id, "ModifyNetworkInterfaceAttribute", exc) + " (moving to the conversion group)"
            refused = self.put_back(eni_id, original)
            if refused is None:
                return list(original), None, error + "; the ENI was put back on its original groups"
            return None, None, (error + f"; putting it back failed too ({refused}): check that {eni_id} "
                                f"is not on the conversion group {conversion}")
        converted = time.monotonic()
        try:
            ec2_network.set_interface_groups(self.client, eni_id, [final])
            return [final], time.monotonic() - converted, None
        except AWS_ERRORS as exc:
            error = failure(eni_id, "ModifyNetworkInterfaceAttribute", exc) + " (moving to the isolation group)"
        refused = self.put_back(eni_id, original)
        if refused is None:
            return list(original), time.monotonic() - converted, error + "; the ENI was put back on its original groups"
        return [conversion], None, (error + f"; putting it back failed too ({refused}): the ENI is on the "
                                    f"conversion group {conversion}, move it to {final} by hand")

    def put_back(self, eni_id, original):
        """Put the ENI back on its original groups; None, or AWS's error code when that fails too."""
        try:
            ec2_network.set_interface_groups(self.client, eni_id, original)
            return None
        except AWS_ERRORS as exc:
            return error_code(exc)

    def restore_interface(self, step):
        try:
            ec2_network.set_interface_groups(self.client, step["resource"], step["groups"])
            return list(step["groups"]), None, None
        except AWS_ERRORS as exc:
            return None, None, failure(step["resource"], "ModifyNetworkInterfaceAttribute", exc)


def build_argument_spec():
    return dict(
        instance_ids=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["isolated", "released"], default="isolated"),
        isolation_group_name=dict(type="str", default="guardduty-isolation"),
        conversion_group_name=dict(type="str", default="guardduty-isolation-conversion"),
        allowed_access=dict(type="list", elements="dict", options=dict(
            cidr=dict(type="str", required=True),
            protocol=dict(type="str", choices=["tcp", "udp", "icmp", "all"], default="tcp"),
            port=dict(type="int"),
            to_port=dict(type="int"),
            direction=dict(type="str", choices=["ingress", "egress"], default="ingress"),
        )),
        allowed_access_acknowledge_public=dict(type="bool", default=False),
        allowed_access_exclusive=dict(type="bool", default=False),
        incident_id=dict(type="str"),
        max_concurrency=dict(type="int", default=8),
    )


def describe_batch(module, client, instance_ids):
    """(instances, interface views per instance, problems); fails the module on a denied Describe call."""
    action = "DescribeInstances"
    try:
        found, missing = describe_instances(client, instance_ids)
        action = "DescribeNetworkInterfaces"
        eni_ids = [n["NetworkInterfaceId"] for i in found.values() for n in i.get("NetworkInterfaces", [])]
        described = ec2_network.describe_network_interfaces(client, eni_ids) if eni_ids else {}
    except AWS_ERRORS as exc:
        module.fail_json(msg=failure(batch_label(instance_ids), action, exc), instances=[], code=error_code(exc),
                         action=f"ec2:{action}")
    region = module.region
    problems = {i: f"{i}: {reason}" + (f" ({region})" if "not found" in reason else "") for i, reason in missing.items()}
    enis = {}
    for instance_id, instance in found.items():
        nics = instance.get("NetworkInterfaces") or []
        if not nics:
            problems[instance_id] = f"{instance_id}: has no network interface to isolate"
            continue
        enis[instance_id] = [isolation.interface_view(n, described.get(n["NetworkInterfaceId"])) for n in nics]
    return found, enis, problems


def run(module):
    params = module.params
    state = params["state"]
    names = {isolation.ISOLATION: params["isolation_group_name"], isolation.CONVERSION: params["conversion_group_name"]}
    if not params["instance_ids"]:
        module.fail_json(msg="instance_ids is empty: give at least one instance id")
    if names[isolation.ISOLATION] == names[isolation.CONVERSION]:
        module.fail_json(msg="isolation_group_name and conversion_group_name must differ")
    incident_id = params["incident_id"]
    if incident_id is not None and len(incident_id) > isolation.TAG_VALUE_MAX:
        module.fail_json(msg=f"incident_id is {len(incident_id)} characters long; an EC2 tag value holds at most "
                             f"{isolation.TAG_VALUE_MAX}: nothing was changed")
    problems = [p for p in (
        guards.incident_id_problem(incident_id) if incident_id is not None else None,
        guards.group_name_problem(names[isolation.ISOLATION], "isolation_group_name"),
        guards.group_name_problem(names[isolation.CONVERSION], "conversion_group_name"),
        guards.positive_problem(params["max_concurrency"], "max_concurrency")) if p]
    if problems:
        module.fail_json(msg="; ".join(problems) + ": nothing was changed")
    try:
        allowed_rules = isolation.allowed_access_rules(params["allowed_access"], params["allowed_access_acknowledge_public"])
    except isolation.PlanError as exc:
        module.fail_json(msg=f"{exc}: nothing was changed")

    # The ENI moves of a batch share one client across max_concurrency threads: botocore's adaptive mode
    # paces them to the rate EC2's token bucket allows, instead of each thread retrying into the throttle
    # while an ENI sits on the open conversion group. A user's aws_config still overrides it.
    client = module.client("ec2", config=botocore.config.Config(retries={"mode": "adaptive", "max_attempts": 10}))
    valid, bad = split_instance_ids(params["instance_ids"])
    problems = {i: f"{i}: {reason}" for i, reason in bad.items()}
    instances, enis, described_problems = describe_batch(module, client, valid) if valid else ({}, {}, {})
    problems.update(described_problems)

    vpc_ids = {e["vpc_id"] for views in enis.values() for e in views if isolation.changeable_problem(e) is None}
    try:
        described_groups = ec2_network.describe_groups_by_name(client, vpc_ids, names.values()) if vpc_ids else []
    except AWS_ERRORS as exc:
        module.fail_json(msg=failure(batch_label(valid), "DescribeSecurityGroups", exc) + ": nothing was changed", instances=[], code=error_code(exc),
                         action="ec2:DescribeSecurityGroups")
    group_views = [isolation.group_view(g) for g in described_groups]
    exclusive = params["allowed_access_exclusive"]
    group_steps, groups, vpc_errors = isolation.plan_groups(vpc_ids, group_views, names, allowed_rules, exclusive=exclusive)
    ipv6 = set()
    creating = {s["vpc_id"] for s in group_steps if s["action"] == "CreateSecurityGroup"}
    if creating and state == "isolated":
        try:
            ipv6 = ec2_network.ipv6_vpcs(client, creating)
        except AWS_ERRORS as exc:
            module.fail_json(msg=failure(batch_label(valid), "DescribeVpcs", exc) + ": nothing was changed", instances=[], code=error_code(exc),
                             action="ec2:DescribeVpcs")
        group_steps, groups, vpc_errors = isolation.plan_groups(vpc_ids, group_views, names, allowed_rules, ipv6, exclusive=exclusive)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    plans = {}
    for instance_id in instances:
        if instance_id not in enis:
            continue
        tags = isolation.tag_dict(instances[instance_id].get("Tags"))
        if state == "isolated":
            plans[instance_id] = isolation.plan_isolate(instance_id, tags, enis[instance_id], groups, names,
                                                        params["incident_id"], now, vpc_errors)
        else:
            plans[instance_id] = isolation.plan_release(instance_id, tags, enis[instance_id], groups)
    if state == "released":
        group_steps = []  # release never creates or changes groups
    before = isolation.diff_view([{"instance_id": i, "enis": [dict(network_interface_id=e["network_interface_id"],
                                                                   security_groups=e["security_groups"])
                                                              for e in enis[i]]} for i in plans])
    plan = [{k: v for k, v in s.items() if k != "group_id"} for s in group_steps]  # ids: see security_groups
    plan += [s for p in plans.values() for s in p["steps"]]

    group_errors = {}
    if not module.check_mode:
        worker = Isolation(client, names, allowed_rules, params["max_concurrency"])
        if group_steps:
            groups, group_errors, executed = worker.ensure_groups(group_steps, groups, ipv6)
            plan = [{k: v for k, v in s.items() if k != "group_id"} for s in executed] + plan[len(group_steps):]
        described = {e["network_interface_id"]: e["security_groups"] for views in enis.values() for e in views}
        execute(worker, state, plans, groups, group_errors, described)

    results, any_failed = [], False
    for raw_id in params["instance_ids"]:
        instance_id = str(raw_id).strip()
        if instance_id in problems or instance_id not in plans:
            results.append({"instance_id": instance_id, "changed": False, "state": "failed", "network_interfaces": [],
                            "warnings": [], "error": problems.get(instance_id, f"{instance_id}: not processed")})
            any_failed = True
            continue
        result = plans[instance_id]
        failed = bool(result["errors"]) or result["state"] == "failed"
        any_failed = any_failed or failed
        results.append({
            "instance_id": instance_id,
            "changed": result.get("changed", bool(result["steps"])),
            "state": "failed" if failed and result["state"] != isolation.ISOLATED else result["state"],
            "network_interfaces": [{k: v for k, v in e.items() if k != "device_index"} for e in result["enis"]],
            "warnings": result["warnings"],
            "error": "; ".join(result["errors"]) or None,
        })
    security_groups = {}
    for (vpc_id, role), group_id in sorted(groups.items()):
        security_groups.setdefault(vpc_id, {})[role] = group_id or isolation.group_placeholder(names, role)
    changed = any(r["changed"] for r in results) or (bool(group_steps) and not group_errors)
    output = dict(changed=changed, instances=results, security_groups=security_groups, plan=plan)
    if module._diff:
        output["diff"] = {"before": before, "after": isolation.diff_view(list(plans.values()))}
    for result in results:
        for warning in result["warnings"]:
            module.warn(warning)
    if any_failed:
        failed_ids = [r["instance_id"] for r in results if r["error"]]
        # Each error is prefixed with its instance: the ENI-level messages name only the interface.
        module.fail_json(msg=f"{len(failed_ids)} of {len(results)} instances failed: " + " | ".join(
            r["error"] if r["error"].startswith(r["instance_id"]) else f"{r['instance_id']}: {r['error']}"
            for r in results if r["error"]), **output)
    module.exit_json(**output)


def execute(worker, state, plans, groups, group_errors, described):
    """Apply each instance's steps in the seed's order; a step's failure stops that instance only.

    Results start from the described groups and change only with calls that succeeded."""
    def fail(instance_id, message):
        plans[instance_id]["errors"].append(message)
        plans[instance_id]["state"] = "failed"

    def ok(instance_id):
        plans[instance_id]["changed"] = True

    for result in plans.values():
        result["changed"] = False
        for eni in result["enis"]:
            eni["security_groups"] = list(described[eni["network_interface_id"]])
        broken = {e["vpc_id"] for e in result["enis"]} & set(group_errors)
        if broken and result["steps"]:
            for vpc_id in sorted(broken):
                fail(result["instance_id"], f"{result['instance_id']}: containment groups of {vpc_id} not ready: "
                                            f"{group_errors[vpc_id]}")
    live = [s for r in plans.values() if r["state"] != "failed" for s in r["steps"]]
    enis = {e["network_interface_id"]: e for r in plans.values() for e in r["enis"]}

    def pending(action, kind):
        return [s for s in live if s["action"] == action and s["resource"].startswith(kind)
                and plans[s["instance_id"]]["state"] != "failed"]

    def tag(steps, call, note=""):
        errors = worker.tag_batches(steps, call)
        for step in steps:
            if step["instance_id"] in errors:
                fail(step["instance_id"], errors[step["instance_id"]] + note)
            else:
                ok(step["instance_id"])

    if state == "isolated":
        tag(pending("CreateTags", "eni-"), ec2_network.create_tags, " (recording the original groups; nothing was moved)")
        moves = pending("ModifyNetworkInterfaceAttribute", "eni-")
        outcomes = _in_pool(worker, lambda s: worker.isolate_interface(
            s, groups, enis[s["resource"]]["original_security_groups"] or described[s["resource"]]), moves)
    else:
        moves = pending("ModifyNetworkInterfaceAttribute", "eni-")
        outcomes = _in_pool(worker, worker.restore_interface, moves)
    for step, (new_groups, seconds, error) in zip(moves, outcomes):
        eni = enis[step["resource"]]
        if new_groups is not None:
            eni["security_groups"] = new_groups
            ok(step["instance_id"])
        if seconds is not None:
            eni["conversion_seconds"] = round(seconds, 3)
        if error:
            eni["error"] = error
            fail(step["instance_id"], error)
    if state == "released":
        tag(pending("DeleteTags", "eni-"), ec2_network.delete_tags, " (deleting the record; the groups were restored)")
    # The instance is marked only once every one of its ENIs is done.
    tag(pending("CreateTags", "i-"), ec2_network.create_tags)
    tag(pending("DeleteTags", "i-"), ec2_network.delete_tags)


def _in_pool(worker, function, items):
    with ThreadPoolExecutor(worker.workers) as pool:
        return list(pool.map(function, items))


def main():
    module = AnsibleAWSModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    run(module)


if __name__ == "__main__":
    main()
