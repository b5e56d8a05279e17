"""IAM enforcement at the lab's front door: a request is answered only if its caller's policies allow it.

It covers every service the lab serves, including the GuardDuty operations the lab answers itself,
which moto's own enforcement never sees. The caller is the IAM user or assumed role that owns the
request's access key in moto's IAM; the lab operator's key (`testing`, used by scenarios and tests
to set things up and inspect them) is exempt.

What is evaluated, with AWS's policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
- identity policies (inline and attached, user groups included) and, for a member account, the service
  control policies set with POST /_lab/iam {"scp": {ACCOUNT: [documents]}}: an explicit Deny in any of
  them wins; otherwise the identity policies AND the account's SCPs must each allow the request (an SCP
  set replaces FullAWSAccess, so attach {"Effect": "Allow", "Action": "*", "Resource": "*"} beside a
  deny-list guardrail, as AWS Organizations does by default);
- Action/NotAction with wildcards, Resource/NotResource against the ARNs of the resources the request
  touches (`request_resources`, per action as the Service Authorization Reference defines them,
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html and the pages of
  IAM, STS, GuardDuty, Auto Scaling and ELB): each resource must be allowed, and a Deny on any one of them
  refuses the request. An action the lab has no resource builder for is evaluated without its resources
  (any Resource matches); `test_iam_enforcement` checks every action the shipped policies scope has one;
- the condition keys of COMPUTED_KEYS: aws:RequestedRegion, aws:PrincipalArn, aws:PrincipalAccount,
  aws:TagKeys and aws:RequestTag/<key> (EC2 Tag.N, TagSpecification.N.Tag.M), aws:ResourceTag/<key> (the
  tags the resource has in the lab when the request arrives), ec2:CreateAction, iam:PassedToService,
  iam:AWSServiceName, and ec2:SourceInstanceARN (a session of a role whose session name is an instance id
  of the account: the name EC2 gives instance-profile sessions), with the operators StringEquals/Not/
  IgnoreCase/Like/NotLike, ArnEquals/ArnLike/ArnNotEquals/ArnNotLike, Bool, Null, the IfExists suffix and
  the ForAllValues/ForAnyValue qualifiers (an absent key fails StringEquals and ForAnyValue, passes
  ForAllValues and the negated operators).
As in EC2, a create call with TagSpecification also needs ec2:CreateTags on the created resource, with
ec2:CreateAction set to the create call; associating an instance profile also needs iam:PassRole on the
profile's role with iam:PassedToService = ec2.amazonaws.com.

Not evaluated: other condition keys (a condition on one counts as met in an Allow, and a Deny applies only
when every key of its condition is computed), resource-based and trust policies, permission boundaries.
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
# Amazon S3 authorizes some operations with an IAM action of another name (Service Authorization Reference,
# "Actions defined by Amazon S3", and the S3 API reference's "Permissions" of each operation): a policy names
# s3:ListBucket, never s3:ListObjectsV2. Every other operation is its own action (s3:PutObject, s3:GetObject...).
S3_OPERATION_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject", "GetObjectAttributes": "s3:GetObject", "DeleteObjects": "s3:DeleteObject",
    "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
    "ListObjectVersions": "s3:ListBucketVersions", "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListParts": "s3:ListMultipartUploadParts",
}


def iam_action(req):
    """The IAM action a request is authorized as: `service:Operation`, except S3's renamed ones."""
    if req.signing_name == "s3" and req.action in S3_OPERATION_ACTIONS:
        return S3_OPERATION_ACTIONS[req.action]
    return f"{ACTION_PREFIX.get(req.signing_name, req.signing_name)}:{req.action}"
PARTITION = "aws"
# The lab's organization management account: SCPs never apply to it (AWS Organizations).
MANAGEMENT_ACCOUNT = "123456789012"


