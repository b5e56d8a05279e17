"""sts:AssumeRole only for a role that exists, as AWS answers it.

moto hands out credentials for any role ARN ("the role does not need to exist"). AWS refuses a role that
does not exist in its account with the same answer as a denied one: HTTP 403 `AccessDenied`, "User: ...
is not authorized to perform: sts:AssumeRole on resource: <role ARN>". A responder role missing from one
member account must fail that account's instances in the lab as it would in AWS.

The lab's member accounts stand for accounts created by AWS Organizations, which puts
`OrganizationAccountAccessRole` in each: the scenarios reach the member accounts through it, so it exists
everywhere.
"""

import re

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends

ORGANIZATIONS_ROLE = "OrganizationAccountAccessRole"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)$")


def role_exists(account_id, name):
    if name == ORGANIZATIONS_ROLE:
        return True
    backend = iam_backends[account_id]["aws"]
    return any(role.name == name for role in backend.roles.values())


def check(req):
    """None, or (status, code, message) refusing an AssumeRole of a role that does not exist."""
    if req.service != "sts" or req.action != "AssumeRole":
        return None
    role_arn = str(req.params.get("RoleArn") or "")
    match = ROLE_ARN.match(role_arn)
    if match is None or role_exists(match.group(1), match.group(2)):
        return None  # a malformed ARN is moto's to refuse (ValidationError)
    caller = f"arn:aws:iam::{req.account or DEFAULT_ACCOUNT_ID}:user/lab"
    return 403, "AccessDenied", f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
