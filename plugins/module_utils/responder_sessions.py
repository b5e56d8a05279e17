# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A run's preflight: each responder role assumed once (sts:AssumeRole), then each batch's credentials proven
(sts:GetCallerIdentity), each phase's calls in parallel.

Run by the cloudsec.guardduty.sts_responder_sessions module, and by cloudsec.guardduty.batch_stage in the
controller's own process when its modules run on the controller (plugins/plugin_utils/controller_module.py): the same
calls and answers either way. `module` is whatever gives `params`, `fail_json` and `fail_json_aws` (AnsibleAWSModule,
or the controller's stand-in); its AWS options (credentials, profile, endpoint_url, validate_certs...) are amazon.aws's.
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import ModuleClients
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import call
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import client_config
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_message

PARALLEL = 8

# The preflight's own options (amazon.aws's common AWS options come beside them).
ARGUMENT_SPEC = dict(
    roles=dict(type="list", elements="dict", default=[], options=dict(
        role_arn=dict(type="str", required=True), region=dict(type="str", required=True))),
    session_name=dict(type="str", required=True),
    duration_seconds=dict(type="int", default=3600),
    credentials=dict(type="dict", default={}, no_log=True),
    batches=dict(type="list", elements="dict", default=[], options=dict(
        key=dict(type="str", required=True, no_log=False), region=dict(type="str", required=True),
        role_arn=dict(type="str"))),
)


def session_params(credentials):
    """boto3 client keywords for a role's session credentials."""
    return {"aws_access_key_id": credentials.get("access_key"), "aws_secret_access_key": credentials.get("secret_key"),
            "aws_session_token": credentials.get("session_token")}


def why(exc):
    code = error_code(exc)
    return f"{code}: {error_message(exc)}" if code else str(exc)


class StsClients:
    """STS clients by (region, credentials), all from one boto3 session (aws_calls.ModuleClients): module.client()
    makes a new session for each client, which loads botocore's endpoint data and the STS model again, 10 s of CPU
    for the 99 clients of 19 roles and 80 batches. Made in the main thread: a session is not thread-safe, its clients
    are."""

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


def responder_sessions(module):
    """{credentials: per role assumed, role_errors: per role not, identities: per batch, in order}. Assuming a role
    changes nothing: check mode needs the sessions too, to describe what would change."""
    params = module.params
    assumed, role_errors = {}, {}
    roles = list({r["role_arn"]: r for r in params["roles"]}.values())
    clients = StsClients(module)
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
    return {"credentials": assumed, "role_errors": role_errors, "identities": identities}
