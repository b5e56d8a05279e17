# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AWS call floor: how the modules, their module_utils and the inventory plugin call AWS.

Step files (ec2_instance_detach.py, ec2_forensic_snapshot.py, ...: each named after the module it serves) and
the GuardDuty layer (guardduty.py) import this file; step files never import each other.

- One retry policy per service (`retry_for(service)`, `call`): jittered backoff on the error codes the
  service documents as throttling or transient, and on connection errors. Nothing else is retried.
- One boto3 session for a module's clients (`ModuleClients`): botocore loads its endpoint data and rule sets
  once per session, and AnsibleAWSModule.client makes a new session for every client.
- Clients without botocore's own retries (`module_client`, `CLIENT_RETRIES`): botocore's default mode
  (standard: 3 attempts; legacy: 5) retries the same throttling and 5xx answers by itself, so under our
  policy one throttled call was sent up to 10 x 3 times. The floor's policy is the one retry layer, with the
  longer backoff.
- Paging with per-page retry (`pages`, `items`): a failed page is asked again, the pages before it are kept.
- Describe by filter in chunks (`describe_by_filter`): EC2 takes at most 200 values per filter.
- Error code and message of an AWS error (`error_code`, `error_message`).
- The plan/call shape: a plan is a list of calls `(action, params)`, action the API operation name
  ("CreateTags") and params its request (`describe_call`, `make_calls`).
"""

import json

try:
    import boto3.session
    import botocore.config
    import botocore.exceptions
    from botocore import xform_name
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError
except ImportError:  # the module reports boto3 missing through AnsibleAWSModule
    ClientError = BotoConnectionError = HTTPClientError = type(None)

from ansible_collections.amazon.aws.plugins.module_utils.botocore import enable_placebo
from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.botocore import _get_user_agent_string
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# -- retry policy per service ---------------------------------------------------------------------
# AWSRetry always retries RequestLimitExceeded, Unavailable, ServiceUnavailable, InternalFailure,
# InternalError, TooManyRequestsException and Throttling; each service adds the codes it documents:
# - EC2 (API reference, "Error codes for the Amazon EC2 API", errors-overview.html): RequestLimitExceeded,
#   InternalError, Unavailable / ServiceUnavailable (5xx): all in AWSRetry's own list.
# - GuardDuty, Security Hub, Support (API reference, "Common Errors", CommonErrors.html): ThrottlingException
#   (400), InternalFailure (500), ServiceUnavailable (503); their models add InternalServerErrorException
#   (GuardDuty, 500), InternalException / InternalServerException / LimitExceededException (Security Hub,
#   500 / 500 / 429), InternalServerError (Support, a fault).
# - STS and IAM ("Common Errors"): Throttling, InternalFailure, ServiceUnavailable; IAM's model adds
#   ServiceFailure (500); STS retries IDPCommunicationError (botocore's _retry.json).
# - S3 (API reference, "Error responses", ErrorResponses.html): SlowDown (503), InternalError (500),
#   ServiceUnavailable (503).
# - Auto Scaling's model: ResourceContention (500, a pending update); ELB / ELBv2: Throttling.
CONNECTION_ERROR = "ConnectionError"  # what the policies call a connection error (no HTTP answer)
RETRIABLE = {
    "ec2": ("EC2ThrottledException",),
    "guardduty": ("ThrottlingException", "InternalServerErrorException"),
    "securityhub": ("ThrottlingException", "LimitExceededException", "InternalException", "InternalServerException"),
    "support": ("ThrottlingException", "InternalServerError"),
    "sts": ("ThrottlingException", "IDPCommunicationError"),
    "iam": ("ServiceFailure",),
    "s3": ("SlowDown",),
    "autoscaling": ("ResourceContention",),
    "elbv2": (),
    "elb": (),
}
# Attempts (AWSRetry's `retries` counts them all). EC2's batches share per-account token buckets (5 mutating
# calls a second refilled, EC2 API reference "Request throttling"), so its calls wait a little longer.
ATTEMPTS = {"ec2": 12}
DEFAULT_ATTEMPTS = 10
DELAY, MAX_DELAY = 0.5, 20
# botocore's own retries off: the floor's policy is the only layer (see the module's docstring). A task's
# `aws_config` is merged after this, so an operator who sets `retries` there gets what they asked for.
CLIENT_RETRIES = {"mode": "standard", "total_max_attempts": 1}


class _CallRetry(AWSRetry):
    """AWSRetry, also for connection errors: with botocore's retries off, nothing else retries them."""

    base_class = (ClientError, BotoConnectionError, HTTPClientError)

    @staticmethod
    def status_code_from_exception(error):
        if isinstance(error, (BotoConnectionError, HTTPClientError)):
            return CONNECTION_ERROR
        return error_code(error)


