# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AWS Support case (seed step 5) and the AWS re:Post pointer (seed step 4).

One case per incident: its subject starts with "[<incident id>]", which is how a rerun finds it
(DescribeCases has no subject filter, so the account's cases are listed and matched here).
The case body is built from what the caller passes, with anything that looks like an AWS secret removed.
"""

import re

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls

SUBJECT_MAX = 255  # what the Support Center's subject field takes
BODY_MAX = 8000  # CreateCase's communicationBody limit
SUPPORT_REGION = "us-east-1"  # the AWS Support API's endpoint (aws partition)
RE_POST = {
    "url": "https://repost.aws/",
    "text": ("Step 4 of GuardDuty's procedure: for further help, ask the community and AWS experts on AWS re:Post "
             "(https://repost.aws/), tagging the question Amazon GuardDuty and Amazon EC2. Never post instance ids "
             "tied to account ids, IP addresses of your hosts, keys or logs that hold secrets."),
}
NO_PLAN = ("the account has no Business, Enterprise On-Ramp or Enterprise Support plan (SubscriptionRequiredException): "
           "the AWS Support API cannot open a case; open one from the AWS Support Center console, or ask on AWS re:Post")

# Access key ids, and secret keys or session tokens given as key=value / key: value.
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b")
_SECRET = re.compile(r"(?i)(aws_secret_access_key|secret_access_key|secretaccesskey|aws_session_token|sessiontoken|"
                     r"password|passwd)(\s*[:=]\s*)\S+")


def redact(text):
    """The text without AWS access key ids, secret keys, session tokens and passwords."""
    text = _ACCESS_KEY.sub("[redacted access key id]", str(text))
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)


def subject_prefix(incident_id):
    return f"[{incident_id}]"


def case_subject(incident_id, subject):
    return f"{subject_prefix(incident_id)} {subject}"[:SUBJECT_MAX]


def case_body(incident_id, summary, instance_ids, finding_types):
    lines = [f"Incident {incident_id}: Amazon GuardDuty reported potentially compromised Amazon EC2 instances.", ""]
    lines.append(redact(summary).strip())
    if instance_ids:
        lines += ["", "Instances: " + ", ".join(instance_ids)]
    if finding_types:
        lines += ["Finding types: " + ", ".join(sorted(set(finding_types)))]
    body = "\n".join(lines)
    return body if len(body) <= BODY_MAX else body[:BODY_MAX - 20] + "\n[...truncated]"


def find_case(cases, incident_id):
    """The incident's case among DescribeCases' cases (the oldest, when several), or None."""
    prefix = subject_prefix(incident_id)
    mine = [c for c in cases if str(c.get("subject") or "").startswith(prefix)]
    return sorted(mine, key=lambda c: str(c.get("timeCreated") or ""))[0] if mine else None


def case_view(case):
    return {k: case.get(k) for k in ("caseId", "displayId", "subject", "status", "serviceCode", "categoryCode",
                                     "severityCode", "timeCreated")}


# -- AWS ----------------------------------------------------------------------------------------

def list_cases(client, language):
    """Every case of the account, resolved ones included (a resolved case is still the incident's case)."""
    cases = []
    for page in aws_calls.pages(client, "DescribeCases", includeResolvedCases=True, includeCommunications=False,
                                language=language, maxResults=100):
        cases.extend(page.get("cases", []))
        if not page.get("cases"):
            break
    return cases


def create_case(client, **kwargs):
    # Not retried (nor by botocore: the floor's clients have its retries off): a retried CreateCase whose first
    # attempt reached AWS would open a second case.
    return client.create_case(**kwargs)


def describe_case(client, case_id, language):
    """The case by id, or None."""
    cases = aws_calls.call(client, "DescribeCases", caseIdList=[case_id], includeResolvedCases=True, includeCommunications=False,
                           language=language).get("cases", [])
    return cases[0] if cases else None
