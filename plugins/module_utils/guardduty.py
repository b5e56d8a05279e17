# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""GuardDuty, the thin AWS layer the finding and scan modules share, and the finding-state decisions.

AWS calls: the detector lookup, ListFindings (all pages), GetFindings (50 ids a call), archive /
unarchive / feedback (50 ids a call), StartMalwareScan (with a client token, so a retried call never
starts a second scan), DescribeMalwareScans (all pages). Each goes through the floor (aws_calls.py),
retried by GuardDuty's policy. The inventory plugin reads findings through the same functions.

Decisions (`finding_state`, `plan_finding_updates`) are pure: GetFindings results in, calls out.
"""

import time
from email.utils import parsedate_to_datetime

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils.arns import caller_partition
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import chunks
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_message

GET_FINDINGS_BATCH = 50  # GetFindings accepts at most 50 ids a call
LIST_FINDINGS_PAGE = 50  # ListFindings MaxResults is at most 50
UPDATE_BATCH = 50  # ArchiveFindings, UnarchiveFindings and UpdateFindingsFeedback take at most 50 ids
FEEDBACK_VALUES = ("USEFUL", "NOT_USEFUL")
ADMIN_ONLY_ARCHIVE = ("only the GuardDuty administrator account can archive findings: member accounts cannot archive "
                      "findings, not even their own. Run this task with the administrator account's credentials (its "
                      "detector sees and archives its members' findings in the same Region)")


class GuardDutyError(Exception):
    """A GuardDuty call failed; the message names the action and AWS's error code; `cause` is AWS's error."""

    def __init__(self, action, message, code=None, cause=None):
        self.action = action
        self.code = code
        self.cause = cause
        super().__init__(f"{action}: {message}" + (f" ({code})" if code else ""))

    def as_dict(self):
        return {"action": self.action, "code": self.code, "message": str(self)}


def error_from(action, exc):
    if isinstance(exc, GuardDutyError):
        return exc
    return GuardDutyError(action, error_message(exc), error_code(exc), exc)


# -- decisions ----------------------------------------------------------------------------------


def finding_state(finding):
    """What guardduty_finding manages on one finding: archived or not, and the feedback given."""
    service = finding.get("Service") or {}
    return {"archived": bool(service.get("Archived")), "feedback": service.get("UserFeedback") or None}


def plan_finding_updates(finding_ids, current, archived=None, feedback=None, comment=None):
    """(calls, after) for the findings whose `current` state ({id: finding_state}) is known.

    `archived` True/False/None (leave as is); `feedback` USEFUL/NOT_USEFUL/None. Only findings whose state
    differs are named in a call: GuardDuty does not echo a feedback comment back, so a comment alone never
    makes a call (it travels with a feedback change).
    """
    to_archive = [i for i in finding_ids if archived is True and not current[i]["archived"]]
    to_unarchive = [i for i in finding_ids if archived is False and current[i]["archived"]]
    to_feedback = [i for i in finding_ids if feedback and current[i]["feedback"] != feedback]
    calls = []
    for batch in chunks(to_archive, UPDATE_BATCH):
        calls.append(("ArchiveFindings", {"FindingIds": batch}))
    for batch in chunks(to_unarchive, UPDATE_BATCH):
        calls.append(("UnarchiveFindings", {"FindingIds": batch}))
    for batch in chunks(to_feedback, UPDATE_BATCH):
        params = {"FindingIds": batch, "Feedback": feedback}
        if comment:
            params["Comments"] = comment
        calls.append(("UpdateFindingsFeedback", params))
    return calls, state_after_calls(current, calls, finding_ids)


def state_after_calls(current, calls, finding_ids=None):
    """{id: finding_state} once `calls` are made: the truth after a complete or a partial run."""
    after = {i: dict(current[i]) for i in (finding_ids if finding_ids is not None else current)}
    for action, params in calls:
        for finding_id in params["FindingIds"]:
            if finding_id not in after:
                continue
            if action == "ArchiveFindings":
                after[finding_id]["archived"] = True
            elif action == "UnarchiveFindings":
                after[finding_id]["archived"] = False
            elif action == "UpdateFindingsFeedback":
                after[finding_id]["feedback"] = params["Feedback"]
    return after


def explain_update_error(action, exc):
    """A GuardDutyError for a failed archive/unarchive/feedback call, saying what the refusal means."""
    code = error_code(exc)
    if action == "ArchiveFindings" and code in ("BadRequestException", "AccessDeniedException"):
        return GuardDutyError(action, f"{ADMIN_ONLY_ARCHIVE}. AWS said: {error_message(exc)}", code, exc)
    return error_from(action, exc)


# -- AWS calls ----------------------------------------------------------------------------------


def list_detector_ids(client):
    """The account's detector ids in this Region (ListDetectors, all pages); [] when GuardDuty is not enabled."""
    try:
        return aws_calls.items(client, "ListDetectors", "DetectorIds")
    except Exception as exc:
        raise error_from("ListDetectors", exc) from None