class IamEnforcement:
    def __init__(self):
        self._lock = threading.Lock()
        self.enabled = False
        self.scps = {}

    def configure(self, config):
        with self._lock:
            if "enforce" in config:
                self.enabled = bool(config.get("enforce"))
            if "scp" in config:
                scps = config.get("scp") or {}
                if MANAGEMENT_ACCOUNT in scps:
                    raise ValueError("SCPs do not apply to the organization's management account")
                self.scps = {account: [d for d in _listify(docs)] for account, docs in scps.items()}
        return self.describe()

    def describe(self):
        return {"enforce": self.enabled, "scp": self.scps}

    def check(self, req):
        """None when allowed; (status, code, message) when the caller's policies do not allow it."""
        if not self.enabled or not req.action or req.access_key in OPERATOR_ACCESS_KEYS:
            return None
        action = iam_action(req)
        principal, documents = caller_policies(req.account, req.access_key)
        if principal is None:
            # An access key no user or session owns is refused before any policy, GetCallerIdentity included:
            # "No permissions are required" for it (STS API reference, GetCallerIdentity), but the key must be
            # valid; AWS answers HTTP 403 InvalidClientTokenId (STS API reference, Common Errors).
            return 403, "InvalidClientTokenId", "The security token included in the request is invalid."
        if action in ALWAYS_ALLOWED:
            return None
        context = request_context(req, principal)
        scps = self.scps.get(req.account)
        refused = None
        for needed, resources, extra in required_permissions(req, action):
            ctx = dict(context, **extra)
            verdict = decide(documents, needed, ctx, resources)
            scp_verdict = decide(scps, needed, ctx, resources) if scps is not None else "allow"
            if verdict != "allow" or scp_verdict != "allow":
                refused = (needed, "deny" in (verdict, scp_verdict), verdict != "allow")
                break
        if refused is None:
            return None
        needed, explicit, by_identity = refused
        code = {"ec2": "UnauthorizedOperation"}.get(req.protocol) or (
            "AccessDenied" if req.protocol in ("query", "rest-xml") else "AccessDeniedException")
        if explicit:
            why = "with an explicit deny in " + ("an identity-based policy" if by_identity
                                                  else "a service control policy")
        else:
            why = ("because no identity-based policy allows the action" if by_identity
                   else "because no service control policy allows the action")
        message = f"User: {principal} is not authorized to perform: {needed} {why}"
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


def _session(account, access_key):
    for assumed in list(sts_backends[account]["aws"].assumed_roles):
        if assumed.access_key_id == access_key:
            return assumed
    return None


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


# -- the request's context --------------------------------------------------------------------------------
# Condition keys the lab computes; a condition on another key is not evaluated (see the module docstring).
COMPUTED_KEYS = ("aws:requestedregion", "aws:principalarn", "aws:principalaccount", "aws:tagkeys",
                 "aws:requesttag/", "aws:resourcetag/", "ec2:createaction", "iam:passedtoservice",
                 "iam:awsservicename", "ec2:sourceinstancearn")
EC2_TAG_KEY = re.compile(r"^((?:TagSpecification\.\d+\.)?Tag\.\d+\.)Key$")
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")


def principal_arn(principal):
    """aws:PrincipalArn: the role's ARN for an assumed-role session, the user's ARN for a user."""
    match = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/", principal)
    if match:
        partition, account, role = match.groups()
        try:
            return iam_backends[account][partition].get_role(role).arn
        except Exception:
            return f"arn:{partition}:iam::{account}:role/{role}"
    return principal


def request_context(req, principal=""):
    """{lower-cased condition key: [values]} of what the request and its caller say (see COMPUTED_KEYS)."""
    context = {"aws:requestedregion": [req.region]}
    if principal:
        context["aws:principalarn"] = [principal_arn(principal)]
        context["aws:principalaccount"] = [req.account]
        session = _session(req.account, req.access_key)
        if session is not None and INSTANCE_ID.match(session.session_name or ""):
            region = _region_of_instance(req.account, session.session_name)
            if region:
                context["ec2:sourceinstancearn"] = [_ec2_arn(region, req.account, "instance", session.session_name)]
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
    if req.action == "CreateServiceLinkedRole" and (req.params or {}).get("AWSServiceName"):
        context["iam:awsservicename"] = [req.params["AWSServiceName"]]
    return context


def _computed(key):
    key = key.lower()
    return any(key == k or (k.endswith("/") and key.startswith(k)) for k in COMPUTED_KEYS)


# -- conditions -------------------------------------------------------------------------------------------
def _string_like(value, pattern, ignore_case=False):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def arn_like(arn, pattern):
    """ArnLike / Resource matching: each of the six colon-separated parts matched on its own, with * and ?."""
    if pattern == "*":
        return True
    arn_parts, pattern_parts = str(arn).split(":", 5), str(pattern).split(":", 5)
    if len(arn_parts) != 6 or len(pattern_parts) != 6:
        return _string_like(str(arn), str(pattern))
    return all(_string_like(a, p) for a, p in zip(arn_parts, pattern_parts))


