#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: sts_responder_sessions
version_added: 0.2.0
short_description: Assume the responder roles once and prove each batch's credentials, in one process
description:
  - The preflight of a run (cloudsec.guardduty.batch_stage, C(stage=preflight)), in one module process instead of one
    C(amazon.aws.sts_assume_role) per role followed by one C(amazon.aws.aws_caller_info) per batch.
  - Assumes each role of O(roles) once (C(sts:AssumeRole), in the role's Region), then proves the credentials of each
    batch of O(batches) with C(sts:GetCallerIdentity) in the batch's Region. The calls of each phase run in parallel.
  - A batch with a C(role_arn) is proven with that role's credentials, assumed here or given in O(credentials); a batch
    without one with the task's own credentials.
  - A role that cannot be assumed or a batch that cannot be proven does not fail the module; it is reported in
    RV(role_errors) or in the batch's RV(identities) entry, so that only the instances behind it leave the run.
  - Reads nothing else, not C(iam:ListAccountAliases) (C(aws_caller_info) reads it), which would leave an C(AccessDenied)
    in CloudTrail of every account whose role does not allow it.
  - Changes nothing in AWS; the new credentials are returned, so run it with C(no_log).
options:
  roles:
    description: The roles to assume.
    type: list
    elements: dict
    default: []
    suboptions:
      role_arn:
        description: The role's ARN.
        type: str
        required: true
      region:
        description: The Region whose STS endpoint is called.
        type: str
        required: true
  session_name:
    description: The C(RoleSessionName) of every session, seen in the member accounts' CloudTrail.
    type: str
    required: true
  duration_seconds:
    description: How long the sessions last.
    type: int
    default: 3600
  credentials:
    description: Credentials of roles assumed earlier in the run, by role ARN (C(access_key), C(secret_key), C(session_token)).
    type: dict
    default: {}
  batches:
    description: The batches whose credentials are proven.
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description: The batch's name in RV(identities).
        type: str
        required: true
      region:
        description: The batch's Region.
        type: str
        required: true
      role_arn:
        description: The role the batch is worked through; omitted for the task's own credentials.
        type: str
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Normally run by cloudsec.guardduty.batch_stage; the roles run it, not playbooks.
"""

EXAMPLES = r"""
- name: The responder role of one member account, and two batches proven
  cloudsec.guardduty.sts_responder_sessions:
    session_name: cloudsec-guardduty-INC-42
    roles:
      - role_arn: arn:aws:iam::222222222222:role/GuardDutyResponder
        region: eu-west-1
    batches:
      - {key: "0", region: eu-west-1, role_arn: "arn:aws:iam::222222222222:role/GuardDutyResponder"}
      - {key: "1", region: us-east-1}
  no_log: true
  register: sessions
"""

RETURN = r"""
credentials:
  description: Per role assumed, its session's credentials (C(access_key), C(secret_key), C(session_token), C(expiration)).
  returned: always
  type: dict
role_errors:
  description: Per role that could not be assumed, why (AWS's error code and message).
  returned: always
  type: dict
  sample: {"arn:aws:iam::222222222222:role/Wrong": "AccessDenied: not authorized to perform sts:AssumeRole"}
identities:
  description: Per batch, in the order of O(batches), the account and ARN its credentials belong to, or why not.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: The batch's O(batches[].key).
      type: str
    account:
      description: The account of the batch's credentials; null when they could not be proven.
      type: str
    arn:
      description: The caller's ARN.
      type: str
    msg:
      description: Why the credentials could not be proven.
      type: str
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import ModuleClients
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import call
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import client_config
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_message

PARALLEL = 8


def session_params(credentials):
    """boto3 client keywords for a role's session credentials."""
    return {"aws_access_key_id": credentials.get("access_key"), "aws_secret_access_key": credentials.get("secret_key"),
            "aws_session_token": credentials.get("session_token")}


def why(exc):
    code = error_code(exc)
    return f"{code}: {error_message(exc)}" if code else str(exc)


class StsClients:
    """STS clients by (region, credentials), all from the module's one boto3 session (aws_calls.ModuleClients):
    module.client() makes a new session for each client, which loads botocore's endpoint data and the STS model
    again, 10 s of CPU for the 99 clients of 19 roles and 80 batches. Made in the main thread: a session is not
    thread-safe, its clients are."""

    def __init__(self, module):
        self.clients = ModuleClients(module)
        self.made = {}

    def get(self, region, credentials=None):
        key = (region, tuple(sorted((credentials or {}).items())))
        if key not in self.made:
            self.made[key] = self.clients.client("sts", config=client_config(), region=region,
                                                 **(session_params(credentials) if credentials else {}))
        return self.made[key]


def assume(sts, role, session_name, duration):
    """(role_arn, credentials or None, error or None)."""
    try:
        answer = call(sts, "AssumeRole", RoleArn=role["role_arn"], RoleSessionName=session_name, DurationSeconds=duration)
    except Exception as exc:  # pylint: disable=broad-except  # each role on its own: reported, the others go on
        return role["role_arn"], None, why(exc)
    creds = answer["Credentials"]
    return role["role_arn"], {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                              "session_token": creds["SessionToken"], "expiration": str(creds.get("Expiration"))}, None


def prove(sts, batch, credentials, role_errors):
    """The batch's identity entry: its credentials' account and ARN, or why not."""
    entry = {"key": batch["key"], "account": None, "arn": None, "msg": None}
    role_arn = batch.get("role_arn")
    if role_arn and role_arn not in credentials:
        entry["msg"] = f"cannot assume {role_arn}: {role_errors.get(role_arn) or 'no credentials'}"
        return entry
    try:
        identity = call(sts, "GetCallerIdentity")
    except Exception as exc:  # pylint: disable=broad-except  # each batch on its own
        entry["msg"] = why(exc)
        return entry
    entry.update(account=identity.get("Account"), arn=identity.get("Arn"))
    return entry


def in_parallel(function, items):
    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL, len(items)))) as pool:
        return list(pool.map(function, items))


def main():
    argument_spec = dict(
        roles=dict(type="list", elements="dict", default=[], options=dict(
            role_arn=dict(type="str", required=True), region=dict(type="str", required=True))),
        session_name=dict(type="str", required=True),
        duration_seconds=dict(type="int", default=3600),
        credentials=dict(type="dict", default={}, no_log=True),
        batches=dict(type="list", elements="dict", default=[], options=dict(
            key=dict(type="str", required=True, no_log=False), region=dict(type="str", required=True),
            role_arn=dict(type="str"))),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    assumed, role_errors = {}, {}
    roles = list({r["role_arn"]: r for r in params["roles"]}.values())
    clients = StsClients(module)
    # Assuming a role changes nothing: check mode needs the sessions too, to describe what would change.
    calls = [(clients.get(role["region"]), role) for role in roles]
    for role_arn, creds, error in in_parallel(lambda c: assume(c[0], c[1], params["session_name"], params["duration_seconds"]), calls):
        if creds:
            assumed[role_arn] = creds
        else:
            role_errors[role_arn] = error
    known = dict(params["credentials"] or {}, **assumed)
    calls = [(clients.get(batch["region"], known.get(batch.get("role_arn")) if batch.get("role_arn") else None), batch)
             for batch in params["batches"]]
    identities = in_parallel(lambda c: prove(c[0], c[1], known, role_errors), calls)
    module.exit_json(changed=False, credentials=assumed, role_errors=role_errors, identities=identities)


if __name__ == "__main__":
    main()