def find_detector(client, detector_id=None):
    """The detector to use: `detector_id` when given, else the only detector of the account in this Region."""
    if detector_id:
        return detector_id
    ids = list_detector_ids(client)
    if not ids:
        raise GuardDutyError("ListDetectors", "GuardDuty is not enabled in this account and Region (no detector)",
                             "NoDetector")
    return ids[0]


def list_finding_ids(client, detector_id, criteria=None):
    """Every finding id matching the FindingCriteria, all pages."""
    return [finding_id for page in finding_id_pages(client, detector_id, criteria) for finding_id in page]


def finding_id_pages(client, detector_id, criteria=None):
    """The finding ids matching the FindingCriteria, one page (at most LIST_FINDINGS_PAGE) at a time, so that
    their GetFindings can start while the next page is asked."""
    kwargs = {"DetectorId": detector_id, "MaxResults": LIST_FINDINGS_PAGE}
    if criteria:
        kwargs["FindingCriteria"] = criteria
    try:
        for page in aws_calls.pages(client, "ListFindings", **kwargs):
            yield page.get("FindingIds") or []
    except Exception as exc:
        raise error_from("ListFindings", exc) from None


def get_findings(client, detector_id, finding_ids):
    """The findings for the ids (GetFindings takes 50 at a time); unknown ids are simply absent."""
    out = []
    try:
        for batch in chunks(finding_ids, GET_FINDINGS_BATCH):
            out.extend(aws_calls.call(client, "GetFindings", DetectorId=detector_id, FindingIds=batch)["Findings"])
    except Exception as exc:
        raise error_from("GetFindings", exc) from None
    return out


def find_findings(client, detector_id, criteria=None):
    return get_findings(client, detector_id, list_finding_ids(client, detector_id, criteria))


def apply_finding_updates(client, detector_id, calls):
    """Make the planned calls in order; on failure raise GuardDutyError carrying `done` (calls made)."""
    done = []
    for action, params in calls:
        try:
            aws_calls.call(client, action, DetectorId=detector_id, **params)
        except Exception as exc:
            problem = explain_update_error(action, exc)
            problem.done = done
            raise problem from None
        done.append((action, params))
    return done


def start_malware_scan(client, resource_arn, client_token):
    """The new scan's id. The client token makes a retried call return the same scan, never a second one.

    Errors are left to the caller (ConflictException means a recent scan exists).
    """
    return aws_calls.call(client, "StartMalwareScan", ResourceArn=resource_arn, ClientToken=client_token)["ScanId"]


def describe_malware_scans(client, detector_id, criteria=None, max_results=50, first_page_only=False, sort=None):
    """Scans matching the FilterCriterion list (AWS takes at most one), in `sort` order (SortCriteria);
    all pages unless `first_page_only`."""
    kwargs = {"DetectorId": detector_id, "MaxResults": max_results}
    if criteria:
        kwargs["FilterCriteria"] = {"FilterCriterion": criteria}
    if sort:
        kwargs["SortCriteria"] = sort
    try:
        if first_page_only:
            return aws_calls.call(client, "DescribeMalwareScans", **kwargs).get("Scans") or []
        return aws_calls.items(client, "DescribeMalwareScans", "Scans", **kwargs)
    except Exception as exc:
        raise error_from("DescribeMalwareScans", exc) from None


def recent_malware_scans(client, detector_id, interval):
    """(scans started within `interval` seconds of GuardDuty's now, that now in epoch seconds).

    Newest first, paged until older: usually one call for a whole batch, whatever its size (one FilterCriterion at
    most, so no filter: the sort does the work). "Now" is the Date of GuardDuty's answer, so a controller whose clock
    is off does not misjudge the hour AWS counts; the controller's clock only when the answer has no Date.
    """
    kwargs = {"DetectorId": detector_id, "MaxResults": 50, "SortCriteria": {"AttributeName": "scanStartTime", "OrderBy": "DESC"}}
    recent, now = [], None
    try:
        for page in aws_calls.pages(client, "DescribeMalwareScans", **kwargs):
            if now is None:
                now = _answer_time(page)
            for scan in page.get("Scans") or []:
                started = _epoch(scan.get("ScanStartTime"))
                if started is not None and started <= now - interval:
                    return recent, now
                recent.append(scan)
        return recent, now
    except Exception as exc:
        raise error_from("DescribeMalwareScans", exc) from None


def _answer_time(page):
    date = ((page.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("date")
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return time.time()


def _epoch(value):
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def caller_identity(sts_client):
    """(account id, partition) of the caller: the partition from GetCallerIdentity's Arn (arns.py)."""
    identity = aws_calls.caller_identity(sts_client)
    return identity["Account"], caller_partition(identity)
