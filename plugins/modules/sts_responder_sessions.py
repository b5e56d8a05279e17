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
  - Normally run by cloudsec.guardduty.batch_stage; the roles run it, not playbooks. With a local connection,
    batch_stage makes the same calls in the controller's own process, with this module's options and environment.
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

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.responder_sessions import ARGUMENT_SPEC
from ansible_collections.cloudsec.guardduty.plugins.module_utils.responder_sessions import responder_sessions


def main():
    module = AnsibleAWSModule(argument_spec=dict(ARGUMENT_SPEC), supports_check_mode=True)
    module.exit_json(changed=False, **responder_sessions(module))


if __name__ == "__main__":
    main()
