#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_instance_credentials
version_added: 1.0.0
short_description: Cut the AWS credentials of potentially compromised EC2 instances, without touching healthy instances sharing their role
description:
  - O(state=cut) denies every request made with the role credentials issued to the given instances, and stops the
    instances from getting new ones. Healthy instances using the same role keep working.
  - The deny is one inline policy per role, C(GuardDutyQuarantine), merged idempotently. Statement
    C(GuardDutyQuarantineInstances) denies C(*) on C(*) when C(ec2:SourceInstanceARN) is one of the cut instances'
    ARNs (EC2 role credentials carry that key, also when they were copied off the instance and are used from
    elsewhere). Statements C(GuardDutyRevokeSessionsIssuedBefore<time>) deny the same instances' sessions issued
    before the cut (C(aws:TokenIssueTime)).
  - Then the instance profile is disassociated (O(profile_action=disassociate)) or replaced by a quarantine profile
    (O(profile_action=replace)), so the instance metadata service hands out no new credentials of the role.
  - Before any change, the original association (profile ARN, association id, role, cut time) is written to the
    instance tag C(guardduty:credentials-record). O(state=released) re-associates the original profile, removes only
    the released instances' ARNs from the policy (deleting the policy when it denies nothing more), then the record.
  - Works on a batch; one IAM read and at most one IAM write per role. A failure on one instance names the instance,
    the AWS action and error code, and never hides the others' results. IAM limits a role's inline policies to
    10,240 characters in total; an instance whose ARN would not fit is refused with a clear error.
  - See docs/modules/ec2_instance_credentials.md for why AWS's "revoke active sessions" alone is not enough.
  - The record is kept in the incident store (O(incident_store)), written before any change; the tag is only the hint
    to resume. O(state=cut) takes the profile and its role from AWS (C(DescribeIamInstanceProfileAssociations),
    C(GetInstanceProfile)), never from a tag the store does not know, and rewrites such a tag with a warning.
    O(state=released) refuses by name, changing nothing for that instance, a tag that differs from the store's record.
options:
  instance_ids:
    description: The instances whose credentials to cut or restore.
    type: list
    elements: str
    required: true
  state:
    description: C(cut) to cut the credentials, C(released) to restore what the record holds.
    type: str
    choices: [cut, released]
    default: cut
  profile_action:
    description:
      - C(disassociate) removes the instance profile; C(replace) associates O(quarantine_profile) instead (for
        instances that need some role, for example to reach a forensic bucket).
      - Only with O(state=cut).
    type: str
    choices: [disassociate, replace]
    default: disassociate
  quarantine_profile:
    description: Name or ARN of the instance profile to associate with O(profile_action=replace).
    type: str
  keep_session_revocation:
    description:
      - With O(state=released), keep denying the released instances' sessions issued before the cut (the
        C(GuardDutyRevokeSessionsIssuedBefore...) statements), so credentials copied off the instance stay useless
        until they expire; only the quarantine statement is removed.
    type: bool
    default: false
  trust_tag_records:
    description:
      - With O(state=released), apply a C(guardduty:credentials-record) tag record the incident store does not know (one written by an
        earlier version, which kept records in tags only). Check the tag first, as anyone with C(ec2:CreateTags) in the
        member account can write it.
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
- name: Cut the credentials of the compromised instances (healthy instances of the same role keep theirs)
  cloudsec.guardduty.ec2_instance_credentials:
    instance_ids: "{{ compromised_instance_ids }}"

- name: Cut, but give the instances a quarantine role that can only write to the forensic bucket
  cloudsec.guardduty.ec2_instance_credentials:
    instance_ids: "{{ compromised_instance_ids }}"
    profile_action: replace
    quarantine_profile: forensic-quarantine

- name: After the investigation, give the instances their role back
  cloudsec.guardduty.ec2_instance_credentials:
    instance_ids: "{{ compromised_instance_ids }}"
    state: released
