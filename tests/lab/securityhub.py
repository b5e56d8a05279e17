"""AWS Security Hub findings in the lab: what moto 5.2.5 lacks or gets wrong, answered at the front door.

moto 5.2.5's securityhub (checked in moto/securityhub/models.py) has EnableSecurityHub, DescribeHub,
BatchImportFindings and GetFindings, but GetFindings ignores Filters ("Filters and SortCriteria is not
yet implemented") and answers whether or not Security Hub is enabled, BatchImportFindings overwrites
the whole finding, and BatchUpdateFindings does not exist. Enabling, disabling and describing the hub
stay with moto (the lab reads moto's `enabled` flag); the lab answers, per account and Region:

- BatchImportFindings: 1..100 findings; a finding without ASFF's required top-level attributes is
  a FailedFindings entry (InvalidInput); an update keeps the fields only BatchUpdateFindings may
  change (Note, Workflow, VerificationState, UserDefinedFields, Confidence, Criticality,
  RelatedFindings; Security Hub User Guide, "BatchImportFindings for finding providers");
- GetFindings: the Filters this collection uses on string attributes (Id, ProductArn, AwsAccountId,
  GeneratorId, ProductName, ResourceId, ResourceType, WorkflowStatus, RecordState), EQUALS/PREFIX/
  CONTAINS ORed and NOT_EQUALS/PREFIX_NOT_EQUALS/NOT_CONTAINS ANDed within an attribute, attributes
  ANDed; at most 10 attributes and 20 values per attribute, MaxResults 1..100, NextToken
  (API reference, GetFindings, AwsSecurityFindingFilters);
- BatchUpdateFindings: 1..100 FindingIdentifiers; Workflow.Status and Note (Text at most 512
  characters, with UpdatedBy and UpdatedAt); a finding the caller cannot see is an UnprocessedFindings
  entry FindingNotFound, a repeated identifier DuplicatedFindingIdentifier (API reference,
  BatchUpdateFindings, BatchUpdateFindingsUnprocessedFinding);
- Security Hub not enabled in the caller's account and Region: InvalidAccessException (HTTP 401);
- an administrator (the scenario's GuardDuty administrator) sees and updates its members' findings in
  the same Region; a member only its own (API reference, BatchUpdateFindings).

GuardDuty sends each of its findings to Security Hub in ASFF when both are enabled in the account and
Region (GuardDuty User Guide, "Integration with AWS Security Hub"): before answering, the lab imports
the GuardDuty findings it holds (tests/lab/guardduty.py) as ASFF (`asff_from_guardduty`), again when
GuardDuty updated them; archiving in GuardDuty makes the record ARCHIVED, and a record going back to
ACTIVE resets a NOTIFIED or RESOLVED workflow to NEW (API reference, Workflow.Status).
"""

import datetime
import json
import sys
import threading
import traceback

from moto.securityhub.models import securityhub_backends

from tests.lab import protocol

OPERATIONS = ("BatchImportFindings", "GetFindings", "BatchUpdateFindings")
REQUIRED = ("AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn", "Resources",
            "SchemaVersion", "Title", "Types", "UpdatedAt")
CUSTOMER_FIELDS = ("Note", "Workflow", "WorkflowState", "VerificationState", "UserDefinedFields", "Confidence",
                   "Criticality", "RelatedFindings")
NOTE_MAX = 512
FILTERS_MAX, FILTER_VALUES_MAX = 10, 20
NOT_SUBSCRIBED = "Account {account} is not subscribed to AWS Security Hub"


class LabError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid_input(message):
    return LabError(400, "InvalidInputException", message)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- GuardDuty -> ASFF ----------------------------------------------------------------------------
def severity_label(severity):
    """GuardDuty's levels: low 1.0-3.9, medium 4.0-6.9, high 7.0-8.9, critical 9.0-10.0."""
    if severity >= 9.0:
        return "CRITICAL"
    if severity >= 7.0:
        return "HIGH"
    if severity >= 4.0:
        return "MEDIUM"
    return "LOW" if severity >= 1.0 else "INFORMATIONAL"


