# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the collection's ansible-rulebook event sources decide, as plain functions over plain data.

The sources (extensions/eda/plugins/event_source/sqs.py and guardduty_findings.py) only do I/O: they
read their arguments with `aws_options`, `sqs_options` and `poller_options`, turn what AWS answers into
events with `sqs_event` and `finding_event`, and let `FindingLedger` say which findings are new or
updated and remember what was emitted across restarts (a JSON state file, mode 0600).
"""

import asyncio
import json
import os
import re
import tempfile
import threading

from ansible_collections.cloudsec.guardduty.plugins.module_utils.findings import normalize_selection
from ansible_collections.cloudsec.guardduty.plugins.module_utils.findings import timestamp_ms  # noqa: F401 (also for callers)

# Credentials and endpoint as amazon.aws reads them: option name, its aliases, then the environment
# variables consulted in order (amazon.aws doc fragments common.plugins and region.plugins).
AWS_OPTIONS = (
    ("access_key", ("aws_access_key_id", "aws_access_key"), ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")),
    ("secret_key", ("aws_secret_access_key", "aws_secret_key"), ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")),
    ("session_token", ("aws_session_token",), ("AWS_SESSION_TOKEN",)),
    ("profile", ("aws_profile",), ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")),
    ("region", ("aws_region",), ("AWS_REGION", "AWS_DEFAULT_REGION")),
    ("endpoint_url", ("aws_endpoint_url",), ("AWS_URL",)),
)
SQS_MAX_WAIT = 20  # ReceiveMessage WaitTimeSeconds: 0..20 (long polling)
SQS_MAX_MESSAGES = 10  # ReceiveMessage MaxNumberOfMessages: 1..10
SQS_MAX_VISIBILITY = 43200  # VisibilityTimeout: 0..12 hours
# Batches (the SQS source's batch_window): the messages received within the window become one event per action,
# naming each instance once. The actions' rules are the per-finding rulebooks' (guardduty_poll_isolate.yml): a test
# keeps them equal.
BATCH_MAX_WINDOW = 20
BATCH_MAX_SIZE = 1000
DEFAULT_BATCH_SIZE = 100
DEFAULT_DEDUPE_WITHIN = 3600          # as the per-finding rules' `throttle: once_within: 1 hour`
DEFAULT_ISOLATE_TYPES = ("(Backdoor|CryptoCurrency|Trojan|Execution):(EC2|Runtime)/",
                         "(UnauthorizedAccess|Impact):EC2/|UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration")
DEFAULT_IGNORE_TYPES = ("Recon:EC2/PortProbe",)
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
FINDING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
BATCH_DETAIL_TYPE = "GuardDuty Findings Batch"
SELECTION_OPTIONS = ("min_severity", "finding_types", "exclude_finding_types", "archived", "tags")
DEFAULT_STATE_FILE = "~/.ansible/cloudsec.guardduty/guardduty_findings.json"
STATE_VERSION = 1


class SourceOptionError(ValueError):
    """An event source argument that cannot be used; the message names the source and the option."""


def _integer(source, name, value, low, high):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SourceOptionError(f"{source}: {name} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise SourceOptionError(f"{source}: {name} must be between {low} and {high}, got {number}")
    return number


def aws_options(source, args, environ):
    """{access_key, secret_key, session_token, profile, region, endpoint_url}: arguments, else environment.

    A profile and keys are mutually exclusive, as in amazon.aws; both keys or neither.
    """
    out, from_args = {}, set()
    for name, aliases, env_names in AWS_OPTIONS:
        given = [key for key in (name,) + aliases if args.get(key) not in (None, "")]
        if len(given) > 1:
            raise SourceOptionError(f"{source}: {' and '.join(given)} are the same option, give one")
        if given:
            from_args.add(name)
        value = args[given[0]] if given else next((environ[e] for e in env_names if environ.get(e)), None)
        out[name] = str(value) if value is not None else None
    if "profile" in from_args and from_args & {"access_key", "secret_key", "session_token"}:
        raise SourceOptionError(f"{source}: profile and access_key/secret_key/session_token are mutually exclusive")
    if out["profile"] and out["access_key"]:
        # one from the arguments, the other from the environment: the arguments win
        keep_keys = bool(from_args & {"access_key", "secret_key"}) or "profile" not in from_args
        if keep_keys:
            out["profile"] = None
        else:
            out.update(access_key=None, secret_key=None, session_token=None)
    if bool(out["access_key"]) != bool(out["secret_key"]):
        raise SourceOptionError(f"{source}: access_key and secret_key go together (one is missing)")
    return out


def session_arguments(aws):
    """boto3.Session(**this): keys, or a profile, or neither (the default chain: instance role...)."""
    if aws["access_key"]:
        out = {"aws_access_key_id": aws["access_key"], "aws_secret_access_key": aws["secret_key"]}
        if aws["session_token"]:
            out["aws_session_token"] = aws["session_token"]
        return out
    return {"profile_name": aws["profile"]} if aws["profile"] else {}


# What AWS answers a request signed with temporary credentials past their Expiration (tests/lab/sts_sessions.py)
EXPIRED_CREDENTIALS = ("ExpiredToken", "ExpiredTokenException")


def assumed_role_session(sts, role_arn, session_name):
    """A boto3 Session holding the role's credentials and renewing them itself with sts:AssumeRole before they
    expire (botocore's RefreshableCredentials: from 15 minutes before the Expiration AssumeRole gives, and at
    10 minutes at the latest). The first AssumeRole is made here, so a role that cannot be assumed fails now."""
    import boto3
    import botocore.session
    from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials

    def fetch():
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    class AssumedRole(CredentialProvider):
        METHOD = "cloudsec-guardduty-assume-role"

        def load(self):
            return RefreshableCredentials.create_from_metadata(fetch(), fetch, self.METHOD)

    core = botocore.session.get_session()
    core.register_component("credential_provider", CredentialResolver([AssumedRole()]))
    session = boto3.Session(botocore_session=core)
    session.get_credentials().get_frozen_credentials()  # the first AssumeRole, now
    return session


def sqs_options(args, environ):
    """The SQS source's arguments, validated (see the source's documentation)."""
    source = "cloudsec.guardduty.sqs"
    aws = aws_options(source, args, environ)
    name, url = args.get("queue_name") or args.get("name"), args.get("queue_url")
    if bool(name) == bool(url):
        raise SourceOptionError(f"{source}: give the queue as queue_name (or name) or as queue_url, one of them")
    if not aws["region"]:
        raise SourceOptionError(f"{source}: region is required (or AWS_REGION in the environment)")
    return {
        "aws": aws,
        "queue_name": name,
        "queue_url": url,
        "wait_time_seconds": _integer(source, "wait_time_seconds", args.get("wait_time_seconds", args.get(
            "delay_seconds", SQS_MAX_WAIT)), 0, SQS_MAX_WAIT),
        "max_messages": _integer(source, "max_messages", args.get("max_messages", SQS_MAX_MESSAGES), 1,
                                 SQS_MAX_MESSAGES),
        "visibility_timeout": _integer(source, "visibility_timeout", args.get("visibility_timeout", 120), 1,
                                       SQS_MAX_VISIBILITY),
        "batch": batch_options(source, args),
    }


def _patterns(source, name, value):
    if isinstance(value, str):
        value = [value]
    try:
        return [re.compile(str(v)) for v in value]
    except (TypeError, re.error) as exc:
        raise SourceOptionError(f"{source}: {name} must be a list of regular expressions ({exc})") from None


def _severity(source, name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SourceOptionError(f"{source}: {name} must be a number, got {value!r}") from None
    if not 0 <= number <= 10:
        raise SourceOptionError(f"{source}: {name} must be between 0 and 10, got {number}")
    return number


def batch_options(source, args):
    """The batch arguments: `window` 0 (each message its own event, the default) or the seconds a batch stays
    open after its first message; `size`, the most findings per batch; `dedupe_within`, the seconds an
    instance handed over for an action is not handed over again for it; the per-finding rules as data."""
    return {
        "window": _integer(source, "batch_window", args.get("batch_window", 0), 0, BATCH_MAX_WINDOW),
        "size": _integer(source, "batch_size", args.get("batch_size", DEFAULT_BATCH_SIZE), 1, BATCH_MAX_SIZE),
        "dedupe_within": _integer(source, "dedupe_within", args.get("dedupe_within", DEFAULT_DEDUPE_WITHIN), 0, 86400),
        "isolate_min_severity": _severity(source, "isolate_min_severity", args.get("isolate_min_severity", 7)),
        "isolate_types": _patterns(source, "isolate_types", args.get("isolate_types", DEFAULT_ISOLATE_TYPES)),
        "scan_min_severity": _severity(source, "scan_min_severity", args.get("scan_min_severity", 4)),
        "ignore_types": _patterns(source, "ignore_types", args.get("ignore_types", DEFAULT_IGNORE_TYPES)),
    }


def finding_action(body, batch):
    """What the rules do with one EventBridge event: (action, instance key, finding id, reason).

    action is "isolate", "scan", "ignore", or None for an event that is not a GuardDuty finding (a Security Hub
    custom action, another producer's message): it goes to the rules as its own event. The conditions are the
    per-finding rulebooks' (`is match` is re.match: anchored at the start); the ids are checked here because
    everything in a finding is data from outside.
    """
    if not isinstance(body, dict) or body.get("source") != "aws.guardduty" or not isinstance(body.get("detail"), dict):
        return None, None, None, None
    detail = body["detail"]
    finding_id = str(detail.get("id") or "")
    if not FINDING_ID.match(finding_id):
        return "ignore", None, finding_id[:128], "malformed finding id"
    finding_type = str(detail.get("type") or "")
    try:
        severity = float(detail.get("severity"))
    except (TypeError, ValueError):
        return "ignore", None, finding_id, "no severity"
    if severity < batch["scan_min_severity"] or any(p.match(finding_type) for p in batch["ignore_types"]):
        return "ignore", None, finding_id, "low severity or ignored type"
    resource = detail.get("resource") if isinstance(detail.get("resource"), dict) else {}
    instance = resource.get("instanceDetails") if isinstance(resource.get("instanceDetails"), dict) else {}
    if "instanceId" not in instance:
        return "ignore", None, finding_id, "not about an instance"
    key = (str(detail.get("accountId") or ""), str(detail.get("region") or ""), str(instance.get("instanceId") or ""))
    if not (ACCOUNT_ID.match(key[0]) and REGION_NAME.match(key[1]) and INSTANCE_ID.match(key[2])):
        return "ignore", None, finding_id, "malformed account, region or instance id"
    if severity >= batch["isolate_min_severity"] and any(p.match(finding_type) for p in batch["isolate_types"]):
        return "isolate", key, finding_id, None
    return "scan", key, finding_id, None


class BatchPlanner:
    """The events for a batch of SQS messages: one per action (isolate, scan, ignore) naming each instance once,
    and each message that is not a GuardDuty finding as its own event.

    An instance handed over for isolation is not handed over again (for isolation or a scan) within
    `dedupe_within` seconds; one handed over for a scan is not scanned again, but a later isolating finding
    isolates it. This is the per-finding rules' `throttle: once_within`, per instance across batches: a finding
    for an instance that a running playbook is containing never starts a second run.
    """

    def __init__(self, batch):
        self.batch = batch
        self.handed = {}          # {(account, region, instance): {action: monotonic time handed over}}

    def _recent(self, key, action, now):
        times = self.handed.get(key, {})
        actions = ("isolate",) if action == "isolate" else ("isolate", "scan")
        return next((a for a in actions if now - times.get(a, float("-inf")) < self.batch["dedupe_within"]), None)

    def plan(self, messages, now):
        """messages: SQS messages in the order received. Returns the events, in the order to hand them over."""
        own, instances, findings, ignored, seen = [], {"isolate": {}, "scan": {}}, {"isolate": [], "scan": []}, [], set()
        message_ids = {"isolate": [], "scan": [], "ignore": []}
        for message in messages:
            event = sqs_event(message)
            action, key, finding_id, reason = finding_action(event["body"], self.batch)
            if action is None:
                own.append(event)
                continue
            message_ids[action].append(message.get("MessageId"))
            if action == "ignore":
                ignored.append({"finding_id": finding_id, "reason": reason})
                continue
            detail = event["body"]["detail"]
            entry = instances[action].setdefault(key, {
                "account_id": key[0], "region": key[1], "instance_id": key[2], "finding_ids": [], "finding_types": [],
                "severity": 0.0, "detector_id": str((detail.get("service") or {}).get("detectorId") or "")})
            if finding_id not in entry["finding_ids"]:      # EventBridge delivers at least once
                entry["finding_ids"].append(finding_id)
                entry["finding_types"].append(str(detail.get("type")))
                entry["severity"] = max(entry["severity"], float(detail["severity"]))
            if finding_id not in seen:
                seen.add(finding_id)
                findings[action].append(finding_id)
        # an instance isolated in this batch is not scanned on its own: isolation scans it
        for key in set(instances["scan"]) & set(instances["isolate"]):
            moved = instances["scan"].pop(key)
            target = instances["isolate"][key]
            for finding_id, finding_type in zip(moved["finding_ids"], moved["finding_types"]):
                if finding_id not in target["finding_ids"]:
                    target["finding_ids"].append(finding_id)
                    target["finding_types"].append(finding_type)
        events = []
        for action in ("isolate", "scan"):
            handed = []
            for key, entry in instances[action].items():
                earlier = self._recent(key, action, now)
                if earlier:
                    ignored.extend({"finding_id": f, "reason": f"{key[2]} handed over for {earlier} already"}
                                   for f in entry["finding_ids"])
                    continue
                self.handed.setdefault(key, {})[action] = now
                handed.append(entry)
            if handed:
                ids = [f for entry in handed for f in entry["finding_ids"]]
                events.append(batch_event(action, handed, ids, message_ids[action]))
        if ignored:
            events.append(batch_event("ignore", [], [i["finding_id"] for i in ignored], message_ids["ignore"],
                                      ignored=ignored))
        return events + own


def batch_event(action, instances, finding_ids, message_ids, ignored=None):
    """One batch's event for the rules: `body.action`, `body.instances` (each once, with its findings), and
    `body.id`, the first finding's id: the incident of the run, as for one finding."""
    body = {"source": "cloudsec.guardduty.sqs", "detail-type": BATCH_DETAIL_TYPE, "action": action,
            "id": finding_ids[0] if finding_ids else None, "instances": instances, "finding_ids": finding_ids}
    if ignored is not None:
        body["ignored"] = ignored
    return {"body": body, "meta": {"MessageIds": [m for m in message_ids if m]}}


def sqs_event(message):
    """The event for one SQS message, as ansible.eda.aws_sqs_queue gives it: the body (parsed when it is
    JSON, the EventBridge event for a GuardDuty finding) and the message id."""
    body = message.get("Body")
    try:
        body = json.loads(body)
    except (TypeError, ValueError):
        pass
    return {"body": body, "meta": {"MessageId": message.get("MessageId")}}


def poller_options(args, environ, now=None):
    """The GuardDuty findings source's arguments, validated; `selection` is the inventory's filter."""
    source = "cloudsec.guardduty.guardduty_findings"
    aws = aws_options(source, args, environ)
    regions = args.get("regions") or ([aws["region"]] if aws["region"] else [])
    if isinstance(regions, str):  # from a rulebook variable: "us-east-1,eu-west-1"
        regions = [r.strip() for r in regions.split(",") if r.strip()]
    if not regions:
        raise SourceOptionError(f"{source}: regions is required (or region, or AWS_REGION in the environment)")
    accounts = []
    for entry in args.get("accounts") or []:
        if isinstance(entry, dict):
            account_id, role_arn = str(entry.get("account_id") or ""), entry.get("role_arn")
        else:
            account_id, role_arn = str(entry), None
        if not account_id.isdigit() or len(account_id) != 12:
            raise SourceOptionError(f"{source}: accounts: {account_id!r} is not a 12-digit account id")
        role_template = args.get("account_role_arn") or "arn:aws:iam::{account_id}:role/GuardDutyResponder"
        accounts.append({"account_id": account_id, "role_arn": role_arn or role_template.format(account_id=account_id)})
    use_current = args.get("use_current_credentials", True)
    if not use_current and not accounts:
        raise SourceOptionError(f"{source}: use_current_credentials is false and no accounts are listed")
    try:
        selection = normalize_selection(updated_since=args.get("updated_since", "1h"), now=now,
                                        **{k: args[k] for k in SELECTION_OPTIONS if k in args})
    except ValueError as exc:
        raise SourceOptionError(f"{source}: {exc}") from None
    return {
        "aws": aws,
        "regions": [str(r) for r in regions],
        "accounts": accounts,
        "use_current_credentials": bool(use_current),
        "selection": selection,
        "interval": _integer(source, "interval", args.get("interval", 60), 1, 86400),
        "overlap_ms": 1000 * _integer(source, "overlap_seconds", args.get("overlap_seconds", 300), 0, 86400),
        "state_file": os.path.expanduser(str(args.get("state_file") or DEFAULT_STATE_FILE)),
    }


def finding_event(wire_finding, region, account):
    """A finding (GuardDuty's JSON, camelCase: what GuardDuty sends to EventBridge) wrapped as the
    EventBridge event that carries it, under `body` as the SQS source gives it: the same rules read both."""
    return {"body": {
        "version": "0",
        "id": f"{wire_finding.get('id')}:{wire_finding.get('updatedAt')}",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": account,
        "time": wire_finding.get("updatedAt"),
        "region": region,
        "resources": [],
        "detail": wire_finding,
    }, "meta": {"finding_id": wire_finding.get("id"), "updated_at": wire_finding.get("updatedAt")}}


class FindingLedger:
    """Which findings were emitted, per account and region: {finding id: updatedAt (epoch ms)}, and the
    watermark, the latest updatedAt seen. A finding is due when it is unknown or its updatedAt moved.

    The listing asks for updatedAt >= watermark - overlap (GuardDuty's listing may show an update late);
    what is older than that cannot be listed again unless it is updated, so it is forgotten.
    """

    def __init__(self, path, overlap_ms):
        self.path = path
        self.overlap_ms = overlap_ms
        self.scopes = {}

    @staticmethod
    def scope(account, region):
        return f"{account}/{region}"

    def load(self):
        """Read the state file; a missing one is a first start, an unreadable one is an error."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return self
        except (OSError, ValueError) as exc:
            raise SourceOptionError(f"cloudsec.guardduty.guardduty_findings: state_file {self.path} cannot be "
                                    f"read ({exc}); move it away to start again from updated_since") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise SourceOptionError(f"cloudsec.guardduty.guardduty_findings: state_file {self.path} is not a "
                                    f"state file of version {STATE_VERSION}")
        try:
            self.scopes = {str(k): {"floor": int(v["floor"]), "watermark": int(v["watermark"]),
                                    "emitted": {str(i): int(t) for i, t in v["emitted"].items()}}
                           for k, v in data.get("scopes", {}).items()}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise SourceOptionError(f"cloudsec.guardduty.guardduty_findings: state_file {self.path} is damaged "
                                    f"({exc!r}); move it away to start again from updated_since") from None
        return self

    def save(self):
        """Write atomically (a new file renamed over the old), readable by its owner only."""
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".guardduty_findings.")
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"version": STATE_VERSION, "scopes": self.scopes}, out, sort_keys=True)
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def since(self, account, region, first_since):
        """updatedAt (epoch ms) this poll lists from: the watermark less the overlap, never before where
        the first start began (`first_since`, from updated_since, kept in the state from then on)."""
        known = self.scopes.setdefault(self.scope(account, region), {
            "floor": int(first_since or 0), "watermark": int(first_since or 0), "emitted": {}})
        return max(known["floor"], known["watermark"] - self.overlap_ms)

    def due(self, account, region, findings):
        """The findings (GetFindings' python form) to emit, oldest update first."""
        known = self.scopes.get(self.scope(account, region), {"floor": 0, "watermark": 0, "emitted": {}})
        emitted = known["emitted"]
        # older than the window was emitted (or excluded) before and forgotten: a late listing is no news
        window = max(known["floor"], known["watermark"] - self.overlap_ms)
        out = []
        for finding in findings:
            updated = timestamp_ms(finding.get("UpdatedAt")) or 0
            if updated >= window and emitted.get(finding.get("Id"), -1) < updated:
                out.append((updated, finding["Id"], finding))
        return [item[2] for item in sorted(out, key=lambda item: (item[0], item[1]))]

    def record(self, account, region, finding):
        """Remember one finding as emitted (once the rulebook took its event); `since` made the scope."""
        known = self.scopes[self.scope(account, region)]
        updated = timestamp_ms(finding.get("UpdatedAt")) or 0
        known["emitted"][finding["Id"]] = updated
        known["watermark"] = max(known["watermark"], updated)

    def polled(self, account, region, findings):
        """After a poll: the watermark moves to the latest update listed, and what is older than the
        overlap is forgotten."""
        known = self.scopes[self.scope(account, region)]
        for finding in findings:
            known["watermark"] = max(known["watermark"], timestamp_ms(finding.get("UpdatedAt")) or 0)
        floor = known["watermark"] - self.overlap_ms
        known["emitted"] = {i: t for i, t in known["emitted"].items() if t >= floor}


def in_thread(name, function, *args, **kwargs):
    """A future for `function(*args, **kwargs)` run in a daemon thread named `name`: blocking boto3 calls stay off
    the event loop, and a long poll never holds the process at exit."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def hand(callback):
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed (the source was stopped during a long poll): nobody waits
            pass

    def run():
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting coroutine
            # bound now: Python unbinds `exc` when the except block ends, before the loop runs the callback
            hand(lambda error=exc: future.done() or future.set_exception(error))
        else:
            hand(lambda: future.done() or future.set_result(result))

    threading.Thread(target=run, daemon=True, name=name).start()
    return future
