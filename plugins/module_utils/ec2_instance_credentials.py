# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Cutting a compromised instance's AWS credentials without touching the healthy instances that share its role.

Two things together (issue 6):
  1. deny   an inline policy on the role (QUARANTINE_POLICY) denying every request whose credentials were
            issued to the compromised instances (condition key ec2:SourceInstanceARN, which EC2 role
            credentials carry wherever they are used from), plus a statement denying those instances'
            sessions issued before the cut (aws:TokenIssueTime), which is what stays meaningful for
            credentials copied off the instance;
  2. profile the instance profile disassociated (or replaced by a quarantine profile), so the instance
            gets no new credentials from IMDS.
Before any change the original association (read from AWS, never from a tag) is recorded in the incident
store, then in instance tags (RECORD_TAG, the hint to resume, cross-checked), so release puts the profile back
and removes only this instance's ARN from the policy (the policy goes when empty).

Planning is pure (described state in, calls out); the AWS layer at the bottom makes the calls.
"""

import json

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter

QUARANTINE_POLICY = "GuardDutyQuarantine"
RECORD_TAG = "guardduty:credentials-record"  # continued in RECORD_TAG + ":2", ":3"... when longer than a tag value
TAG_VALUE_MAX = 256
INLINE_POLICIES_MAX = 10240  # IAM: total size of a role's inline policies, whitespace not counted
SOURCE_ARN_KEY = "ec2:SourceInstanceARN"
ISSUE_TIME_KEY = "aws:TokenIssueTime"
SID_QUARANTINE = "GuardDutyQuarantineInstances"
SID_REVOKE_PREFIX = "GuardDutyRevokeSessionsIssuedBefore"
DISASSOCIATE = "disassociate"
REPLACE = "replace"


class CredentialsPlanError(ValueError):
    """Input a plan cannot be built from (an unreadable record or policy, a policy too large)."""


# -- names --------------------------------------------------------------------------------------
def arn_parts(arn):
    """(partition, account) of an ARN."""
    parts = str(arn).split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise CredentialsPlanError(f"not an ARN: {arn!r}")
    return parts[1], parts[4]


def instance_arn(partition, region, account, instance_id):
    return f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"


def profile_name(profile_arn):
    """The instance profile's name: the last segment of its ARN (a path may precede it)."""
    return str(profile_arn).rsplit("/", 1)[-1]


def compact(document):
    return json.dumps(document, separators=(",", ":"), sort_keys=False)


# -- the record ---------------------------------------------------------------------------------
# {"p": original profile ARN, "a": original association id, "r": role name, "t": cut time,
#  "m": "disassociate" | "replace", "q": quarantine profile ARN or null}

def _compact_record(record):
    return {"p": record["profile_arn"], "a": record["association_id"], "r": record["role"], "t": record["cut_at"],
            "m": record["mode"], "q": record.get("quarantine_profile_arn")}


def encode_record(record):
    return records.encode(RECORD_TAG, _compact_record(record))


def record_tag_keys(tags):
    return records.keys(tags, RECORD_TAG)


def decode_record(tags):
    """The record in the instance's tags ({key: value}), or None; CredentialsPlanError when unreadable."""
    try:
        data = records.decode(tags, RECORD_TAG)
    except records.RecordError as exc:
        raise CredentialsPlanError(str(exc)) from None
    if data is None:
        return None
    return record_from_data(data, record_tag_keys(tags))


def record_from_data(data, where=(RECORD_TAG,)):
    try:
        return {"profile_arn": data["p"], "association_id": data["a"], "role": data["r"], "cut_at": data["t"],
                "mode": data["m"], "quarantine_profile_arn": data.get("q")}
    except (KeyError, TypeError) as exc:
        raise CredentialsPlanError(f"unreadable credentials record in tags {', '.join(where)}: {exc}") from None


# -- the deny policy ----------------------------------------------------------------------------
def _as_list(value):
    return [value] if isinstance(value, str) else list(value or [])