def asff_from_guardduty(finding):
    """The ASFF form of a GuardDuty finding (python form, tests/lab/guardduty_findings.py), as GuardDuty sends it.

    ProductArn arn:PARTITION:securityhub:REGION::product/aws/guardduty, Id the GuardDuty finding's ARN,
    GeneratorId the detector's ARN, one resource (the instance, AwsEc2Instance, or the finding's resource).
    The Types namespace is the lab's approximation (TTPs/<threat purpose>/<type, '/' as '-'>).
    """
    partition, region, account = finding.get("Partition") or "aws", finding["Region"], finding["AccountId"]
    service = finding.get("Service") or {}
    detector_id = service.get("DetectorId")
    severity = float(finding.get("Severity") or 0)
    finding_type = finding["Type"]
    label = severity_label(severity)
    details = (finding.get("Resource") or {}).get("InstanceDetails")
    if details and details.get("InstanceId"):
        resource = {"Type": "AwsEc2Instance", "Partition": partition, "Region": region,
                    "Id": f"arn:{partition}:ec2:{region}:{account}:instance/{details['InstanceId']}",
                    "Details": {"AwsEc2Instance": {
                        "Type": details.get("InstanceType"), "ImageId": details.get("ImageId"),
                        "LaunchedAt": details.get("LaunchTime"),
                        "IpV4Addresses": [n["PrivateIpAddress"] for n in details.get("NetworkInterfaces") or []
                                          if n.get("PrivateIpAddress")],
                        "VpcId": next((n.get("VpcId") for n in details.get("NetworkInterfaces") or []), None),
                        "SubnetId": next((n.get("SubnetId") for n in details.get("NetworkInterfaces") or []), None)}}}
        resource["Details"]["AwsEc2Instance"] = {k: v for k, v in resource["Details"]["AwsEc2Instance"].items() if v}
    else:
        resource = {"Type": "Other", "Partition": partition, "Region": region,
                    "Id": f"arn:{partition}:guardduty:{region}:{account}:detector/{detector_id}"}
    purpose = finding_type.split(":", 1)[0]
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding["Arn"],
        "ProductArn": f"arn:{partition}:securityhub:{region}::product/aws/guardduty",
        "ProductName": "GuardDuty",
        "CompanyName": "Amazon",
        "Region": region,
        "GeneratorId": f"arn:{partition}:guardduty:{region}:{account}:detector/{detector_id}",
        "AwsAccountId": account,
        "Types": [f"TTPs/{purpose}/{finding_type.replace('/', '-')}"],
        "FirstObservedAt": service.get("EventFirstSeen"),
        "LastObservedAt": service.get("EventLastSeen"),
        "CreatedAt": finding["CreatedAt"],
        "UpdatedAt": finding["UpdatedAt"],
        "Severity": {"Product": severity, "Label": label, "Normalized": int(round(severity * 10))},
        "Title": finding.get("Title") or finding_type,
        "Description": finding.get("Description") or finding_type,
        "ProductFields": {"aws/guardduty/service/archived": "true" if service.get("Archived") else "false",
                          "aws/guardduty/service/count": str(service.get("Count", 1)),
                          "aws/guardduty/service/detectorId": str(detector_id),
                          "aws/securityhub/ProductName": "GuardDuty", "aws/securityhub/CompanyName": "Amazon"},
        "Resources": [resource],
        "RecordState": "ARCHIVED" if service.get("Archived") else "ACTIVE",
        "Workflow": {"Status": "NEW"},
        "WorkflowState": "NEW",
        "FindingProviderFields": {"Severity": {"Product": severity, "Label": label},
                                  "Types": [f"TTPs/{purpose}/{finding_type.replace('/', '-')}"]},
    }


# -- filters --------------------------------------------------------------------------------------
def _attribute(finding, name):
    """The finding's values for a string filter attribute (a list: resources give several)."""
    if name == "ResourceId":
        return [r.get("Id") for r in finding.get("Resources") or []]
    if name == "ResourceType":
        return [r.get("Type") for r in finding.get("Resources") or []]
    if name == "WorkflowStatus":
        return [(finding.get("Workflow") or {}).get("Status")]
    if name == "ProductName":
        return [finding.get("ProductName") or (finding.get("ProductFields") or {}).get("aws/securityhub/ProductName")]
    return [finding.get(name)]


STRING_ATTRIBUTES = ("Id", "ProductArn", "AwsAccountId", "GeneratorId", "ProductName", "ResourceId", "ResourceType",
                     "WorkflowStatus", "RecordState")


def _compare(value, comparison, wanted):
    if value is None:
        return comparison.startswith("NOT") or comparison == "PREFIX_NOT_EQUALS"
    return {"EQUALS": value == wanted, "NOT_EQUALS": value != wanted, "PREFIX": value.startswith(wanted),
            "PREFIX_NOT_EQUALS": not value.startswith(wanted), "CONTAINS": wanted in value,
            "NOT_CONTAINS": wanted not in value}[comparison]


