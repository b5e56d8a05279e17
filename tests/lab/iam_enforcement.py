"""IAM enforcement at the lab's front door: a request is answered only if its caller's policies allow it.

It covers every service the lab serves, including the GuardDuty operations the lab answers itself,
which moto's own enforcement never sees. The caller is the IAM user or assumed role that owns the
request's access key in moto's IAM; the lab operator's key (`testing`, used by scenarios and tests
to set things up and inspect them) is exempt.

What is evaluated: identity policies (inline and attached, user groups included), by action, with
wildcards, Action/NotAction, Allow and Deny; and the Condition keys the lab computes from the request
itself (COMPUTED_KEYS: aws:RequestedRegion, and for EC2 aws:TagKeys and aws:RequestTag/<key> from Tag.N
and TagSpecification.N.Tag.M), with AWS's string, Null, IfExists and ForAllValues/ForAnyValue rules
(an absent key fails StringEquals, passes ForAllValues and the negated operators). As in EC2, a create
call with TagSpecification also needs ec2:CreateTags, evaluated with ec2:CreateAction set to the create
call (a direct CreateTags call has no ec2:CreateAction). As in EC2, associating an instance profile
(AssociateIamInstanceProfile, ReplaceIamInstanceProfileAssociation) also needs iam:PassRole, evaluated
with iam:PassedToService = ec2.amazonaws.com.

Not evaluated: Resource ARNs, and conditions on any other key (aws:ResourceTag/*, ...): such a
condition counts as met, so an Allow statement applies whatever its resources, and a Deny applies only
on Resource "*" with every condition computed and met. A run that passes here needs no action, and no
tag key, beyond its policy; resource-level scoping is reviewed by reading the policy (docs/iam/README.md).
"""

import fnmatch
import json
import re
import threading

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

OPERATOR_ACCESS_KEYS = frozenset(["testing"])
# IAM's action prefix where it differs from the SigV4 signing name
ACTION_PREFIX = {"elasticloadbalancing": "elasticloadbalancing", "monitoring": "cloudwatch"}
ALWAYS_ALLOWED = frozenset(["sts:GetCallerIdentity"])


class IamEnforcement:
    def __init__(self):
        self._lock = threading.Lock()
        self.enabled = False

    def configure(self, config):
        with self._lock:
            self.enabled = bool(config.get("enforce"))
        return self.describe()

    def describe(self):
        return {"enforce": self.enabled}

    def check(self, req):
        """None when allowed; (status, code, message) when the caller's policies do not allow it."""
        if not self.enabled or not req.action or req.access_key in OPERATOR_ACCESS_KEYS:
            return None
        action = f"{ACTION_PREFIX.get(req.signing_name, req.signing_name)}:{req.action}"
        principal, documents = caller_policies(req.account, req.access_key)
        if principal is None:
            # An access key no user or session owns is refused before any policy, GetCallerIdentity included:
            # "No permissions are required" for it (STS API reference, GetCallerIdentity), but the key must be
            # valid; AWS answers HTTP 403 InvalidClientTokenId (STS API reference, Common Errors).
            return 403, "InvalidClientTokenId", "The security token included in the request is invalid."
        if action in ALWAYS_ALLOWED:
            return None
        context = request_context(req)
        if evaluate(documents, action, context):
            action = implied_action_denied(req, documents, context)
            if action is None:
                return None
        code = {"ec2": "UnauthorizedOperation"}.get(req.protocol) or (
            "AccessDenied" if req.protocol in ("query", "rest-xml") else "AccessDeniedException")
        message = (f"User: {principal} is not authorized to perform: {action} because no identity-based policy "
                   "allows the action")
        if req.protocol == "ec2":
            message = "You are not authorized to perform this operation. " + message
        return 403, code, message


def caller_policies(account, access_key):
    """(principal ARN, [policy document dicts]) for an access key, or (None, [])."""
    iam = iam_backends[account]["aws"]
    for user in list(iam.users.values()):
        if any(k.access_key_id == access_key for k in user.access_keys):
            docs = [_document(iam.get_user_policy(user.name, n)) for n in iam.list_user_policies(user.name)]
            docs += [_document(p) for p in iam.list_attached_user_policies(user.name)[0]]
            for group in iam.get_groups_for_user(user.name):
                docs += [_document(iam.get_group_policy(group.name, n)) for n in iam.list_group_policies(group.name)]
                docs += [_document(p) for p in iam.list_attached_group_policies(group.name)[0]]
            return user.arn, docs
    for assumed in list(sts_backends[account]["aws"].assumed_roles):
        if assumed.access_key_id == access_key:
            role_name = assumed.role_arn.split("/")[-1]
            try:
                names = iam.list_role_policies(role_name)
            except Exception:  # the role was deleted after the session was issued
                return assumed.arn, []
            docs = [_document(iam.get_role_policy(role_name, n)[1]) for n in names]
            docs += [_document(p) for p in iam.list_attached_role_policies(role_name)[0]]
            return assumed.arn, docs
    return None, []


