"""IAM enforcement at the lab's front door: a request is answered only if its caller's policies allow it.

It covers every service the lab serves, including the GuardDuty operations the lab answers itself,
which moto's own enforcement never sees. The caller is the IAM user or assumed role that owns the
request's access key in moto's IAM; the lab operator's key (`testing`, used by scenarios and tests
to set things up and inspect them) is exempt.

What is evaluated: identity policies (inline and attached, user groups included), by action, with
wildcards, Action/NotAction, Allow and Deny. Resource ARNs and Condition blocks are not evaluated: an
Allow statement counts whatever its resources and conditions, and only an unconditional Deny on
"*" denies. So a run that passes here needs no action beyond its policy; resource-level scoping is
reviewed by reading the policy (docs/iam/).
"""

import fnmatch
import json
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
        if action in ALWAYS_ALLOWED:
            return None
        principal, documents = caller_policies(req.account, req.access_key)
        if principal is None:
            return 403, "InvalidClientTokenId", "The security token included in the request is invalid."
        if evaluate(documents, action):
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


def evaluate(documents, action):
    allowed = False
    for document in documents:
        for statement in _listify(document.get("Statement", [])):
            if "NotAction" in statement:
                concerned = not _matches(statement["NotAction"], action)
            else:
                concerned = _matches(statement.get("Action", []), action)
            if not concerned:
                continue
            if statement.get("Effect") == "Deny":
                if not statement.get("Condition") and "*" in _listify(statement.get("Resource", "*")):
                    return False
            elif statement.get("Effect") == "Allow":
                allowed = True
    return allowed