def read_policy(document):
    """{"quarantined": set of ARNs, "revoked": {cut time: set of ARNs}, "foreign": [statements]}.

    Statements this module did not write (by Sid) are kept as they are, never dropped.
    """
    model = {"quarantined": set(), "revoked": {}, "foreign": []}
    if not document:
        return model
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        sid = statement.get("Sid") or ""
        condition = statement.get("Condition") or {}
        arns = set(_as_list((condition.get("StringEquals") or {}).get(SOURCE_ARN_KEY)))
        if sid == SID_QUARANTINE and arns:
            model["quarantined"] |= arns
        elif sid.startswith(SID_REVOKE_PREFIX) and arns and (condition.get("DateLessThan") or {}).get(ISSUE_TIME_KEY):
            cut_at = condition["DateLessThan"][ISSUE_TIME_KEY]
            model["revoked"].setdefault(cut_at, set()).update(arns)
        else:
            model["foreign"].append(statement)
    return model


def _deny(sid, condition):
    return {"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition}


def render_policy(model):
    """The policy document for the model (statements in a stable order), or None when it denies nothing."""
    statements = []
    if model["quarantined"]:
        statements.append(_deny(SID_QUARANTINE, {"StringEquals": {SOURCE_ARN_KEY: sorted(model["quarantined"])}}))
    for cut_at in sorted(model["revoked"]):
        if model["revoked"][cut_at]:
            sid = SID_REVOKE_PREFIX + "".join(c for c in cut_at if c.isalnum())
            statements.append(_deny(sid, {"DateLessThan": {ISSUE_TIME_KEY: cut_at},
                                          "StringEquals": {SOURCE_ARN_KEY: sorted(model["revoked"][cut_at])}}))
    statements.extend(model["foreign"])
    if not statements:
        return None
    return {"Version": "2012-10-17", "Statement": statements}


def policy_size(document):
    return len(compact(document)) if document else 0


def plan_role_policy(role, current_document, other_policies_size, add, remove, keep_revocation=False):
    """(new document or None, change) for one role.

    add: {instance ARN: cut time} to deny; remove: instance ARNs to release (their revocation statement
    stays when keep_revocation). change is None (nothing to do), "put" or "delete".
    Raises CredentialsPlanError when the result would exceed IAM's inline-policy size for the role.
    """
    model = read_policy(current_document)
    before = render_policy(model)
    for arn, cut_at in add.items():
        model["quarantined"].add(arn)
        if not any(arn in arns for arns in model["revoked"].values()):
            model["revoked"].setdefault(cut_at, set()).add(arn)
    for arn in remove:
        model["quarantined"].discard(arn)
        if not keep_revocation:
            for arns in model["revoked"].values():
                arns.discard(arn)
    after = render_policy(model)
    if after == before:
        return after, None
    if after is None:
        return None, "delete"
    size = policy_size(after) + other_policies_size
    if size > INLINE_POLICIES_MAX:
        raise CredentialsPlanError(
            f"role {role}: the {QUARANTINE_POLICY} policy would bring the role's inline policies to {size} characters, "
            f"over IAM's {INLINE_POLICIES_MAX}; release instances of this role or cut fewer at once")
    return after, "put"


# -- per instance -------------------------------------------------------------------------------
def association_view(association):
    if not association:
        return None
    return {"association_id": association["AssociationId"], "profile_arn": association["IamInstanceProfile"]["Arn"],
            "state": association.get("State")}


def plan_cut(instance_id, association, record, role, cut_at, mode, quarantine_profile_arn):
    """What cutting one instance takes: {"record", "tags", "association_calls", "after"}.

    association: its current association view (or None); record: its decoded record (or None);
    role: the role name of the profile to cut (from the record, or the current profile's role).
    """
    current_arn = association["profile_arn"] if association else None
    plan = {"record": record, "tags": None, "association_calls": [], "deny": True, "before": current_arn, "after": current_arn}
    if record is None:
        if association is None:
            plan["deny"] = False  # no profile: this instance holds no role credentials to cut
            return plan
        record = {"profile_arn": association["profile_arn"], "association_id": association["association_id"],
                  "role": role, "cut_at": cut_at, "mode": mode,
                  "quarantine_profile_arn": quarantine_profile_arn if mode == REPLACE else None}
        plan["record"] = record
        plan["tags"] = encode_record(record)
    if mode == REPLACE:
        if current_arn is None:
            plan["association_calls"].append(("AssociateIamInstanceProfile", {
                "InstanceId": instance_id, "IamInstanceProfile": {"Arn": quarantine_profile_arn}}))
        elif current_arn != quarantine_profile_arn:
            plan["association_calls"].append(("ReplaceIamInstanceProfileAssociation", {
                "AssociationId": association["association_id"], "IamInstanceProfile": {"Arn": quarantine_profile_arn}}))
        plan["after"] = quarantine_profile_arn
    else:
        if current_arn is not None:
            plan["association_calls"].append(("DisassociateIamInstanceProfile",
                                              {"AssociationId": association["association_id"]}))
        plan["after"] = None
    return plan


def plan_release(instance_id, association, record, record_keys):
    """What releasing one instance takes: {"association_calls", "delete_tags", "after"}; CredentialsPlanError
    when the instance now has a profile that is neither its original nor its quarantine profile."""
    current_arn = association["profile_arn"] if association else None
    plan = {"association_calls": [], "delete_tags": None, "before": current_arn, "after": current_arn}
    if record is None:
        return plan
    if current_arn is None:
        plan["association_calls"].append(("AssociateIamInstanceProfile", {
            "InstanceId": instance_id, "IamInstanceProfile": {"Arn": record["profile_arn"]}}))
    elif current_arn != record["profile_arn"]:
        if current_arn != record.get("quarantine_profile_arn"):
            raise CredentialsPlanError(
                f"instance profile is now {current_arn}, neither the original {record['profile_arn']} nor the "
                f"quarantine profile; left as it is")
        plan["association_calls"].append(("ReplaceIamInstanceProfileAssociation", {
            "AssociationId": association["association_id"], "IamInstanceProfile": {"Arn": record["profile_arn"]}}))
    plan["after"] = record["profile_arn"]
    plan["delete_tags"] = {"Resources": [instance_id], "Tags": [{"Key": k} for k in record_keys]}
    return plan


def describe_call(call):
    return aws_calls.describe_call(call)


# -- AWS ----------------------------------------------------------------------------------------

def describe_associations(ec2, instance_ids):
    """{instance_id: association} of the instances' current (associating or associated) profile associations."""
    found = {}
    for association in describe_by_filter(ec2, "DescribeIamInstanceProfileAssociations", "IamInstanceProfileAssociations",
                                          "instance-id", instance_ids,
                                          filters=[{"Name": "state", "Values": ["associating", "associated"]}]):
        if association.get("State", "associated") in ("associating", "associated"):
            found[association["InstanceId"]] = association
    return found


def get_instance_profile(iam, name_or_arn):
    """The instance profile (GetInstanceProfile's InstanceProfile), or None when it does not exist."""
    try:
        return aws_calls.call(iam, "GetInstanceProfile", InstanceProfileName=profile_name(name_or_arn))["InstanceProfile"]
    except is_boto3_error_code("NoSuchEntity"):
        return None


def read_role_inline_policies(iam, role):
    """{policy name: document (dict)} of the role's inline policies."""
    out = {}
    for name in aws_calls.items(iam, "ListRolePolicies", "PolicyNames", RoleName=role):
        document = aws_calls.call(iam, "GetRolePolicy", RoleName=role, PolicyName=name)["PolicyDocument"]
        out[name] = json.loads(document) if isinstance(document, str) else document
    return out


def put_role_policy(iam, role, document):
    return aws_calls.call(iam, "PutRolePolicy", RoleName=role, PolicyName=QUARANTINE_POLICY, PolicyDocument=compact(document))


def delete_role_policy(iam, role):
    return aws_calls.call(iam, "DeleteRolePolicy", RoleName=role, PolicyName=QUARANTINE_POLICY)


def ec2_call(ec2, action, params):
    return aws_calls.call(ec2, action, **params)
