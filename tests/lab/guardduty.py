"""GuardDuty findings and Malware Protection for EC2 in the lab (moto only has detectors).

Per account and region, shaped by botocore's guardduty model (tests/lab/guardduty_wire.py):
CreateSampleFindings, ListFindings, GetFindings, GetFindingsStatistics (COUNT_BY_SEVERITY),
ArchiveFindings, UnarchiveFindings, UpdateFindingsFeedback, StartMalwareScan, DescribeMalwareScans,
GetMalwareScanSettings. Everything else (detectors, members, filters...) stays with moto.

AWS behaviour kept here:
- the detector id must be the caller's in that region, else BadRequestException (AWS's message);
- a GuardDuty administrator lists, gets, archives and scans its members' findings and instances in
  the same region; a member sees only its own findings and may not archive them;
- GetFindings takes at most 50 ids, ListFindings/DescribeMalwareScans MaxResults is 1..50;
- DescribeMalwareScans takes at most one FilterCriterion and sorts only by scanStartTime; without
  SortCriteria (order undocumented) it answers oldest first;
- an on-demand scan of an instance less than an hour after the previous scan of that instance
  started is refused with AWS's documented message; an instance tagged GuardDutyExcluded=true is
  scanned and skipped (AWS: "GuardDuty will initiate the scan and then skip it");
- a scan goes RUNNING -> COMPLETED after `scan_duration` seconds of the lab clock; an infected one
  then produces an Execution:EC2/MaliciousFile finding carrying the scan id and the threats.
"""

import base64
import json
import re
import sys
import threading
import traceback

from moto.guardduty.models import guardduty_backends

from tests.lab import guardduty_findings as gf
from tests.lab import guardduty_wire as wire
from tests.lab import protocol

NOT_OWNED = "The request is rejected because the input detectorId is not owned by the current account."
RESCAN_TOO_SOON = ("A scan was started on this resource recently. You can request a scan on the same resource "
                   "one hour after the previous scan start time.")
RESCAN_INTERVAL = 3600
EXCLUSION_TAG = ("GuardDutyExcluded", "true")
INSTANCE_ARN = re.compile(r"^arn:aws[a-z-]*:ec2:([a-z0-9-]+):(\d{12}):instance/(i-[0-9a-f]+)$")
SCAN_FILTER_KEYS = {"EC2_INSTANCE_ARN", "SCAN_ID", "ACCOUNT_ID", "GUARDDUTY_FINDING_ID", "SCAN_START_TIME",
                    "SCAN_STATUS", "SCAN_TYPE"}


class LabError(Exception):
    def __init__(self, status, code, message, wire_type=None):
        super().__init__(message)
        self.status, self.code, self.message, self.wire_type = status, code, message, wire_type


def bad_request(message):
    # AWS answers x-amzn-ErrorType: BadRequestException with __type InvalidInputException in the body.
    return LabError(400, "BadRequestException", message, "InvalidInputException")