TESTS = {
    "StringEquals": lambda v, e: v == e,
    "StringEqualsIgnoreCase": lambda v, e: v.lower() == e.lower(),
    "StringLike": _string_like,
    "ArnEquals": arn_like,
    "ArnLike": arn_like,
    "Bool": lambda v, e: v.lower() == e.lower(),
}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


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
            test = TESTS.get(NEGATED.get(name, name))
            if test is None:  # an operator the lab does not know: not evaluated
                continue
            if values is None:
                # an absent key: only the negated operators, IfExists and ForAllValues hold
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


# -- evaluation -------------------------------------------------------------------------------------------
def _statement_resource_matches(statement, arn):
    if arn is None:  # the lab has no resource builder for this action: any Resource matches
        return True
    if "NotResource" in statement:
        return not any(arn_like(arn, p) for p in _listify(statement["NotResource"]))
    return any(arn_like(arn, p) for p in _listify(statement.get("Resource", "*")))


def _resource_context(context, tags):
    if context is None:
        return None
    out = dict(context)
    for key, value in (tags or {}).items():
        out[f"aws:resourcetag/{key}".lower()] = [value]
    return out


def decide(documents, action, context=None, resources=None):
    """"allow", "deny" (an explicit Deny applies) or "implicit" (nothing allows) for one permission.

    `resources`: [(ARN, {tag: value} or None)] the request touches, or None when the lab does not know
    them (any Resource matches). Each resource must be allowed by some statement; a Deny matching any one
    refuses the request. Without a context (None) conditions are not evaluated at all."""
    resources = resources if resources else [(None, None)]
    all_allowed = True
    for arn, tags in resources:
        ctx = _resource_context(context, tags)
        allowed = False
        for document in documents or []:
            for statement in _listify(document.get("Statement", [])):
                if "NotAction" in statement:
                    concerned = not _matches(statement["NotAction"], action)
                else:
                    concerned = _matches(statement.get("Action", []), action)
                if not concerned or not _statement_resource_matches(statement, arn):
                    continue
                condition = statement.get("Condition")
                if statement.get("Effect") == "Deny":
                    if not condition or (ctx is not None and _all_conditions_computed(condition)
                                         and condition_met(condition, ctx)):
                        return "deny"
                elif statement.get("Effect") == "Allow" and condition_met(condition, ctx):
                    allowed = True
        all_allowed = all_allowed and allowed
    return "allow" if all_allowed else "implicit"


def evaluate(documents, action, context=None, resources=None):
    """True when the documents allow the permission (see `decide`)."""
    return decide(documents, action, context, resources) == "allow"


# -- what a request needs ---------------------------------------------------------------------------------
# EC2 calls that hand a role to EC2: the caller also needs iam:PassRole on the profile's role
PASSES_ROLE_TO_EC2 = frozenset(["AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"])
TAG_SPECIFICATION_TYPE = re.compile(r"^TagSpecification\.(\d+)\.ResourceType$")


def required_permissions(req, action):
    """[(permission, resources, extra context)] the request needs, the call's own first. Handing a role to
    EC2 needs iam:PassRole (iam:PassedToService ec2.amazonaws.com); tags given at creation need
    ec2:CreateTags on the created resource, with ec2:CreateAction naming the create call."""
    needed = [(action, request_resources(req), {})]
    if req.protocol != "ec2":
        return needed
    params = req.params or {}
    if req.action in PASSES_ROLE_TO_EC2:
        needed.append(("iam:PassRole", _passed_roles(req), {"iam:passedtoservice": ["ec2.amazonaws.com"]}))
    types = sorted({v for k, v in params.items() if TAG_SPECIFICATION_TYPE.match(k)})
    if any(k.startswith("TagSpecification.") for k in params):
        created = [(_ec2_arn(req.region, req.account, t, "*"), None) for t in types] or None
        needed.append(("ec2:CreateTags", created, {"ec2:createaction": [req.action]}))
    return needed


# Resource types whose EC2 ARN has no account (Service Authorization Reference, Amazon EC2 resource types)
EC2_ARN_WITHOUT_ACCOUNT = frozenset(["snapshot", "image"])
EC2_ID_PREFIX = {"i": "instance", "eni": "network-interface", "sg": "security-group", "subnet": "subnet",
                 "vpc": "vpc", "vol": "volume", "snap": "snapshot", "acl": "network-acl", "eipalloc": "elastic-ip",
                 "ami": "image", "rtb": "route-table", "igw": "internet-gateway", "nat": "natgateway",
                 "lt": "launch-template", "key": "key-pair", "vpce": "vpc-endpoint"}