"""

RETURN = r"""
instances:
  description: Per instance id, what was found, done (or planned in check mode) and recorded.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether anything was (or in check mode would be) changed for this instance.
      type: bool
    role:
      description: The role whose credentials are cut for this instance; null when the instance has no profile.
      type: str
    instance_arn:
      description: The ARN the deny policy names (C(ec2:SourceInstanceARN)).
      type: str
    before:
      description: The instance profile ARN associated and whether the policy denied the instance, before.
      type: dict
      sample: {"instance_profile": "arn:aws:iam::123456789012:instance-profile/web-role", "denied": false}
    after:
      description: The same, once done.
      type: dict
      sample: {"instance_profile": null, "denied": true}
    record:
      description: The original association recorded before the cut (what O(state=released) restores); null if none.
      type: dict
      sample: {"profile_arn": "arn:aws:iam::123456789012:instance-profile/web-role", "association_id": "iip-assoc-0123",
               "role": "web-role", "cut_at": "2026-11-28T04:50:00Z", "mode": "disassociate", "quarantine_profile_arn": null}
    calls:
      description: The write calls made for this instance, in order (in check mode, planned).
      type: list
      elements: str
    error:
      description: Why this instance failed; names the instance, the AWS action and its error code.
      type: dict
      returned: on failure of this instance
policies:
  description: Per role, the C(GuardDutyQuarantine) policy document before and after, and the change made (put, delete or null).
  returned: always
  type: dict
  sample: {"web-role": {"before": null, "change": "put", "after": {"Version": "2012-10-17", "Statement": []}}}
errors:
  description: The failures, one per failed instance.
  returned: always
  type: list
  elements: dict
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_instance_credentials as cred
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident_store import StoreError, module_store
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    batch_output, changed_before_after, exit_batch, failing_on_error, map_instances, validate_ids)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import (
    InstanceProblem, describe_instances, problem_from_error)


def _tags(instance):
    return {t["Key"]: t["Value"] for t in instance.get("Tags") or []}