class GuardDutyLab:
    OPERATIONS = ("CreateSampleFindings", "ListFindings", "GetFindings", "GetFindingsStatistics", "ArchiveFindings",
                  "UnarchiveFindings", "UpdateFindingsFeedback", "StartMalwareScan", "DescribeMalwareScans",
                  "GetMalwareScanSettings")

    def __init__(self, clock, scan_duration=5.0):
        self.clock = clock
        self.scan_duration = scan_duration
        self._lock = threading.RLock()
        self.reset()

    def reset(self):
        with getattr(self, "_lock", threading.RLock()):
            self.findings = {}  # (account, region) -> {finding id: finding (python form)}
            self._wire = {}  # finding id -> its wire form, what FindingCriteria and SortCriteria read
            # (account, region, criterion, sort) -> the ids ListFindings selected, in order, until a finding changes:
            # AWS's own filtering is not on the caller's machine, the lab's is (one pass per listing, not per page)
            self._listings = {}
            self.scans = {}  # scan id -> {"scan": Scan (python form), "due", "threats", "account", "region"}
            self.client_tokens = {}  # (account, region, token) -> scan id
            self.malware = {}  # (account, region, instance id) -> [threat spec]
            self.administrator = None
            self.members = set()

    # -- scenario interface -------------------------------------------------------------------
    def add_finding(self, account, region, detector_id, spec):
        if not detector_id:
            raise ValueError(f"a finding for {account}/{region}, where GuardDuty is not enabled: {spec}")
        now = self.clock.now()
        instance = None
        if spec.get("instance_id"):
            instance = gf.instance_details(account, region, spec["instance_id"])
        finding = gf.build_finding(account, region, detector_id, spec, now, instance=instance)
        with self._lock:
            self.findings.setdefault((account, region), {})[finding["Id"]] = finding
            self._listings.clear()
        return finding

    def detect(self, account, region, spec):
        """A finding GuardDuty generates now (POST /_lab/guardduty/findings): `spec` as a scenario's, with
        `instance_id` for an instance of the lab; the account's detector in that region reports it."""
        return self.add_finding(account, region, self._detector_of(account, region), spec)

    def recur(self, finding_id):
        """The activity of a finding seen again: GuardDuty updates the finding itself (count + 1,
        eventLastSeen and updatedAt now) rather than making a new one ("Aggregated findings",
        https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings.html)."""
        with self._lock:
            for findings in self.findings.values():
                finding = findings.get(finding_id)
                if finding is not None:
                    now = gf.iso(self.clock.now())
                    finding["Service"]["Count"] += 1
                    finding["Service"]["EventLastSeen"] = now
                    finding["UpdatedAt"] = now
                    self._changed(finding)
                    return finding
        raise KeyError(f"no finding {finding_id}")

    def set_administrator(self, administrator, members):
        with self._lock:
            self.administrator = str(administrator)
            self.members = {str(m) for m in members if str(m) != str(administrator)}
            self._listings.clear()

    def set_malware(self, account, region, instance_id, spec):
        with self._lock:
            self.malware[(account, region, instance_id)] = list((spec or {}).get("threats") or [])

    def snapshot(self, account, region):
        """What the lab holds for an account and region (for tests): findings and scans."""
        with self._lock:
            self._complete_scans()
            return {"findings": list(self.findings.get((account, region), {}).values()),
                    "scans": [s["scan"] for s in self.scans.values() if (s["account"], s["region"]) == (account, region)]}

    # -- HTTP ---------------------------------------------------------------------------------
    def handles(self, req):
        return req.service == "guardduty" and req.action in self.OPERATIONS

    def handle(self, req):
        try:
            try:
                params = wire.request_params(req)
            except wire.WireError as exc:
                raise bad_request(f"The request is rejected because {exc}.") from None
            with self._lock:
                self._complete_scans()
                output = getattr(self, "_" + _snake(req.action))(req, params)
            return wire.response(req.action, output)
        except LabError as exc:
            status, headers, body = protocol.error_response(req, exc.status, exc.code, exc.message)
            if exc.wire_type:
                body = json.dumps({"__type": exc.wire_type, "message": exc.message}).encode()
            return status, headers, body, exc.code
        except Exception as exc:  # a lab bug: answer as AWS's 500 would, and say where in the lab's log
            traceback.print_exc(file=sys.stderr)
            status, headers, body = protocol.error_response(req, 500, "InternalServerErrorException",
                                                            f"lab error: {exc!r}")
            return status, headers, body, "InternalServerErrorException"

    def _wire_of(self, finding):
        cached = self._wire.get(finding["Id"])
        if cached is None:
            cached = self._wire[finding["Id"]] = gf.to_wire(finding)
        return cached

    def _changed(self, finding):
        self._wire.pop(finding["Id"], None)
        self._listings.clear()

    # -- who sees what ------------------------------------------------------------------------
    def _detector_of(self, account, region):
        detectors = guardduty_backends[account][region].detectors
        return next(iter(detectors), None)

    def _check_detector(self, req, params):
        detector_id = params.get("DetectorId")
        if not detector_id or detector_id not in guardduty_backends[req.account][req.region].detectors:
            raise bad_request(NOT_OWNED)
        return detector_id

    def _visible_accounts(self, account):
        if account == self.administrator:
            return [account] + sorted(self.members)
        return [account]

    def _visible_findings(self, req):
        out = []
        for account in self._visible_accounts(req.account):
            out.extend(self.findings.get((account, req.region), {}).values())
        return out

    def _findings_by_id(self, req, ids):
        ids = list(ids or [])
        if len(ids) > 50:
            raise bad_request("The request is rejected because the parameter findingIds has more than 50 items.")
        held = [self.findings.get((account, req.region), {}) for account in self._visible_accounts(req.account)]
        found = []
        for finding_id in ids:
            finding = next((findings[finding_id] for findings in held if finding_id in findings), None)
            if finding is not None:
                found.append(finding)
        return found

    # -- findings -----------------------------------------------------------------------------
    def _create_sample_findings(self, req, params):
        detector_id = self._check_detector(req, params)
        now = self.clock.now()
        for finding_type in params.get("FindingTypes") or gf.DEFAULT_TYPES_FOR_SAMPLES:
            spec = gf.sample_spec(finding_type)
            instance = gf.sample_instance(req.region) if "resource_type" not in spec else None
            finding = gf.build_finding(req.account, req.region, detector_id, spec, now, instance=instance)
            self.findings.setdefault((req.account, req.region), {})[finding["Id"]] = finding
        self._listings.clear()
        return {}

    def _list_findings(self, req, params):
        self._check_detector(req, params)
        max_results = _max_results(params, 50)
        criterion = (params.get("FindingCriteria") or {}).get("Criterion") or {}
        key = (req.account, req.region, json.dumps([criterion, params.get("SortCriteria")], sort_keys=True, default=str))
        selected = self._listings.get(key)
        if selected is None:
            wires = [(f, self._wire_of(f)) for f in self._visible_findings(req)]
            chosen = _sorted([(f, w) for f, w in wires if gf.matches(w, criterion)], params.get("SortCriteria"))
            if len(self._listings) >= 64:  # a listing's pages come one after the other; old ones are not asked again
                self._listings.clear()
            selected = self._listings[key] = [f["Id"] for f, _ in chosen]
        page, token = _page(selected, params.get("NextToken"), max_results)
        out = {"FindingIds": list(page)}
        if token:
            out["NextToken"] = token
        return out

    def _get_findings(self, req, params):
        self._check_detector(req, params)
        found = self._findings_by_id(req, params.get("FindingIds"))
        if params.get("SortCriteria"):
            found = [f for f, _ in _sorted([(f, self._wire_of(f)) for f in found], params["SortCriteria"])]
        return {"Findings": found}

    def _get_findings_statistics(self, req, params):
        self._check_detector(req, params)
        types = params.get("FindingStatisticTypes") or []
        criterion = (params.get("FindingCriteria") or {}).get("Criterion") or {}
        selected = [f for f in self._visible_findings(req) if gf.matches(self._wire_of(f), criterion)]
        stats = {}
        if "COUNT_BY_SEVERITY" in types or not params.get("GroupBy"):
            counts = {}
            for finding in selected:
                key = str(finding["Severity"])
                counts[key] = counts.get(key, 0) + 1
            stats["CountBySeverity"] = counts
        return {"FindingStatistics": stats}

    def _archive_findings(self, req, params):
        self._check_detector(req, params)
        if req.account in self.members:
            raise bad_request("The request is rejected because member accounts cannot archive findings: only the "
                              "GuardDuty administrator account can archive findings.")
        for finding in self._findings_by_id(req, params.get("FindingIds")):
            finding["Service"]["Archived"] = True
            self._changed(finding)
        return {}

    def _unarchive_findings(self, req, params):
        self._check_detector(req, params)
        for finding in self._findings_by_id(req, params.get("FindingIds")):
            finding["Service"]["Archived"] = False
            self._changed(finding)
        return {}

    def _update_findings_feedback(self, req, params):
        self._check_detector(req, params)
        feedback = params.get("Feedback")
        if feedback not in ("USEFUL", "NOT_USEFUL"):
            raise bad_request("The request is rejected because the parameter feedback has an invalid value.")
        for finding in self._findings_by_id(req, params.get("FindingIds")):
            finding["Service"]["UserFeedback"] = feedback
            self._changed(finding)
        return {}

    # -- Malware Protection -------------------------------------------------------------------
    def _get_malware_scan_settings(self, req, params):
        self._check_detector(req, params)
        return {"ScanResourceCriteria": {"Include": {}, "Exclude": {}}, "EbsSnapshotPreservation": "NO_RETENTION"}

    def _start_malware_scan(self, req, params):
        arn = params.get("ResourceArn") or ""
        match = INSTANCE_ARN.match(arn)
        if not match:
            raise bad_request("The request is rejected because the parameter resourceArn has an invalid value.")
        region, account, instance_id = match.groups()
        if region != req.region or account not in self._visible_accounts(req.account):
            raise bad_request("The request is rejected because the resourceArn does not belong to the current "
                              "account or to one of its member accounts in this Region.")
        detector_id = self._detector_of(account, region)
        if detector_id is None:
            raise bad_request("The request is rejected because GuardDuty is not enabled for the resource's account "
                              "in this Region.")
        token = params.get("ClientToken")
        if token and (req.account, req.region, token) in self.client_tokens:
            return {"ScanId": self.client_tokens[(req.account, req.region, token)]}
        try:
            tags = gf.instance_tags(account, region, instance_id)
            volumes = gf.instance_volumes(account, region, instance_id)
        except Exception:  # moto's InvalidInstanceID
            raise bad_request(f"The request is rejected because the resource {arn} was not found.") from None
        now = self.clock.now()
        for record in self.scans.values():
            previous = record["scan"]
            if previous["ResourceDetails"]["InstanceArn"] == arn and \
                    now - record["started"] < RESCAN_INTERVAL:
                raise LabError(409, "ConflictException", RESCAN_TOO_SOON)
        scan_id = gf.new_id()
        scan = {
            "DetectorId": detector_id,
            "AdminDetectorId": self._detector_of(self.administrator, region)
            if account in self.members and self.administrator else detector_id,
            "ScanId": scan_id,
            "ScanStatus": "RUNNING",
            "ScanStartTime": gf.stamp(now),
            "ResourceDetails": {"InstanceArn": arn},
            "AccountId": account,
            "AttachedVolumes": volumes,
            "ScanType": "ON_DEMAND",
        }
        if tags.get(EXCLUSION_TAG[0]) == EXCLUSION_TAG[1]:
            scan.update(ScanStatus="SKIPPED", ScanEndTime=gf.stamp(now),
                        FailureReason=f"Skipped: the instance has the {EXCLUSION_TAG[0]}:{EXCLUSION_TAG[1]} tag.")
        self.scans[scan_id] = {"scan": scan, "started": now, "due": now + self.scan_duration, "account": account,
                               "region": region, "instance_id": instance_id,
                               "threats": list(self.malware.get((account, region, instance_id), []))}
        if token:
            self.client_tokens[(req.account, req.region, token)] = scan_id
        return {"ScanId": scan_id}

    def _complete_scans(self):
        now = self.clock.now()
        for record in self.scans.values():
            scan = record["scan"]
            if scan["ScanStatus"] != "RUNNING" or record["due"] > now:
                continue
            threats = record["threats"]
            total_gb = sum(v["VolumeSizeInGB"] for v in scan["AttachedVolumes"])
            scan.update(ScanStatus="COMPLETED", ScanEndTime=gf.stamp(record["due"]),
                        ScanResultDetails={"ScanResult": "INFECTED" if threats else "CLEAN"},
                        TotalBytes=total_gb * 1024 ** 3 // 4, FileCount=total_gb * 4000 + len(threats))
            if threats:
                self._malicious_file_finding(record)

    def _malicious_file_finding(self, record):
        scan = record["scan"]
        account, region = record["account"], record["region"]
        volumes = scan["AttachedVolumes"]
        root_arn = volumes[0]["VolumeArn"] if volumes else ""
        by_name = {}
        for threat in record["threats"]:
            entry = by_name.setdefault(threat["name"], {"Name": threat["name"], "Severity": "HIGH", "ItemCount": 0,
                                                        "FilePaths": []})
            entry["ItemCount"] += 1
            entry["FilePaths"].append({"FilePath": threat["path"], "VolumeArn": threat.get("volume_arn", root_arn),
                                       "Hash": threat["hash"], "FileName": threat["path"].rsplit("/", 1)[-1]})
        names = list(by_name.values())
        first = record["threats"][0]
        total_gb = sum(v["VolumeSizeInGB"] for v in volumes)
        details = {
            "ScanId": scan["ScanId"],
            "ScanStartedAt": scan["ScanStartTime"],
            "ScanCompletedAt": scan["ScanEndTime"],
            "Sources": ["Bitdefender", "Amazon"],
            "ScanDetections": {
                "ScannedItemCount": {"TotalGb": total_gb, "Files": scan["FileCount"], "Volumes": len(volumes)},
                "ThreatsDetectedItemCount": {"Files": len(record["threats"])},
                "HighestSeverityThreatDetails": {"Severity": "HIGH", "ThreatName": names[0]["Name"],
                                                 "Count": names[0]["ItemCount"]},
                "ThreatDetectedByName": {"ItemCount": len(record["threats"]), "UniqueThreatNameCount": len(names),
                                         "Shortened": False, "ThreatNames": names},
            },
            "ScanType": scan["ScanType"],
        }
        spec = {"type": "Execution:EC2/MaliciousFile", "severity": 8.0, "threat_name": first["name"],
                "threat_path": first["path"], "ebs_volume_scan_details": details,
                "resource_ebs_volumes": {"ScannedVolumeDetails": volumes, "SkippedVolumeDetails": []}}
        instance = gf.instance_details(account, region, record["instance_id"])
        finding = gf.build_finding(account, region, scan["DetectorId"], spec, record["due"], instance=instance)
        self.findings.setdefault((account, region), {})[finding["Id"]] = finding
        self._listings.clear()

    def _describe_malware_scans(self, req, params):
        detector_id = self._check_detector(req, params)
        max_results = _max_results(params, 50)
        scans = [r["scan"] for r in self.scans.values()
                 if r["scan"]["DetectorId"] == detector_id
                 or (req.account == self.administrator and r["scan"]["AdminDetectorId"] == detector_id)]
        criteria = (params.get("FilterCriteria") or {}).get("FilterCriterion") or []
        if len(criteria) > 1:
            # botocore guardduty model: FilterCriterionList "max": 1 (botocore does not check it; AWS does).
            raise bad_request("The request is rejected because the parameter filterCriterion has an invalid value: "
                              "it accepts at most 1 criterion.")
        for criterion in criteria:
            scans = [s for s in scans if _scan_matches(s, criterion)]
        sort = params.get("SortCriteria")
        if sort and sort.get("AttributeName") != "scanStartTime":
            # botocore guardduty model, DescribeMalwareScansRequest.SortCriteria: "attributeName is required and
            # it must be scanStartTime".
            raise bad_request("The request is rejected because the parameter sortCriteria.attributeName has an "
                              "invalid value: it must be scanStartTime.")
        # Without SortCriteria AWS documents no order; the lab answers oldest first, so code that wants the
        # newest scan must ask for it (scanStartTime DESC).
        wires = [(s, wire.to_wire(wire.shape("Scan"), s)) for s in scans]
        page, token = _page(_sorted(wires, sort), params.get("NextToken"), max_results)
        out = {"Scans": [s for s, _ in page]}
        if token:
            out["NextToken"] = token
        return out


def _scan_matches(scan, criterion):
    key = criterion.get("CriterionKey")
    condition = criterion.get("FilterCondition") or {}
    if key not in SCAN_FILTER_KEYS:
        raise bad_request("The request is rejected because the parameter criterionKey has an invalid value.")
    value = {
        "EC2_INSTANCE_ARN": scan["ResourceDetails"]["InstanceArn"],
        "SCAN_ID": scan["ScanId"],
        "ACCOUNT_ID": scan["AccountId"],
        "GUARDDUTY_FINDING_ID": (scan.get("TriggerDetails") or {}).get("GuardDutyFindingId"),
        "SCAN_START_TIME": int(scan["ScanStartTime"].timestamp() * 1000),
        "SCAN_STATUS": scan["ScanStatus"],
        "SCAN_TYPE": scan["ScanType"],
    }[key]
    if condition.get("EqualsValue") is not None and str(value) != condition["EqualsValue"]:
        return False
    if condition.get("GreaterThan") is not None and not (isinstance(value, int) and value > condition["GreaterThan"]):
        return False
    if condition.get("LessThan") is not None and not (isinstance(value, int) and value < condition["LessThan"]):
        return False
    return True


def _max_results(params, default):
    value = params.get("MaxResults", default)
    if not 1 <= value <= 50:
        raise bad_request("The request is rejected because the parameter maxResults has an invalid value: it must be "
                          "between 1 and 50.")
    return value


def _sorted(pairs, sort_criteria):
    """(python form, wire form) pairs ordered by SortCriteria, whose attribute is a wire path."""
    if not sort_criteria or not sort_criteria.get("AttributeName"):
        return list(pairs)
    attribute = sort_criteria["AttributeName"]
    return sorted(pairs, key=lambda pair: gf.sort_key(pair[1], attribute),
                  reverse=sort_criteria.get("OrderBy", "ASC") == "DESC")


def _page(items, token, max_results):
    start = 0
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()).decode())["offset"])
        except (ValueError, KeyError, TypeError):
            raise bad_request("The request is rejected because the parameter nextToken has an invalid value.") from None
    end = start + max_results
    next_token = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(items) else None
    return items[start:end], next_token


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