def _ec2_arn(region, account, resource_type, resource_id):
    account = "" if resource_type in EC2_ARN_WITHOUT_ACCOUNT else account
    return f"arn:{PARTITION}:ec2:{region}:{account}:{resource_type}/{resource_id}"


def _ec2(req):
    from moto.ec2.models import ec2_backends
    return ec2_backends[req.account][req.region]


def _ec2_tags(backend, resource_id):
    return dict(backend.tags[resource_id]) if resource_id in backend.tags else {}


def _ec2_resource(req, resource_id):
    """(ARN, tags) of an EC2 resource named by its id."""
    backend = _ec2(req)
    resource_type = EC2_ID_PREFIX.get(str(resource_id).split("-", 1)[0], "*")
    return _ec2_arn(req.region, req.account, resource_type, resource_id), _ec2_tags(backend, resource_id)


def _numbered(params, prefix):
    """Values of a query list parameter (Prefix.1, Prefix.2, ...), in order."""
    found = [(int(k[len(prefix) + 1:]), v) for k, v in params.items()
             if k.startswith(prefix + ".") and k[len(prefix) + 1:].isdigit()]
    return [v for _n, v in sorted(found)]


def _region_of_instance(account, instance_id):
    from moto.ec2.models import ec2_backends
    for region, backend in list(ec2_backends[account].items()):
        try:
            backend.get_instance(instance_id)
            return region
        except Exception:
            continue
    return None


def _instance_of_association(req, association_id):
    for instance_id, association in list(_ec2(req).iam_instance_profile_associations.items()):
        if association.id == association_id:
            return instance_id
    return None


def _passed_roles(req):
    params = req.params or {}
    iam = iam_backends[req.account][PARTITION]
    arn, name = params.get("IamInstanceProfile.Arn"), params.get("IamInstanceProfile.Name")
    try:
        profile = iam.get_instance_profile_by_arn(arn) if arn else iam.get_instance_profile(name)
    except Exception:
        return None
    return [(role.arn, None) for role in profile.roles] or None


def _ec2_instance_resources(req, instance_ids):
    return [_ec2_resource(req, i) for i in instance_ids if i]


def _resources_modify_network_interface(req):
    params = req.params
    out = [_ec2_resource(req, params.get("NetworkInterfaceId"))]
    out += [_ec2_resource(req, g) for g in _numbered(params, "SecurityGroupId")]
    return out


def _resources_create_snapshots(req):
    instance_id = req.params.get("InstanceSpecification.InstanceId")
    out = [_ec2_resource(req, instance_id)]
    try:
        instance = _ec2(req).get_instance(instance_id)
        out += [_ec2_resource(req, d.volume_id) for d in instance.block_device_mapping.values()]
    except Exception:
        pass
    return out + [(_ec2_arn(req.region, req.account, "snapshot", "*"), None)]


def _resources_address(req):
    params, backend = req.params, _ec2(req)
    allocation = params.get("AllocationId")
    if not allocation and params.get("AssociationId"):
        allocation = next((a.allocation_id for a in backend.addresses
                           if a.association_id == params["AssociationId"]), None)
    out = [_ec2_resource(req, allocation)] if allocation else []
    for key in ("InstanceId", "NetworkInterfaceId"):
        if params.get(key):
            out.append(_ec2_resource(req, params[key]))
    return out or None


def _autoscaling_group(req):
    from moto.autoscaling.models import autoscaling_backends
    group = autoscaling_backends[req.account][req.region].autoscaling_groups.get(req.params.get("AutoScalingGroupName"))
    return [(group.arn, None)] if group is not None else None


def _iam_role(req):
    try:
        return [(iam_backends[req.account][PARTITION].get_role(req.params.get("RoleName")).arn, None)]
    except Exception:
        return [(f"arn:{PARTITION}:iam::{req.account}:role/{req.params.get('RoleName')}", None)]


def _iam_instance_profile(req):
    try:
        return [(iam_backends[req.account][PARTITION].get_instance_profile(req.params.get("InstanceProfileName")).arn,
                 None)]
    except Exception:
        return [(f"arn:{PARTITION}:iam::{req.account}:instance-profile/{req.params.get('InstanceProfileName')}", None)]