def matches(finding, filters):
    for name, conditions in (filters or {}).items():
        values = _attribute(finding, name)
        positive = [c for c in conditions if not c["Comparison"].startswith(("NOT_", "PREFIX_NOT"))]
        negative = [c for c in conditions if c not in positive]
        if positive and not any(_compare(v, c["Comparison"], c["Value"]) for c in positive for v in values):
            return False
        if negative and not all(_compare(v, c["Comparison"], c["Value"]) for c in negative for v in values):
            return False
    return True


def check_filters(filters):
    filters = filters or {}
    if len(filters) > FILTERS_MAX:
        raise invalid_input(f"You can filter by up to {FILTERS_MAX} finding attributes.")
    for name, conditions in filters.items():
        if name not in STRING_ATTRIBUTES:
            raise invalid_input(f"lab: GetFindings filter {name} is not implemented in the lab")
        if len(conditions) > FILTER_VALUES_MAX:
            raise invalid_input(f"For each attribute, you can provide up to {FILTER_VALUES_MAX} filter values ({name}).")
        for condition in conditions:
            if condition.get("Comparison") not in ("EQUALS", "NOT_EQUALS", "PREFIX", "PREFIX_NOT_EQUALS", "CONTAINS",
                                                   "NOT_CONTAINS") or not condition.get("Value"):
                raise invalid_input(f"Invalid string filter for {name}: {condition}")