def retry_for(service, extra_codes=(), connection_errors=True):
    """The retry decorator of a service (botocore's service name: "ec2", "guardduty", ...), with
    `extra_codes` also retried (e.g. an eventual-consistency NotFound right after a create), and connection
    errors unless `connection_errors` is false (botocore retries them itself).

    A new one per use: AWSRetry's backoff iterator is state that threads sharing a decorator would reset."""
    codes = list(RETRIABLE.get(service, ())) + list(extra_codes) + ([CONNECTION_ERROR] if connection_errors else [])
    return _CallRetry.jittered_backoff(retries=ATTEMPTS.get(service, DEFAULT_ATTEMPTS), delay=DELAY,
                                       max_delay=MAX_DELAY, catch_extra_error_codes=codes)


def service_of(client):
    """botocore's name of the client's service ("ec2", "elbv2", ...); None for an object that is not a client."""
    try:
        return client.meta.service_model.service_name
    except AttributeError:
        return None


def module_client(module, service, **params):
    """`module.client(service)` without botocore's own retries: every call goes through `call` / `pages`."""
    return module.client(service, config=client_config(), **params)


class ModuleClients:
    """A module's clients, made from one boto3 session (from one thread) with what AnsibleAWSModule.client uses:
    the module's credentials or profile, region, endpoint_url, validate_certs / aws_ca_bundle, the user agent,
    `config`, then the task's aws_config over it; a client that cannot be made fails the module the same way.

    AnsibleAWSModule.client makes a new boto3 session per client, and each session loads botocore's endpoint
    data again: 45 ms of CPU for an STS client beside an EC2 one, against 5 ms from the same session."""

    def __init__(self, module):
        self.module = module
        self.session = None

    @staticmethod
    def _new_session(profile):
        session = boto3.session.Session(profile_name=profile)
        enable_placebo(session)
        return session

    def client(self, service, config=None, region=None, **credentials):
        """`region` and `credentials` (aws_access_key_id, aws_secret_access_key, aws_session_token: an assumed role's
        session) replace the module's own for this client."""
        module_region, endpoint_url, params = get_aws_connection_info(self.module)
        region = region or module_region
        profile = params.pop("profile_name", None)
        params.update(credentials)
        merged = botocore.config.Config(user_agent=_get_user_agent_string())
        for extra in (config, params.pop("aws_config", None)):
            if extra:
                merged = merged.merge(extra if isinstance(extra, botocore.config.Config) else botocore.config.Config(**extra))
        try:
            shared = getattr(self.module, "shared_boto3_session", None)  # module_batches: one for the process's batches
            if shared is not None:
                with shared.lock:
                    if profile not in shared.sessions:
                        shared.sessions[profile] = self._new_session(profile)
                    return shared.sessions[profile].client(service, config=merged, region_name=region,
                                                           endpoint_url=endpoint_url, **params)
            if self.session is None:
                self.session = self._new_session(profile)
            return self.session.client(service, config=merged, region_name=region, endpoint_url=endpoint_url, **params)
        except botocore.exceptions.NoRegionError:
            self.module.fail_json(msg="A region is required and none was found in configuration, environment "
                                      "variables or module parameters")
        except (ValueError, botocore.exceptions.BotoCoreError) as exc:
            self.module.fail_json_aws(exc, msg="Couldn't connect to AWS")


def client_config(**options):
    """A botocore Config with botocore's retries off, plus `options`."""
    return botocore.config.Config(retries=dict(CLIENT_RETRIES), **options)


def botocore_retries_off(client):
    """Whether the client was made with botocore's retries off (the floor's clients): then the floor also
    retries connection errors; a client with botocore's retries on (a caller's own) has them retried there."""
    try:
        return client.meta.config.retries == CLIENT_RETRIES
    except AttributeError:
        return False


def call(client, operation, extra_codes=(), **params):
    """One API call (`operation` as "describe_instances" or "DescribeInstances"), retried by its service's policy."""
    method = getattr(client, xform_name(operation))
    return retry_for(service_of(client), extra_codes, botocore_retries_off(client))(method)(**params)


def caller_identity(sts):
    """GetCallerIdentity's answer ({"Account", "Arn", "UserId"})."""
    return call(sts, "GetCallerIdentity")


# -- paging ---------------------------------------------------------------------------------------