class Run:
    """One module run: the described state, the plans, and what happened to each instance."""

    def __init__(self, module, ec2, iam):
        self.module, self.ec2, self.iam = module, ec2, iam
        self.params = module.params
        self.region = ec2.meta.region_name
        self.results, self.problems = {}, {}
        self.profile_roles = {}
        self.policies = {}  # role -> {"document", "others_size", "before"}
        self.store = module_store(module)
        self.owners = {}

    def fail(self, instance_id, problem):
        self.problems[instance_id] = problem
        result = self.results.setdefault(instance_id, {"changed": False, "calls": []})
        result["error"] = problem.as_dict()

    def role_of(self, profile_arn):
        if profile_arn not in self.profile_roles:
            profile = cred.get_instance_profile(self.iam, profile_arn)
            roles = (profile or {}).get("Roles") or []
            self.profile_roles[profile_arn] = roles[0]["RoleName"] if roles else None
        return self.profile_roles[profile_arn]

    def policy_of(self, role):
        if role not in self.policies:
            inline = cred.read_role_inline_policies(self.iam, role)
            document = inline.pop(cred.QUARANTINE_POLICY, None)
            self.policies[role] = {"document": document, "before": document,
                                   "others_size": sum(cred.policy_size(d) for d in inline.values())}
        return self.policies[role]

    def parallel(self, function, items):
        map_instances(items, function)

    # -- describe and plan ----------------------------------------------------------------------
    def describe(self, instance_ids):
        found, missing = describe_instances(self.ec2, instance_ids)
        for instance_id, reason in missing.items():
            self.fail(instance_id, InstanceProblem(instance_id, "DescribeInstances", reason))
        associations = cred.describe_associations(self.ec2, list(found))
        views = {}
        for instance_id in [i for i in instance_ids if i in found]:
            tags = _tags(found[instance_id])
            self.owners[instance_id] = found[instance_id].get("OwnerId") or ""
            try:
                stored = self.store.section(self.owners[instance_id], self.region, instance_id, "credentials")
                stored = cred.record_from_data(stored) if stored is not None else None
            except (StoreError, cred.CredentialsPlanError) as exc:
                self.fail(instance_id, InstanceProblem(instance_id, "ReadIncidentStore", str(exc), "IncidentStoreError"))
                continue
            tagged, tag_error = None, None
            try:
                tagged = cred.decode_record(tags)
            except cred.CredentialsPlanError as exc:
                tag_error = str(exc)
            subject = f"{instance_id}"
            if self.params["state"] == "cut":
                # The store's record (a crash's resume) or none: a tag the store does not know is never adopted,
                # the profile and its role are read from AWS.
                record, warning = records.for_change(subject, cred.RECORD_TAG, stored, tagged, tag_error)
            else:
                record, problem, warning = records.for_release(subject, cred.RECORD_TAG, stored, tagged, tag_error,
                                                               self.params["trust_tag_records"])
                if problem:
                    self.fail(instance_id, InstanceProblem(instance_id, "CheckCredentialsRecord", problem, "RecordRefused"))
                    continue
            if warning:
                self.module.warn(warning)
            association = cred.association_view(associations.get(instance_id))
            views[instance_id] = {"association": association, "record": record, "stored": stored, "tagged": tagged,
                                  "tag_error": tag_error, "record_keys": cred.record_tag_keys(tags),
                                  "record_tags": {k: tags[k] for k in cred.record_tag_keys(tags)}}
        return views

    def identify(self, instance_id, view):
        """(role, instance ARN) for the instance, from its record or its current profile."""
        source = view["record"]["profile_arn"] if view["record"] else (view["association"] or {}).get("profile_arn")
        if not source:
            return None, None
        partition, account = cred.arn_parts(source)
        role = view["record"]["role"] if view["record"] else self.role_of(source)
        return role, cred.instance_arn(partition, self.region, account, instance_id)

    # -- cut ------------------------------------------------------------------------------------
    def cut(self, views, quarantine_arn):
        cut_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        plans = {}
        for instance_id, view in views.items():
            try:
                role, arn = self.identify(instance_id, view)
                plan = cred.plan_cut(instance_id, view["association"], view["record"], role, cut_at,
                                     self.params["profile_action"], quarantine_arn)
                if role:
                    self.policy_of(role)
            except Exception as exc:
                self.fail(instance_id, problem_from_error(instance_id, getattr(exc, "operation_name", None) or "GetInstanceProfile", exc))
                continue
            plan.update(role=role, arn=arn)
            if plan["record"] is not None:
                # The tag is rewritten from the record kept (a forged or stale tag replaced by the truth).
                plan["tags"], plan["stale_tags"] = records.rewrite(cred.RECORD_TAG, cred._compact_record(plan["record"]),
                                                                   view["record_tags"])
            plans[instance_id] = plan
        # The record of every instance goes first, in the incident store then in its tags: no instance is
        # changed before its record exists.

        def write_record(instance_id):
            plan = plans[instance_id]
            if plan["record"] is not None and views[instance_id]["stored"] != plan["record"]:
                if not self.module.check_mode:
                    try:
                        self.store.put(self.owners[instance_id], self.region, instance_id, "credentials",
                                       cred._compact_record(plan["record"]))
                    except StoreError as exc:
                        self.fail(instance_id, InstanceProblem(instance_id, "WriteIncidentStore",
                                                               f"{exc}; nothing was changed", "IncidentStoreError"))
                        return
            if plan["tags"]:
                tags = [{"Key": k, "Value": v} for k, v in plan["tags"].items()]
                if not self.make_call(instance_id, ("CreateTags", {"Resources": [instance_id], "Tags": tags})):
                    return
            if plan.get("stale_tags"):
                self.make_call(instance_id, ("DeleteTags", {"Resources": [instance_id],
                                                            "Tags": [{"Key": k} for k in plan["stale_tags"]]}))

        for instance_id, plan in plans.items():
            self.result_for(instance_id, plan)
        self.parallel(write_record, {i: p for i, p in plans.items() if p["record"] is not None})
        live = {i: p for i, p in plans.items() if i not in self.problems}
        self.apply_policies({i: p for i, p in live.items() if p["deny"] and p["role"]}, add=True)
        live = {i: p for i, p in live.items() if i not in self.problems}
        self.parallel(lambda i: self.associate(i, live[i]["association_calls"]), live)
        self.finish(plans)

    def release(self, views):
        plans = {}
        for instance_id, view in views.items():
            try:
                role, arn = self.identify(instance_id, view)
                if view["record"] and view["stored"] is None and role != self.role_of(view["record"]["profile_arn"]):
                    # A tag record applied on trust: its role must be the one its profile really holds.
                    raise cred.CredentialsPlanError(
                        f"tag {cred.RECORD_TAG} names role {role}, but profile {view['record']['profile_arn']} holds "
                        f"{self.role_of(view['record']['profile_arn'])}: refusing to apply it; nothing was changed")
                plan = cred.plan_release(instance_id, view["association"], view["record"], view["record_keys"])
                if role and view["record"]:
                    self.policy_of(role)
            except cred.CredentialsPlanError as exc:
                self.fail(instance_id, InstanceProblem(instance_id, "PlanRelease", str(exc), "UnexpectedInstanceProfile"))
                continue
            except Exception as exc:
                self.fail(instance_id, problem_from_error(instance_id, getattr(exc, "operation_name", None) or "GetInstanceProfile", exc))
                continue
            plan.update(role=role if view["record"] else None, arn=arn, record=view["record"], deny=bool(view["record"]))
            plans[instance_id] = plan
            self.result_for(instance_id, plan)
        # The profile comes back first; the record goes last, once everything it holds is restored.
        self.parallel(lambda i: self.associate(i, plans[i]["association_calls"]), plans)
        live = {i: p for i, p in plans.items() if i not in self.problems}
        self.apply_policies({i: p for i, p in live.items() if p["deny"] and p["role"]}, add=False)
        live = {i: p for i, p in live.items() if i not in self.problems and p["delete_tags"]}

        def delete_record(instance_id):
            if live[instance_id]["delete_tags"]["Tags"]:
                if not self.make_call(instance_id, ("DeleteTags", live[instance_id]["delete_tags"])):
                    return
            if views[instance_id]["stored"] is not None and not self.module.check_mode:
                try:
                    self.store.drop(self.owners[instance_id], self.region, instance_id, "credentials")
                except StoreError as exc:
                    self.module.warn(f"{instance_id}: released, but its record stays in the incident store: {exc}")

        self.parallel(delete_record, live)
        self.finish(plans)

    # -- shared steps ---------------------------------------------------------------------------
    def result_for(self, instance_id, plan):
        if instance_id not in self.results:
            denied = False
            if plan["role"] and plan["role"] in self.policies:
                denied = plan["arn"] in cred.read_policy(self.policies[plan["role"]]["before"])["quarantined"]
            self.results[instance_id] = {
                "changed": False, "calls": [], "role": plan["role"], "instance_arn": plan["arn"],
                "record": plan.get("record"), "before": {"instance_profile": plan["before"], "denied": denied}}
        return self.results[instance_id]

    def make_call(self, instance_id, call):
        """Make one EC2 call for the instance (not in check mode) and note it; False once AWS refused it,
        the instance then failed with the call's action."""
        if not self.module.check_mode:
            try:
                cred.ec2_call(self.ec2, *call)
            except Exception as exc:
                self.fail(instance_id, problem_from_error(instance_id, call[0], exc))
                return False
        self.results[instance_id]["calls"].append(cred.describe_call(call))
        return True

    def associate(self, instance_id, calls):
        for call in calls:
            if not self.make_call(instance_id, call):
                return

    def apply_policies(self, plans, add):
        by_role = {}
        for instance_id, plan in plans.items():
            by_role.setdefault(plan["role"], {})[instance_id] = plan
        for role, members in by_role.items():
            state = self.policies[role]
            if add:
                changes = {"add": {p["arn"]: p["record"]["cut_at"] for p in members.values()}, "remove": []}
            else:
                changes = {"add": {}, "remove": [p["arn"] for p in members.values()]}
            try:
                document, change = cred.plan_role_policy(role, state["document"], state["others_size"],
                                                         changes["add"], changes["remove"],
                                                         keep_revocation=self.params["keep_session_revocation"])
            except cred.CredentialsPlanError as exc:
                for instance_id in members:
                    self.fail(instance_id, InstanceProblem(instance_id, "PutRolePolicy", str(exc), "LimitExceeded"))
                continue
            if change is None:
                continue
            action = "PutRolePolicy" if change == "put" else "DeleteRolePolicy"
            if not self.module.check_mode:
                try:
                    if change == "put":
                        cred.put_role_policy(self.iam, role, document)
                    else:
                        cred.delete_role_policy(self.iam, role)
                except Exception as exc:
                    for instance_id in members:
                        self.fail(instance_id, problem_from_error(instance_id, action, exc))
                    continue
            for instance_id in members:
                self.results[instance_id]["calls"].append(
                    cred.describe_call((action, {"RoleName": role, "PolicyName": cred.QUARANTINE_POLICY})))
            state["document"] = document
            state["change"] = change

    def finish(self, plans):
        for instance_id, plan in plans.items():
            result = self.results[instance_id]
            result["changed"] = bool(result["calls"])
            if instance_id in self.problems:
                result["after"] = None
                continue
            role_doc = self.policies.get(plan["role"], {}).get("document") if plan["role"] else None
            result["after"] = {"instance_profile": plan["after"],
                               "denied": bool(plan["arn"]) and plan["arn"] in cred.read_policy(role_doc)["quarantined"]}


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=["cut", "released"], default="cut"),
        profile_action=dict(type="str", choices=["disassociate", "replace"], default="disassociate"),
        quarantine_profile=dict(type="str"),
        keep_session_revocation=dict(type="bool", default=False, no_log=False),
        incident_store=dict(type="str"),
        trust_tag_records=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_if=[("profile_action", "replace", ["quarantine_profile"])])
    params = module.params
    valid = validate_ids(module, params["instance_ids"], policies={})
    ec2, iam = module_client(module, "ec2"), module_client(module, "iam")
    run = Run(module, ec2, iam)
    with failing_on_error(module, "could not describe the instances and their profile associations; nothing was changed"):
        views = run.describe(valid)
    quarantine_arn = None
    if params["state"] == "cut" and params["profile_action"] == "replace":
        try:
            profile = cred.get_instance_profile(iam, params["quarantine_profile"])
        except Exception as exc:
            module.fail_json_aws(exc, msg=f"could not read the quarantine profile {params['quarantine_profile']}; nothing was changed")
        if profile is None:
            module.fail_json(msg=f"quarantine profile {params['quarantine_profile']} does not exist (NoSuchEntity); nothing was changed",
                             instances={}, policies={}, errors=[])
        quarantine_arn = profile["Arn"]

    if params["state"] == "cut":
        run.cut(views, quarantine_arn)
    else:
        run.release(views)

    results = {i: run.results[i] for i in valid if i in run.results}
    problems = [run.problems[i] for i in valid if i in run.problems]
    policies = {role: {"before": s["before"], "after": s["document"], "change": s.get("change")}
                for role, s in run.policies.items()}

    def diff(done):
        instances = changed_before_after(done)
        return {side: {"instances": instances[side], "policies": {k: v[side] for k, v in policies.items() if v["change"]}}
                for side in ("before", "after")}

    exit_batch(module, valid, problems, batch_output(module, results, problems, diff=diff, policies=policies))


if __name__ == "__main__":
    main()