# IAM names service-linked roles after the service (IAM User Guide, Using service-linked roles)
SERVICE_LINKED_ROLE_NAMES = {
    "malware-protection.guardduty.amazonaws.com": "AWSServiceRoleForAmazonGuardDutyMalwareProtection"}


def _service_linked_role(req):
    service = req.params.get("AWSServiceName", "")
    name = SERVICE_LINKED_ROLE_NAMES.get(service, "*")
    return [(f"arn:{PARTITION}:iam::{req.account}:role/aws-service-role/{service}/{name}", None)]


def _guardduty_detector(req):
    match = re.search(r"/detector/([^/]+)", req.path)
    if not match:
        return None
    return [(f"arn:{PARTITION}:guardduty:{req.region}:{req.account}:detector/{match.group(1)}", None)]


def _s3_object(req):
    parts = req.path.lstrip("/").split("/", 1)
    if len(parts) != 2:
        return None
    return [(f"arn:{PARTITION}:s3:::{parts[0]}/{parts[1]}", None)]


def _s3_bucket(req):
    """s3:ListBucket is authorized on the bucket (Service Authorization Reference, Amazon S3: resource type
    bucket, arn:${Partition}:s3:::${BucketName}); path-style requests name it first."""
    bucket = req.path.lstrip("/").split("/", 1)[0]
    return [(f"arn:{PARTITION}:s3:::{bucket}", None)] if bucket else None


def _sqs_queue(req):
    """The queue (Service Authorization Reference, Amazon SQS: resource type queue,
    arn:${Partition}:sqs:${Region}:${Account}:${QueueName}); from QueueUrl, or GetQueueUrl's QueueName
    (and QueueOwnerAWSAccountId)."""
    params = req.params or {}
    url = params.get("QueueUrl")
    if url:
        account, name = url.rstrip("/").split("/")[-2:]
    elif params.get("QueueName"):
        account, name = params.get("QueueOwnerAWSAccountId") or req.account, params["QueueName"]
    else:
        return None
    return [(f"arn:{PARTITION}:sqs:{req.region}:{account}:{name}", None)]


def _securityhub_hub(req):
    """GetFindings and BatchUpdateFindings are authorized on the hub (Service Authorization Reference, AWS
    Security Hub: resource type hub, arn:${Partition}:securityhub:${Region}:${Account}:hub/default)."""
    return [(f"arn:{PARTITION}:securityhub:{req.region}:{req.account}:hub/default", None)]


