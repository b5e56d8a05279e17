# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cloudsec.guardduty.guardduty_findings: an ansible-rulebook event source polling GuardDuty itself.

No EventBridge rule and no queue: every `interval` seconds it lists the findings of each account and
region (ListFindings on the account's detector, then GetFindings) updated since the last poll, with
the inventory plugin's filter (min_severity, finding_types, exclude_finding_types, archived, tags),
and emits each new or updated finding once, as the EventBridge event GuardDuty would have sent:
{"body": {"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": <the finding in
GuardDuty's JSON>, ...}, "meta": {"finding_id", "updated_at"}}. The rules written for
cloudsec.guardduty.sqs read these events unchanged.

What was emitted is kept in `state_file` (JSON, mode 0600, written after the rulebook took each
event): a restart emits neither a finding twice nor a finding updated while it was down zero times.
The first start (no state file) begins at `updated_since` (default 1h back).

Arguments:
  regions                  regions to poll (default: region, or AWS_REGION)
  accounts                 other accounts, each an id or {account_id, role_arn}, read through a role
                           assumed there (a GuardDuty administrator sees its members' findings itself)
  account_role_arn         role template for `accounts` (default arn:aws:iam::{account_id}:role/GuardDutyResponder)
  use_current_credentials  poll the credentials' own account too (default true)
  min_severity, finding_types, exclude_finding_types, archived, tags   as the inventory plugin's
  updated_since            where a first start begins: a duration back (1h, 30m, 0s) or an ISO 8601 time
  interval                 seconds between polls (default 60)
  overlap_seconds          how far before the last update seen each poll looks again (default 300)
  state_file               default ~/.ansible/cloudsec.guardduty/guardduty_findings.json
  access_key, secret_key, session_token, profile, region, endpoint_url   as amazon.aws (and the same
                           environment variables), see cloudsec.guardduty.sqs

Example:
  sources:
    - cloudsec.guardduty.guardduty_findings:
        regions: [us-east-1, eu-west-1]
        min_severity: 4
        interval: 60

Permissions: guardduty:ListDetectors, guardduty:ListFindings, guardduty:GetFindings,
sts:GetCallerIdentity, and sts:AssumeRole on the roles of `accounts` (docs/iam/eda-guardduty-poller.json).
"""

import asyncio
import json
import logging
import os
import sys


def _collection_root():
    """The directory holding ansible_collections/, from this file's place in the collection."""
    path = os.path.abspath(globals().get("__file__") or sys.argv[0])
    for _level in range(8):
        path = os.path.dirname(path)
    return path


try:  # ansible-rulebook runs this file by its path: the collection's own code is imported from its root
    from ansible_collections.cloudsec.guardduty.plugins.module_utils import event_sources
except ImportError:
    sys.path.insert(0, _collection_root())
    from ansible_collections.cloudsec.guardduty.plugins.module_utils import event_sources
from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import findings as finding_filters
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty

logger = logging.getLogger("cloudsec.guardduty.guardduty_findings")
SESSION_NAME = "cloudsec-guardduty-eda"


def in_thread(function, *args, **kwargs):
    return event_sources.in_thread("cloudsec.guardduty.guardduty_findings", function, *args, **kwargs)


class Poller:
    """The AWS side: one session per account, one client per account and region, each keeping GetFindings' own
    JSON (the finding as GuardDuty sends it).

    An assumed role's credentials end (1 hour by default) while the source runs for days: its session renews
    them itself before they expire (event_sources.assumed_role_session), and a poll refused because they
    expired anyway (a clock off by more than the renewal margin) assumes the role again and polls once more."""

    def __init__(self, options):
        import boto3
        from botocore.config import Config

        self.options = options
        self.config = Config(retries={"mode": "standard", "max_attempts": 10})
        self.base = boto3.Session(**event_sources.session_arguments(options["aws"]))
        self.clients = {}
        self.roles = {}     # account -> the role ARN read through
        self.sessions = {}  # account -> its current session

    def _client(self, session, service, region):
        # GuardDuty's calls go through the floor (module_utils/guardduty.py, aws_calls.py), which retries them:
        # its clients have botocore's retries off, or a throttled call would go out 10 x 10 times (docs/aws_calls.md)
        config = aws_calls.client_config() if service == "guardduty" else self.config
        return session.client(service, region_name=region, endpoint_url=self.options["aws"]["endpoint_url"],
                              config=config)

    def targets(self):
        """[(account, session)] to poll: the credentials' own account, then each listed account's role."""
        out = []
        sts = self._client(self.base, "sts", self.options["regions"][0])
        if self.options["use_current_credentials"]:
            out.append((sts.get_caller_identity()["Account"], self.base))
        for entry in self.options["accounts"]:
            self.roles[entry["account_id"]] = entry["role_arn"]
            out.append((entry["account_id"], self.assume(entry["account_id"])))
        return out

    def assume(self, account):
        """A new session of the account's role; its clients are made again from it."""
        role_arn = self.roles[account]
        sts = self._client(self.base, "sts", self.options["regions"][0])
        try:
            session = event_sources.assumed_role_session(sts, role_arn, SESSION_NAME)
        except Exception as exc:
            raise RuntimeError(f"cloudsec.guardduty.guardduty_findings: account {account}: "
                               f"AssumeRole {role_arn} failed: {exc}") from None
        self.sessions[account] = session
        for key in [k for k in self.clients if k[0] == account]:
            del self.clients[key]
        return session

    def guardduty(self, account, session, region):
        key = (account, region)
        if key not in self.clients:
            client = self._client(session, "guardduty", region)
            wire = {}

            def keep(http_response, **kwargs):
                if http_response.status_code == 200:
                    for finding in json.loads(http_response.content).get("findings") or []:
                        wire[finding.get("id")] = finding

            client.meta.events.register("after-call.guardduty.GetFindings", keep)
            self.clients[key] = (client, wire, guardduty.find_detector(client))
        return self.clients[key]

    def poll(self, account, session, region, since):
        """(findings in python form, {id: GuardDuty's JSON}) updated at or after `since` (epoch ms)."""
        session = self.sessions.get(account, session)
        try:
            return self._poll(account, session, region, since)
        except Exception as exc:
            code = getattr(exc, "code", None) or aws_calls.error_code(exc)  # GuardDutyError carries AWS's code
            if account not in self.roles or code not in event_sources.EXPIRED_CREDENTIALS:
                raise
            logger.info("cloudsec.guardduty.guardduty_findings: account %s: the role's credentials expired (%s); "
                        "assuming %s again", account, code, self.roles[account])
            return self._poll(account, self.assume(account), region, since)

    def _poll(self, account, session, region, since):
        client, wire, detector_id = self.guardduty(account, session, region)
        wire.clear()
        criteria = finding_filters.finding_criteria(dict(self.options["selection"], updated_since=since))
        found = guardduty.find_findings(client, detector_id, criteria)
        return found, dict(wire)


async def poll_once(queue, poller, ledger, targets, options):
    """One pass over every account and region; returns the number of events emitted."""
    emitted = 0
    first_since = options["selection"]["updated_since"] or 0
    # time is the ledger's: updated_since only places a first start (re-read at a restart, it would drop
    # what was updated while the source was down)
    selection = dict(options["selection"], updated_since=None)
    for account, session in targets:
        for region in options["regions"]:
            since = ledger.since(account, region, first_since)
            try:
                found, wire = await in_thread(poller.poll, account, session, region, since)
            except Exception as exc:
                raise RuntimeError(f"cloudsec.guardduty.guardduty_findings: account {account}, {region}: {exc}") \
                    from None
            for finding in ledger.due(account, region, found):
                keep, _reason = finding_filters.finding_selected(finding, selection)
                if keep and finding["Id"] in wire:
                    await queue.put(event_sources.finding_event(wire[finding["Id"]], region, account))
                    emitted += 1
                ledger.record(account, region, finding)
                ledger.save()  # after the rulebook took the event: a restart does not emit it again
            ledger.polled(account, region, found)
            ledger.save()
    return emitted


async def main(queue, args):
    options = event_sources.poller_options(args, os.environ)
    ledger = event_sources.FindingLedger(options["state_file"], options["overlap_ms"]).load()
    poller = await in_thread(Poller, options)
    targets = await in_thread(poller.targets)
    logger.info("cloudsec.guardduty.guardduty_findings: polling %s in %s every %s s",
                ", ".join(account for account, _session in targets), ", ".join(options["regions"]), options["interval"])
    while True:
        await poll_once(queue, poller, ledger, targets, options)
        await asyncio.sleep(options["interval"])