class SecurityHubLab:
    def __init__(self, guardduty):
        self.guardduty = guardduty
        self._lock = threading.RLock()
        self.reset()

    def reset(self):
        with self._lock:
            self.findings = {}  # (account, region) -> {(ProductArn, Id): finding}
            self._imported = {}  # (account, region, GuardDuty finding id) -> (UpdatedAt, archived) imported
            self._enabled_at = {}  # (account, region) -> moto's enabled_at the findings belong to

    # -- who sees what ------------------------------------------------------------------------
    @staticmethod
    def enabled(account, region):
        return bool(securityhub_backends[account][region].enabled)

    def _store(self, account, region):
        """The account's findings in the Region, forgotten when Security Hub was disabled and enabled again."""
        enabled_at = securityhub_backends[account][region].enabled_at
        if self._enabled_at.get((account, region)) != enabled_at:
            self._enabled_at[(account, region)] = enabled_at
            self.findings[(account, region)] = {}
            self._imported = {k: v for k, v in self._imported.items() if k[:2] != (account, region)}
        return self.findings[(account, region)]

    def _visible_accounts(self, account):
        administrator = self.guardduty.administrator
        if account == administrator:
            return [account] + sorted(self.guardduty.members)
        return [account]

    def _sync_guardduty(self, account, region):
        """GuardDuty sends its findings to Security Hub where both are enabled (imported as ASFF)."""
        if not self.enabled(account, region):
            return
        store = self._store(account, region)
        with self.guardduty._lock:
            findings = list(self.guardduty.findings.get((account, region), {}).values())
        for finding in findings:
            version = (finding["UpdatedAt"], bool((finding.get("Service") or {}).get("Archived")))
            key = (account, region, finding["Id"])
            if self._imported.get(key) == version:
                continue
            self._imported[key] = version
            self._import(store, asff_from_guardduty(finding))

    def snapshot(self, account, region):
        """The findings the lab holds in an account and Region (for tests)."""
        with self._lock:
            self._sync_guardduty(account, region)
            return {"enabled": self.enabled(account, region),
                    "findings": list(self.findings.get((account, region), {}).values())}

    # -- HTTP ---------------------------------------------------------------------------------
    def handles(self, req):
        return req.signing_name == "securityhub" and req.action in OPERATIONS

    def handle(self, req):
        try:
            try:
                params = json.loads(req.body or b"{}")
            except ValueError:
                raise invalid_input("The request body is not valid JSON.") from None
            with self._lock:
                if not self.enabled(req.account, req.region):
                    raise LabError(401, "InvalidAccessException", NOT_SUBSCRIBED.format(account=req.account))
                for account in self._visible_accounts(req.account):
                    self._sync_guardduty(account, req.region)
                output = getattr(self, "_" + req.action)(req, params)
            return 200, [("Content-Type", "application/json")], json.dumps(output).encode(), None
        except LabError as exc:
            status, headers, body = protocol.error_response(req, exc.status, exc.code, exc.message)
            return status, headers, body, exc.code
        except Exception as exc:  # a lab bug: answer as AWS's 500 would, and say where in the lab's log
            traceback.print_exc(file=sys.stderr)
            status, headers, body = protocol.error_response(req, 500, "InternalException", f"lab error: {exc!r}")
            return status, headers, body, "InternalException"

    # -- operations ---------------------------------------------------------------------------
    def _import(self, store, finding):
        key = (finding["ProductArn"], finding["Id"])
        existing = store.get(key)
        if existing is not None:
            kept = {f: existing[f] for f in CUSTOMER_FIELDS if f in existing}
            reopened = existing.get("RecordState") == "ARCHIVED" and finding.get("RecordState") == "ACTIVE"
            finding = dict(finding, **kept)
            if reopened and (finding.get("Workflow") or {}).get("Status") in ("NOTIFIED", "RESOLVED"):
                finding.update(Workflow={"Status": "NEW"}, WorkflowState="NEW")
        else:
            finding = dict(finding)
            finding.setdefault("Workflow", {"Status": "NEW"})
            finding.setdefault("WorkflowState", "NEW")
            finding.setdefault("RecordState", "ACTIVE")
        store[key] = finding

    def _BatchImportFindings(self, req, params):
        findings = params.get("Findings") or []
        if not 1 <= len(findings) <= 100:
            raise invalid_input("Findings must contain between 1 and 100 findings.")
        store = self._store(req.account, req.region)
        failed = []
        for finding in findings:
            missing = [a for a in REQUIRED if not finding.get(a)]
            if missing:
                failed.append({"Id": finding.get("Id", ""), "ErrorCode": "InvalidInput",
                               "ErrorMessage": "Finding does not adhere to Amazon Finding Format. Missing: "
                                               + ", ".join(missing)})
                continue
            self._import(store, finding)
        return {"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed), "FailedFindings": failed}

    def _visible(self, req):
        out = []
        for account in self._visible_accounts(req.account):
            if self.enabled(account, req.region):
                out.extend(self._store(account, req.region).values())
        return out

    def _GetFindings(self, req, params):
        filters = params.get("Filters") or {}
        check_filters(filters)
        max_results = params.get("MaxResults", 100)
        if not isinstance(max_results, int) or not 1 <= max_results <= 100:
            raise invalid_input("MaxResults must be a number between 1 and 100")
        selected = sorted((f for f in self._visible(req) if matches(f, filters)), key=lambda f: (f["UpdatedAt"], f["Id"]),
                          reverse=True)
        start = 0
        if params.get("NextToken"):
            try:
                start = int(params["NextToken"])
            except ValueError:
                raise invalid_input("The NextToken is invalid.") from None
        page = selected[start:start + max_results]
        out = {"Findings": page}
        if start + max_results < len(selected):
            out["NextToken"] = str(start + max_results)
        return out

    def _BatchUpdateFindings(self, req, params):
        identifiers = params.get("FindingIdentifiers") or []
        if not 1 <= len(identifiers) <= 100:
            raise invalid_input("FindingIdentifiers must contain between 1 and 100 items.")
        note = params.get("Note")
        if note is not None:
            if not note.get("Text") or not note.get("UpdatedBy"):
                raise invalid_input("Note requires Text and UpdatedBy.")
            if len(note["Text"]) > NOTE_MAX:
                raise invalid_input(f"Note.Text must be at most {NOTE_MAX} characters.")
        status = (params.get("Workflow") or {}).get("Status")
        if status is not None and status not in ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"):
            raise invalid_input(f"Invalid Workflow.Status {status}")
        visible = {(f["ProductArn"], f["Id"]): f for f in self._visible(req)}
        seen, processed, unprocessed = set(), [], []
        for identifier in identifiers:
            key = (identifier.get("ProductArn"), identifier.get("Id"))
            if key in seen:
                unprocessed.append({"FindingIdentifier": identifier, "ErrorCode": "DuplicatedFindingIdentifier",
                                    "ErrorMessage": "Finding Identifier is duplicated"})
                continue
            seen.add(key)
            finding = visible.get(key)
            if finding is None:
                unprocessed.append({"FindingIdentifier": identifier, "ErrorCode": "FindingNotFound",
                                    "ErrorMessage": "Finding Not Found"})
                continue
            if status:
                finding["Workflow"] = {"Status": status}
                finding["WorkflowState"] = {"NEW": "NEW", "NOTIFIED": "IN_PROGRESS", "RESOLVED": "RESOLVED",
                                            "SUPPRESSED": "RESOLVED"}[status]
            if note is not None:
                finding["Note"] = {"Text": note["Text"], "UpdatedBy": note["UpdatedBy"], "UpdatedAt": now_iso()}
            processed.append(identifier)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}