def _tokens(client, operation):
    """(input token, output token, "more results" flag or None) of a paged operation: from botocore's
    paginator model when the operation has one (ELB's Marker / NextMarker, IAM's Marker / IsTruncated, S3's
    ContinuationToken, ...), else NextToken."""
    if getattr(client, "meta", None) is not None and client.can_paginate(operation):
        config = client.get_paginator(operation)._pagination_cfg
        if isinstance(config.get("input_token"), str) and isinstance(config.get("output_token"), str):
            return config["input_token"], config["output_token"], config.get("more_results")
    return "NextToken", "NextToken", None


def pages(client, operation, **params):
    """Every page of a paged call, in order; each page is its own retried call, so a throttled page is
    asked again without starting over (botocore's PageIterator cannot resume after a failed page)."""
    operation = xform_name(operation)
    token_in, token_out, more = _tokens(client, operation)
    params = dict(params)
    while True:
        page = call(client, operation, **params)
        yield page
        token = page.get(token_out)
        if not token or token == params.get(token_in) or (more and not page.get(more)):
            return
        params[token_in] = token


def items(client, operation, key, **params):
    """The `key` list of every page, joined."""
    out = []
    for page in pages(client, operation, **params):
        out.extend(page.get(key) or [])
    return out


# -- describe by filter in chunks -----------------------------------------------------------------

FILTER_VALUES_MAX = 200  # EC2: "You can specify up to 200 values per filter" (API reference, Filter; "Query parameters")


def chunks(values, size):
    """`values` in lists of at most `size`, in order."""
    values = list(values)
    return [values[i:i + size] for i in range(0, len(values), size)]


def describe_by_filter(client, operation, key, name, values, filters=(), size=FILTER_VALUES_MAX, **params):
    """The `key` items of a Describe call filtered by `name` in `values`: one paged call per `size` values
    (EC2 takes at most 200 values in a filter), `filters` added to each; no call without values."""
    out = []
    for chunk in chunks(values, size):
        out += items(client, operation, key, Filters=[{"Name": name, "Values": chunk}] + list(filters), **params)
    return out


def describe_by_ids(client, operation, key, id_param, ids, size=FILTER_VALUES_MAX, **params):
    """The `key` items of a Describe call for `ids` (given as `id_param`), `size` ids a call, every page."""
    out = []
    for chunk in chunks(ids, size):
        out += items(client, operation, key, **{id_param: chunk}, **params)
    return out


# -- errors ---------------------------------------------------------------------------------------

def error_code(exc):
    """AWS's error code of a botocore ClientError, or the exception's class name."""
    response = getattr(exc, "response", None) or {}
    return (response.get("Error") or {}).get("Code") or type(exc).__name__


def error_message(exc):
    """AWS's error message of a botocore ClientError, else the exception's text."""
    response = getattr(exc, "response", None) or {}
    return (response.get("Error") or {}).get("Message") or str(exc)


class DescribeError(Exception):
    """A batch-wide describe call failed; `action` names it and `cause` is AWS's error."""

    def __init__(self, action, exc):
        super().__init__(str(exc))
        self.action = action
        self.cause = exc
        self.response = getattr(exc, "response", None)


def describing(action, func, *args, **kwargs):
    """`func(*args, **kwargs)`, any failure raised as DescribeError(action)."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        raise DescribeError(action, exc) from exc


# -- the plan/call shape --------------------------------------------------------------------------

class PlanProblem(Exception):
    """The plan for one instance (or resource) cannot be made, AWS would refuse it; `action` and `code` say why."""

    def __init__(self, action, message, code):
        super().__init__(message)
        self.action = action
        self.code = code


def describe_call(call, service=None, hide=(), default=str):
    """A short readable form of a call, for check mode, results and errors: `Action {params as JSON}`,
    as `service:Action` when a service is given, without the `hide` parameters."""
    action, params = call
    shown = {k: v for k, v in params.items() if k not in hide}
    prefix = f"{service}:{action}" if service else action
    return f"{prefix} {json.dumps(shown, sort_keys=True, separators=(',', ':'), default=default)}"


def make_calls(client_of, calls, shown=describe_call):
    """Make the calls in order, each with its service's retry policy; `client_of(action)` is the client for
    an action. The first failure stops the rest: its exception carries `.action` and `.done` (the calls made,
    as `shown(call)`). Returns those."""
    done = []
    for action, params in calls:
        try:
            call(client_of(action), action, **params)
        except Exception as exc:
            exc.action = action
            exc.done = done
            raise
        done.append(shown((action, params)))
    return done