# The resources each action is authorized on (Service Authorization Reference: the action's resource
# types; the ones the request names). Actions of the shipped policies scoped to resources all have one.
RESOURCE_BUILDERS = {
    "ec2:CreateTags": lambda r: [_ec2_resource(r, i) for i in _numbered(r.params, "ResourceId")],
    "ec2:DeleteTags": lambda r: [_ec2_resource(r, i) for i in _numbered(r.params, "ResourceId")],
    "ec2:ModifyNetworkInterfaceAttribute": _resources_modify_network_interface,
    "ec2:ModifyInstanceAttribute": lambda r: _ec2_instance_resources(r, [r.params.get("InstanceId")]),
    "ec2:DescribeInstanceAttribute": lambda r: _ec2_instance_resources(r, [r.params.get("InstanceId")]),
    "ec2:GetConsoleOutput": lambda r: _ec2_instance_resources(r, [r.params.get("InstanceId")]),
    "ec2:GetConsoleScreenshot": lambda r: _ec2_instance_resources(r, [r.params.get("InstanceId")]),
    "ec2:AssociateIamInstanceProfile": lambda r: _ec2_instance_resources(r, [r.params.get("InstanceId")]),
    "ec2:DisassociateIamInstanceProfile": lambda r: _ec2_instance_resources(
        r, [_instance_of_association(r, r.params.get("AssociationId"))]) or None,
    "ec2:ReplaceIamInstanceProfileAssociation": lambda r: _ec2_instance_resources(
        r, [_instance_of_association(r, r.params.get("AssociationId"))]) or None,
    "ec2:TerminateInstances": lambda r: _ec2_instance_resources(r, _numbered(r.params, "InstanceId")),
    "ec2:CreateSnapshots": _resources_create_snapshots,
    "ec2:CreateSecurityGroup": lambda r: [_ec2_resource(r, r.params.get("VpcId")),
                                          (_ec2_arn(r.region, r.account, "security-group", "*"), None)],
    "ec2:AuthorizeSecurityGroupIngress": lambda r: [_ec2_resource(r, r.params.get("GroupId"))],
    "ec2:AuthorizeSecurityGroupEgress": lambda r: [_ec2_resource(r, r.params.get("GroupId"))],
    "ec2:RevokeSecurityGroupIngress": lambda r: [_ec2_resource(r, r.params.get("GroupId"))],
    "ec2:RevokeSecurityGroupEgress": lambda r: [_ec2_resource(r, r.params.get("GroupId"))],
    "ec2:AssociateAddress": _resources_address,
    "ec2:DisassociateAddress": _resources_address,
    "ec2:CreateNetworkAcl": lambda r: [_ec2_resource(r, r.params.get("VpcId")),
                                       (_ec2_arn(r.region, r.account, "network-acl", "*"), None)],
    "ec2:ReplaceNetworkAclAssociation": lambda r: [_ec2_resource(r, r.params.get("NetworkAclId"))],
    "ec2:DeleteNetworkAclEntry": lambda r: [_ec2_resource(r, r.params.get("NetworkAclId"))],
    "autoscaling:DetachInstances": _autoscaling_group,
    "autoscaling:AttachInstances": _autoscaling_group,
    "autoscaling:EnterStandby": _autoscaling_group,
    "autoscaling:ExitStandby": _autoscaling_group,
    "elasticloadbalancing:DeregisterTargets": lambda r: [(r.params.get("TargetGroupArn"), None)],
    "elasticloadbalancing:RegisterTargets": lambda r: [(r.params.get("TargetGroupArn"), None)],
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer": lambda r: [(
        f"arn:{PARTITION}:elasticloadbalancing:{r.region}:{r.account}:loadbalancer/{r.params.get('LoadBalancerName')}",
        None)],
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer": lambda r: [(
        f"arn:{PARTITION}:elasticloadbalancing:{r.region}:{r.account}:loadbalancer/{r.params.get('LoadBalancerName')}",
        None)],
    "guardduty:ListFindings": _guardduty_detector,
    "guardduty:GetFindings": _guardduty_detector,
    "guardduty:DescribeMalwareScans": _guardduty_detector,
    "guardduty:ArchiveFindings": _guardduty_detector,
    "guardduty:UnarchiveFindings": _guardduty_detector,
    "guardduty:UpdateFindingsFeedback": _guardduty_detector,
    "iam:GetRole": _iam_role,
    "iam:ListRolePolicies": _iam_role,
    "iam:GetRolePolicy": _iam_role,
    "iam:PutRolePolicy": _iam_role,
    "iam:DeleteRolePolicy": _iam_role,
    "iam:GetInstanceProfile": _iam_instance_profile,
    "iam:CreateServiceLinkedRole": _service_linked_role,
    "sts:AssumeRole": lambda r: [(r.params.get("RoleArn"), None)],
    "s3:PutObject": _s3_object,
    "s3:GetObject": _s3_object,
    "s3:DeleteObject": _s3_object,
    "s3:ListBucket": _s3_bucket,
    "sqs:GetQueueUrl": _sqs_queue,
    "sqs:ReceiveMessage": _sqs_queue,
    "sqs:ChangeMessageVisibility": _sqs_queue,
    "sqs:DeleteMessage": _sqs_queue,
    "securityhub:GetFindings": _securityhub_hub,
    "securityhub:BatchUpdateFindings": _securityhub_hub,
}
# Actions with no resource-level permission: authorized on "*" only (Service Authorization Reference)
RESOURCE_STAR_ONLY = frozenset(["guardduty:ListDetectors", "guardduty:StartMalwareScan", "iam:ListAccountAliases",
                                "support:CreateCase", "support:DescribeCases"])
DESCRIBES_ON_STAR = ("ec2:Describe", "autoscaling:Describe", "elasticloadbalancing:Describe")


def request_resources(req):
    """[(ARN, tags)] the request is authorized on; [("*", None)] for actions without resource-level
    permissions; None when the lab does not know (any Resource matches)."""
    action = iam_action(req)
    builder = RESOURCE_BUILDERS.get(action)
    if builder is not None:
        try:
            return builder(req) or None
        except Exception:  # an id moto does not know: AWS's own error comes from the call itself
            return None
    if action in RESOURCE_STAR_ONLY or action.startswith(DESCRIBES_ON_STAR):
        return [("*", None)]
    return None