def _document(policy):
    """A policy document dict from what moto's IAM backend returns (text, dict, or a managed policy)."""
    if hasattr(policy, "versions"):
        policy = next(v.document for v in policy.versions if v.is_default)
    elif isinstance(policy, dict) and "policy_document" in policy:
        policy = policy["policy_document"]
    return json.loads(policy) if isinstance(policy, str) else policy


def _listify(value):
    return value if isinstance(value, list) else [value]


def _matches(patterns, action):
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in _listify(patterns))


# Condition keys computed from the request; a condition on another key is not evaluated (counts as met).
COMPUTED_KEYS = ("aws:requestedregion", "aws:tagkeys", "aws:requesttag/", "ec2:createaction", "iam:passedtoservice")
# EC2 calls that hand a role to EC2: the caller also needs iam:PassRole on the profile's role
PASSES_ROLE_TO_EC2 = frozenset(["AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"])
def implied_action_denied(req, documents, context):
    """The permission an allowed EC2 call also needs and the caller lacks, or None. Handing a role to EC2
    needs iam:PassRole (iam:PassedToService ec2.amazonaws.com); tags given at creation need ec2:CreateTags,
    with ec2:CreateAction naming the create call."""
    if req.protocol != "ec2":
        return None
    if req.action in PASSES_ROLE_TO_EC2 and not evaluate(
            documents, "iam:PassRole", dict(context, **{"iam:passedtoservice": ["ec2.amazonaws.com"]})):
        return "iam:PassRole"
    if any(k.startswith("TagSpecification.") for k in req.params or {}) and not evaluate(
            documents, "ec2:CreateTags", dict(context, **{"ec2:createaction": [req.action]})):
        return "ec2:CreateTags"
    return None


EC2_TAG_KEY = re.compile(r"^((?:TagSpecification\.\d+\.)?Tag\.\d+\.)Key$")


def request_context(req):
    """{lower-cased condition key: [values]} of what the request itself says (see COMPUTED_KEYS)."""
    context = {"aws:requestedregion": [req.region]}
    if req.protocol == "ec2":
        keys = []
        for name, key in (req.params or {}).items():
            match = EC2_TAG_KEY.match(name)
            if not match:
                continue
            keys.append(key)
            value = req.params.get(match.group(1) + "Value")
            if value is not None:
                context[f"aws:requesttag/{key}".lower()] = [value]
        if keys:
            context["aws:tagkeys"] = sorted(set(keys))
    return context


def _computed(key):
    key = key.lower()
    return any(key == k or (k.endswith("/") and key.startswith(k)) for k in COMPUTED_KEYS)


def _string_like(value, pattern):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


STRING_OPERATORS = {
    "StringEquals": lambda v, e: v == e,
    "StringEqualsIgnoreCase": lambda v, e: v.lower() == e.lower(),
    "StringLike": _string_like,
}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike"}


def condition_met(condition, context):
    """False only when a computed key fails its test; keys the lab does not compute count as met."""
    if context is None:
        return True
    for operator, pairs in (condition or {}).items():
        qualifier, _sep, name = operator.rpartition(":")
        if_exists = name.endswith("IfExists")
        name = name[:-len("IfExists")] if if_exists else name
        for key, expected in (pairs or {}).items():
            if not _computed(key):
                continue
            values = context.get(key.lower())
            expected = [str(e) for e in _listify(expected)]
            if name == "Null":
                if (values is None) != (expected[0].lower() == "true"):
                    return False
                continue
            negated = name in NEGATED
            test = STRING_OPERATORS.get(NEGATED.get(name, name))
            if test is None:  # an operator the lab does not know: not evaluated
                continue
            if values is None:
                if not (if_exists or negated or qualifier == "ForAllValues"):
                    return False
                continue

            def value_ok(value, test=test, negated=negated, expected=expected):
                return any(test(value, e) for e in expected) != negated

            met = all(map(value_ok, values)) if qualifier == "ForAllValues" else any(map(value_ok, values))
            if not met:
                return False
    return True


def _all_conditions_computed(condition):
    return all(_computed(key) for pairs in (condition or {}).values() for key in (pairs or {}))


def evaluate(documents, action, context=None):
    """True when an Allow statement matches the action (and its computed conditions hold), and no Deny does.

    Without a context (None) conditions are not evaluated at all."""
    allowed = False
    for document in documents:
        for statement in _listify(document.get("Statement", [])):
            if "NotAction" in statement:
                concerned = not _matches(statement["NotAction"], action)
            else:
                concerned = _matches(statement.get("Action", []), action)
            if not concerned:
                continue
            condition = statement.get("Condition")
            if statement.get("Effect") == "Deny":
                if "*" not in _listify(statement.get("Resource", "*")):
                    continue
                if not condition or (context is not None and _all_conditions_computed(condition)
                                     and condition_met(condition, context)):
                    return False
            elif statement.get("Effect") == "Allow" and condition_met(condition, context):
                allowed = True
    return allowed
