# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Closing the loop in AWS Security Hub: the workflow status and a note on the GuardDuty findings of
the contained instances.

GuardDuty sends every finding to Security Hub in the AWS Security Finding Format (ASFF), in the same
account and Region (GuardDuty User Guide, "Integration with AWS Security Hub",
https://docs.aws.amazon.com/guardduty/latest/ug/securityhub-integration.html). There the finding is
identified by (ProductArn, Id):
  ProductArn  arn:<partition>:securityhub:<region>::product/aws/guardduty
  Id          the GuardDuty finding's ARN (GuardDuty Finding.Arn, API reference API_Finding.html):
              arn:<partition>:guardduty:<region>:<account>:detector/<detectorId>/finding/<findingId>
The partition comes from the caller's ARN (GetCallerIdentity), never assumed to be `aws`.

Planning is pure (`finding_state`, `plan_updates`, `note_text`): described state in, BatchUpdateFindings
calls out (at most 100 findings a call, botocore model BatchUpdateFindingsRequest.FindingIdentifiers);
the AWS layer at the bottom makes the calls and reads UnprocessedFindings per finding.
"""

import re

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import chunks, error_code, error_message
from ansible_collections.cloudsec.guardduty.plugins.module_utils.securityhub_action import FINDING_ARN

WORKFLOW_STATUSES = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
UPDATE_BATCH = 100  # BatchUpdateFindings: "up to 100 findings at a time" (botocore model, FindingIdentifiers)
FILTER_VALUES_MAX = 20  # GetFindings: "For each attribute, you can provide up to 20 filter values"
GET_FINDINGS_PAGE = 100  # GetFindings MaxResults: 1..100
NOTE_MAX = 512  # ASFF Note.Text: "Maximum of 512" (botocore model, shape Note)
DEFAULT_UPDATED_BY = "cloudsec.guardduty"
GUARDDUTY_FINDING_ID = re.compile(r"^[0-9A-Za-z]{1,300}$")  # GuardDuty: finding ids are 1..300 characters
DETECTOR_ID = re.compile(r"^[0-9A-Za-z]{1,300}$")


# -- names --------------------------------------------------------------------------------------
def partition_of(arn):
    """The partition of an ARN (the caller's, from GetCallerIdentity)."""
    parts = str(arn).split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[1]:
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[1]


def guardduty_product_arn(partition, region):
    return f"arn:{partition}:securityhub:{region}::product/aws/guardduty"


def guardduty_finding_arn(partition, region, account, detector_id, finding_id):
    """The Security Hub Id of a GuardDuty finding: the GuardDuty finding's ARN."""
    return f"arn:{partition}:guardduty:{region}:{account}:detector/{detector_id}/finding/{finding_id}"


def split_finding_refs(refs):
    """(GuardDuty finding ids or finding ARNs, in order and without duplicates; {bad ref: reason}).

    Finding ids come from the inventory (GuardDuty's own ids); a ref may also be the finding's ARN."""
    valid, bad = [], {}
    for raw in refs or []:
        value = str(raw).strip()
        if not (GUARDDUTY_FINDING_ID.match(value) or FINDING_ARN.match(value)):
            bad[value] = "malformed GuardDuty finding id: expected 1 to 300 letters and digits, or the finding's ARN"
        elif value not in valid:
            valid.append(value)
    return valid, bad


def short_id(ref):
    """The GuardDuty finding id of a ref (the id itself, or the last part of its ARN)."""
    match = FINDING_ARN.match(ref)
    return match.group(5) if match else ref


def asff_id(ref, partition, region, account, detector_id):
    """The Security Hub Id of a finding ref (an ARN is used as it is)."""
    if FINDING_ARN.match(ref):
        return ref
    return guardduty_finding_arn(partition, region, account, detector_id, ref)


def note_text(note, incident_id=None, report_location=None):
    """The note written on the findings: the incident, what was done, where the report is.

    Raises ValueError when longer than Security Hub takes (512 characters): nothing is cut silently."""
    parts = []
    if incident_id:
        parts.append(f"Incident {incident_id}:")
    if note:
        parts.append(str(note).strip())
    if report_location:
        parts.append(f"Report: {report_location}")
    text = " ".join(parts)
    if len(text) > NOTE_MAX:
        raise ValueError(f"the note is {len(text)} characters; Security Hub takes at most {NOTE_MAX}")
    return text or None


# -- plan ---------------------------------------------------------------------------------------
def finding_state(finding):
    """What this module reads and writes of an ASFF finding."""
    note = finding.get("Note") or {}
    return {
        "workflow_status": (finding.get("Workflow") or {}).get("Status") or "NEW",
        "note": note.get("Text"),
        "note_updated_by": note.get("UpdatedBy"),
        "record_state": finding.get("RecordState"),
    }


def wanted_state(current, status, note, updated_by):
    after = dict(current, workflow_status=status)
    if note and current["note"] != note:  # the same text already there (whoever wrote it): left as it is
        after.update(note=note, note_updated_by=updated_by)
    return after


def update_call(identifiers, status, note, updated_by):
    params = {"FindingIdentifiers": [{"Id": i, "ProductArn": p} for i, p in identifiers], "Workflow": {"Status": status}}
    if note:
        params["Note"] = {"Text": note, "UpdatedBy": updated_by}
    return ("BatchUpdateFindings", params)


def plan_updates(wanted, found, product_arn, status, note, updated_by):
    """(calls, results, missing) for `wanted` {instance_id: {finding ref: Security Hub Id}}.

    `found` is {Security Hub Id: ASFF finding} (GetFindings). A finding already in `status` with the
    same note text is left alone; the others are updated together, UPDATE_BATCH a call (one note and one
    status for all). `results` is {instance_id: {"changed", "before", "after", "findings"}} keyed by the
    GuardDuty finding id; `missing` is {instance_id: [refs Security Hub does not hold]}.
    """
    to_update, results, missing = [], {}, {}
    for instance_id, refs in wanted.items():
        before, after, ids = {}, {}, {}
        for ref, hub_id in refs.items():
            finding = found.get(hub_id)
            if finding is None:
                missing.setdefault(instance_id, []).append(ref)
                continue
            key = short_id(ref)
            current = finding_state(finding)
            target = wanted_state(current, status, note, updated_by)
            ids[key] = hub_id
            before[key], after[key] = current, target
            if target != current and hub_id not in to_update:
                to_update.append(hub_id)
        changed = any(before[k] != after[k] for k in before)
        results[instance_id] = {"changed": changed, "before": before, "after": after, "findings": ids}
    calls = [update_call([(i, product_arn) for i in to_update[n:n + UPDATE_BATCH]], status, note, updated_by)
             for n in range(0, len(to_update), UPDATE_BATCH)]
    return calls, results, missing


def describe_call(call):
    """A short readable form of a call, for check mode and errors."""
    action, params = call
    return aws_calls.describe_call((action, dict(params, findings=len(params["FindingIdentifiers"]))), hide=("FindingIdentifiers",))


def unprocessed(response):
    """{Security Hub Id: (error code, message)} of the findings a BatchUpdateFindings did not update."""
    return {u["FindingIdentifier"]["Id"]: (u.get("ErrorCode"), u.get("ErrorMessage"))
            for u in response.get("UnprocessedFindings") or []}


def finding_filters(product_arn, hub_ids):
    """GetFindings filters per chunk of ids (at most FILTER_VALUES_MAX values per attribute)."""
    return [{"ProductArn": [{"Value": product_arn, "Comparison": "EQUALS"}],
             "Id": [{"Value": i, "Comparison": "EQUALS"} for i in chunk]}
            for chunk in chunks(hub_ids, FILTER_VALUES_MAX)]


# -- AWS ----------------------------------------------------------------------------------------

def caller_arn(sts_client):
    return aws_calls.caller_identity(sts_client)


def get_findings(client, product_arn, hub_ids):
    """{Security Hub Id: ASFF finding} for the ids; ids Security Hub does not hold are absent."""
    out = {}
    for filters in finding_filters(product_arn, hub_ids):
        for finding in aws_calls.items(client, "GetFindings", "Findings", Filters=filters, MaxResults=GET_FINDINGS_PAGE):
            out[finding["Id"]] = finding
    return out


def apply_call(client, call):
    """Make one BatchUpdateFindings call; its unprocessed findings, {Id: (code, message)}."""
    return unprocessed(aws_calls.call(client, call[0], **call[1]))


def apply_calls(client, calls, owner):
    """Make every call (a failed one does not stop the others, they carry other findings).

    {instance_id: [(Security Hub Id, action, code, message)]} of what was not updated: each of a call's
    UnprocessedFindings goes to the instance that owns it (`owner`: {Security Hub Id: instance_id}), and a
    refused call to every instance whose findings it carried."""
    failures = {}
    for call in calls:
        try:
            for hub_id, (code, message) in apply_call(client, call).items():
                failures.setdefault(owner[hub_id], []).append((hub_id, "BatchUpdateFindings", code, message))
        except Exception as exc:
            code, message = error_code(exc), error_message(exc)
            for hub_id in (f["Id"] for f in call[1]["FindingIdentifiers"]):
                failures.setdefault(owner[hub_id], []).append((hub_id, "BatchUpdateFindings", code, message))
    return failures
