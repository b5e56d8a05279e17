"""The lab's GuardDuty findings and Malware Protection, through boto3, as AWS answers them.

AWS behaviour stated here (GuardDuty API reference and user guide):
- ListFindings/GetFindings are per detector; the detector must be the caller's in that Region
  ("The request is rejected because the input detectorId is not owned by the current account.");
- an administrator account sees its members' findings in the same Region, a member only its own;
  "Only the administrator account can archive findings. Member accounts don't have permission to
  archive findings from their accounts." (ArchiveFindings);
- GetFindings/ArchiveFindings take at most 50 finding ids; MaxResults is 1..50;
- an on-demand malware scan can be started on an instance again only one hour after the previous
  scan's start ("A scan was started on this resource recently. You can request a scan on the same
  resource one hour after the previous scan start time."); GuardDutyExcluded:true makes GuardDuty
  start the scan and skip it.
"""

import datetime
import pathlib
import re

import botocore.exceptions
import pytest
import yaml

ADMIN = "123456789012"
MEMBER = "111122223333"
REGION = "us-east-1"
DEMO = yaml.safe_load((pathlib.Path(__file__).resolve().parents[1] / "lab/scenarios/demo.yaml").read_text())


# -- helpers -----------------------------------------------------------------------------------
def gd(lab, account=ADMIN, region=REGION):
    return lab.client("guardduty", account, region)


def detector(lab, account=ADMIN, region=REGION):
    return lab.resources["accounts"][account]["regions"][region]["detector_id"]


def all_ids(client, det, **kwargs):
    ids, token = [], None
    while True:
        page = client.list_findings(DetectorId=det, **kwargs, **({"NextToken": token} if token else {}))
        ids.extend(page["FindingIds"])
        token = page.get("NextToken")
        if not token:
            return ids


def get_all(client, det, ids):
    out = []
    for start in range(0, len(ids), 50):
        out.extend(client.get_findings(DetectorId=det, FindingIds=ids[start:start + 50])["Findings"])
    return out


def held(lab, account=ADMIN, region=REGION):
    return lab._call("GET", f"/_lab/guardduty?account={account}&region={region}")


def normalized(value):
    """boto3's datetimes as the lab's control endpoint prints them (UTC, str())."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if isinstance(value, datetime.datetime):
        return str(value.astimezone(datetime.timezone.utc))
    return value


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def demo_specs(account, region=REGION):
    """Finding specs of the demo scenario for an account and region: (instance name or None, spec)."""
    region_spec = DEMO["accounts"][account]["regions"][region]
    out = [(name, f) for name, inst in (region_spec.get("instances") or {}).items()
           for f in (inst or {}).get("findings") or []]
    return out + [(None, f) for f in region_spec.get("other_findings") or []]


def instance_arn(lab, name):
    inst = lab.instance(name)
    return f"arn:aws:ec2:{inst['region']}:{inst['account']}:instance/{inst['id']}"


@pytest.fixture(scope="module")
def demo_once(lab):
    """The demo scenario, loaded once for the tests that only read."""
    lab.reset("demo")
    return lab


# -- findings as botocore parses them ------------------------------------------------------------
@pytest.mark.parametrize("account", [ADMIN, MEMBER])
def test_botocore_parses_every_field_of_each_demo_finding(demo_once, account):
    lab = demo_once
    client = gd(lab, account)
    det = detector(lab, account)
    returned = {f["Id"]: f for f in get_all(client, det, all_ids(client, det))}
    holding = {f["Id"]: f for f in held(lab, account)["findings"]}
    own = {i: f for i, f in returned.items() if f["AccountId"] == account}
    assert set(own) == set(holding)
    for finding_id, finding in holding.items():
        assert normalized(own[finding_id]) == finding
    types = sorted(f["Type"] for f in own.values())
    assert types == sorted(spec["type"] for _, spec in demo_specs(account))


def test_findings_look_like_guardduty_ones_and_describe_the_instance_from_ec2(demo_once):
    lab = demo_once
    client = gd(lab)
    det = detector(lab)
    findings = get_all(client, det, all_ids(client, det))
    web = lab.instance("web-1")
    described = lab.client("ec2").describe_instances(InstanceIds=[web["id"]])["Reservations"][0]["Instances"][0]
    for finding in findings:
        assert re.fullmatch(r"[0-9a-f]{32}", finding["Id"])
        region, account = finding["Region"], finding["AccountId"]
        finding_detector = finding["Service"]["DetectorId"]
        assert finding["Arn"] == f"arn:aws:guardduty:{region}:{account}:detector/{finding_detector}/finding/{finding['Id']}"
        assert finding["SchemaVersion"] == "2.0" and finding["Partition"] == "aws"
        assert finding["Service"]["ServiceName"] == "guardduty"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", finding["UpdatedAt"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", finding["CreatedAt"])
        assert finding["Title"] and finding["Description"]
    on_web = [f for f in findings if f["Resource"].get("InstanceDetails", {}).get("InstanceId") == web["id"]]
    assert {f["Type"] for f in on_web} == {s["type"] for n, s in demo_specs(ADMIN) if n == "web-1"}
    details = on_web[0]["Resource"]["InstanceDetails"]
    assert details["InstanceType"] == described["InstanceType"]
    assert details["ImageId"] == described["ImageId"]
    assert details["AvailabilityZone"] == described["Placement"]["AvailabilityZone"]
    assert details["IamInstanceProfile"]["Arn"] == described["IamInstanceProfile"]["Arn"]
    assert {t["Key"]: t["Value"] for t in details["Tags"]} == {t["Key"]: t["Value"] for t in described["Tags"]}
    by_eni = {n["NetworkInterfaceId"]: n for n in described["NetworkInterfaces"]}
    assert {n["NetworkInterfaceId"] for n in details["NetworkInterfaces"]} == set(by_eni)
    for nic in details["NetworkInterfaces"]:
        ec2_nic = by_eni[nic["NetworkInterfaceId"]]
        assert nic["PrivateIpAddress"] == ec2_nic["PrivateIpAddress"]
        assert nic["SubnetId"] == ec2_nic["SubnetId"] and nic["VpcId"] == ec2_nic["VpcId"]
        assert nic["Ipv6Addresses"] == [a["Ipv6Address"] for a in ec2_nic.get("Ipv6Addresses", [])]
        assert {(g["GroupId"], g["GroupName"]) for g in nic["SecurityGroups"]} == \
            {(g["GroupId"], g["GroupName"]) for g in ec2_nic["Groups"]}
        assert nic.get("PublicIp") == ec2_nic.get("Association", {}).get("PublicIp")
    assert web["public_ip"] in [n.get("PublicIp") for n in details["NetworkInterfaces"]]
    ssh = next(f for f in on_web if f["Type"] == "UnauthorizedAccess:EC2/SSHBruteForce")
    connection = ssh["Service"]["Action"]["NetworkConnectionAction"]
    assert ssh["Service"]["Action"]["ActionType"] == "NETWORK_CONNECTION"
    assert connection["ConnectionDirection"] == "INBOUND" and connection["LocalPortDetails"]["Port"] == 22
    assert connection["RemoteIpDetails"]["IpAddressV4"] == "198.51.100.23"
    assert ssh["Service"]["ResourceRole"] == "TARGET"


def test_non_ec2_findings_carry_their_resource_type(demo_once):
    lab = demo_once
    client = gd(lab)
    det = detector(lab)
    s3_ids = all_ids(client, det, FindingCriteria={"Criterion": {"resource.resourceType": {"Equals": ["S3Bucket"]}}})
    [s3] = get_all(client, det, s3_ids)
    assert s3["Type"] == "Policy:S3/BucketBlockPublicAccessDisabled"
    assert s3["Resource"]["S3BucketDetails"][0]["Name"] == "demo-logs"
    assert "InstanceDetails" not in s3["Resource"]
    key_ids = all_ids(client, det, FindingCriteria={"Criterion": {"resource.resourceType": {"Equals": ["AccessKey"]}}})
    [exfiltration] = get_all(client, det, key_ids)
    assert exfiltration["AccountId"] == MEMBER
    assert exfiltration["Resource"]["AccessKeyDetails"]["UserType"] == "AssumedRole"
    assert exfiltration["Resource"]["InstanceDetails"]["InstanceId"] == lab.instance("worker-1")["id"]
    assert exfiltration["Service"]["Action"]["AwsApiCallAction"]["Api"] == "DescribeInstances"


# -- FindingCriteria ---------------------------------------------------------------------------
def _expected(findings, predicate):
    return sorted(f["Id"] for f in findings if predicate(f))


def _ms(text):
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


CRITERIA = [
    ("instanceId Equals", lambda lab: {"resource.instanceDetails.instanceId": {"Equals": [lab.instance("web-1")["id"]]}},
     lambda lab, f: f["Resource"].get("InstanceDetails", {}).get("InstanceId") == lab.instance("web-1")["id"]),
    ("instanceId Eq", lambda lab: {"resource.instanceDetails.instanceId": {"Eq": [lab.instance("app-1")["id"]]}},
     lambda lab, f: f["Resource"].get("InstanceDetails", {}).get("InstanceId") == lab.instance("app-1")["id"]),
    ("type NotEquals", lambda lab: {"type": {"NotEquals": ["UnauthorizedAccess:EC2/SSHBruteForce"]}},
     lambda lab, f: f["Type"] != "UnauthorizedAccess:EC2/SSHBruteForce"),
    ("type Neq", lambda lab: {"type": {"Neq": ["Backdoor:EC2/C&CActivity.B", "UnauthorizedAccess:EC2/RDPBruteForce"]}},
     lambda lab, f: f["Type"] not in ("Backdoor:EC2/C&CActivity.B", "UnauthorizedAccess:EC2/RDPBruteForce")),
    ("severity GreaterThan", lambda lab: {"severity": {"GreaterThan": 4}}, lambda lab, f: f["Severity"] > 4),
    ("severity Gt", lambda lab: {"severity": {"Gt": 2}}, lambda lab, f: f["Severity"] > 2),
    ("severity GreaterThanOrEqual", lambda lab: {"severity": {"GreaterThanOrEqual": 8}}, lambda lab, f: f["Severity"] >= 8),
    ("severity Gte", lambda lab: {"severity": {"Gte": 5}}, lambda lab, f: f["Severity"] >= 5),
    ("severity LessThan", lambda lab: {"severity": {"LessThan": 8}}, lambda lab, f: f["Severity"] < 8),
    ("severity Lt", lambda lab: {"severity": {"Lt": 5}}, lambda lab, f: f["Severity"] < 5),
    ("severity LessThanOrEqual", lambda lab: {"severity": {"LessThanOrEqual": 5}}, lambda lab, f: f["Severity"] <= 5),
    ("severity Lte", lambda lab: {"severity": {"Lte": 2}}, lambda lab, f: f["Severity"] <= 2),
    ("archived", lambda lab: {"service.archived": {"Equals": ["true"]}}, lambda lab, f: f["Service"]["Archived"]),
    ("not archived", lambda lab: {"service.archived": {"Equals": ["false"]}},
     lambda lab, f: not f["Service"]["Archived"]),
    ("resourceType", lambda lab: {"resource.resourceType": {"Equals": ["Instance"]}},
     lambda lab, f: f["Resource"]["ResourceType"] == "Instance"),
    ("accountId", lambda lab: {"accountId": {"Equals": [MEMBER]}}, lambda lab, f: f["AccountId"] == MEMBER),
    ("region", lambda lab: {"region": {"Equals": [REGION]}}, lambda lab, f: f["Region"] == REGION),
    ("several fields", lambda lab: {"severity": {"Gte": 5}, "service.archived": {"Eq": ["false"]},
                                    "accountId": {"Equals": [ADMIN]}},
     lambda lab, f: f["Severity"] >= 5 and not f["Service"]["Archived"] and f["AccountId"] == ADMIN),
]


@pytest.mark.parametrize("name,criterion,predicate", CRITERIA, ids=[c[0] for c in CRITERIA])
def test_each_criteria_operator_selects_what_it_says(demo_once, name, criterion, predicate):
    lab = demo_once
    client = gd(lab)
    det = detector(lab)
    everything = get_all(client, det, all_ids(client, det))
    got = sorted(all_ids(client, det, FindingCriteria={"Criterion": criterion(lab)}))
    assert got == _expected(everything, lambda f: predicate(lab, f))
    assert got
    assert len(got) < len(everything) or name == "region"  # every finding a detector lists is in its region
    if name == "region":
        assert all_ids(client, det, FindingCriteria={"Criterion": {"region": {"Equals": ["eu-west-1"]}}}) == []


def test_updated_at_and_id_criteria(demo_once):
    lab = demo_once
    client = gd(lab)
    det = detector(lab)
    everything = get_all(client, det, all_ids(client, det))
    stamps = sorted({_ms(f["UpdatedAt"]) for f in everything})
    middle = stamps[len(stamps) // 2]
    for op, test in (("GreaterThanOrEqual", lambda v: v >= middle), ("Gte", lambda v: v >= middle),
                     ("LessThan", lambda v: v < middle), ("Lt", lambda v: v < middle),
                     ("GreaterThan", lambda v: v > middle), ("LessThanOrEqual", lambda v: v <= middle)):
        got = sorted(all_ids(client, det, FindingCriteria={"Criterion": {"updatedAt": {op: middle}}}))
        assert got == _expected(everything, lambda f: test(_ms(f["UpdatedAt"]))), op
    chosen = [everything[0]["Id"], everything[-1]["Id"]]
    assert sorted(all_ids(client, det, FindingCriteria={"Criterion": {"id": {"Equals": chosen}}})) == sorted(chosen)


def test_sort_criteria_orders_findings(demo_once):
    lab = demo_once
    client = gd(lab)
    det = detector(lab)
    ids = all_ids(client, det, SortCriteria={"AttributeName": "severity", "OrderBy": "DESC"})
    severities = {f["Id"]: f["Severity"] for f in get_all(client, det, ids)}
    assert [severities[i] for i in ids] == sorted(severities.values(), reverse=True)
    ascending = all_ids(client, det, SortCriteria={"AttributeName": "updatedAt", "OrderBy": "ASC"})
    updated = {f["Id"]: _ms(f["UpdatedAt"]) for f in get_all(client, det, ascending)}
    assert [updated[i] for i in ascending] == sorted(updated.values())


# -- pagination and limits ---------------------------------------------------------------------
def test_list_findings_paginates_with_next_token(demo_once):
    lab = demo_once
    client = gd(lab)
    det = detector(lab)
    everything = client.list_findings(DetectorId=det)["FindingIds"]
    pages, token = [], None
    while True:
        page = client.list_findings(DetectorId=det, MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["FindingIds"]) <= 2
        pages.append(page["FindingIds"])
        token = page.get("NextToken")
        if not token:
            break
    assert len(pages) == (len(everything) + 1) // 2
    assert [i for p in pages for i in p] == everything
    paginated = [i for p in client.get_paginator("list_findings").paginate(
        DetectorId=det, PaginationConfig={"PageSize": 3}) for i in p["FindingIds"]]
    assert paginated == everything
    # botocore checks the minimum itself; the maximum is AWS's to refuse
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.list_findings(DetectorId=det, MaxResults=51)
    assert error_of(excinfo)[0] == "BadRequestException"


def test_get_findings_takes_at_most_50_ids(demo):
    client = gd(demo)
    det = detector(demo)
    client.create_sample_findings(DetectorId=det, FindingTypes=["Recon:EC2/PortProbeUnprotectedPort"] * 50)
    ids = all_ids(client, det)
    assert len(ids) > 50
    assert len(client.get_findings(DetectorId=det, FindingIds=ids[:50])["Findings"]) == 50
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.get_findings(DetectorId=det, FindingIds=ids[:51])
    assert error_of(excinfo)[0] == "BadRequestException"
    assert demo.journal(action="GetFindings")[-1]["outcome"] == "BadRequestException"


def test_detector_must_be_the_callers(demo_once):
    lab = demo_once
    for account, other in ((ADMIN, MEMBER), (MEMBER, ADMIN)):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            gd(lab, account).list_findings(DetectorId=detector(lab, other))
        assert error_of(excinfo) == ("BadRequestException",
                                     "The request is rejected because the input detectorId is not owned by the "
                                     "current account.")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        gd(lab, ADMIN, "eu-west-1").get_findings(DetectorId=detector(lab, ADMIN), FindingIds=[])
    assert error_of(excinfo)[0] == "BadRequestException"


# -- administrator and members -------------------------------------------------------------------
def test_administrator_sees_members_findings_and_member_does_not_see_the_administrators(demo_once):
    lab = demo_once
    admin_ids = all_ids(gd(lab, ADMIN), detector(lab, ADMIN))
    member_ids = all_ids(gd(lab, MEMBER), detector(lab, MEMBER))
    admin_own = {f["Id"] for f in held(lab, ADMIN)["findings"]}
    member_own = {f["Id"] for f in held(lab, MEMBER)["findings"]}
    assert set(admin_ids) == admin_own | member_own
    assert set(member_ids) == member_own
    some_admin_finding = sorted(admin_own)[0]
    assert gd(lab, MEMBER).get_findings(DetectorId=detector(lab, MEMBER), FindingIds=[some_admin_finding])["Findings"] == []
    worker = lab.instance("worker-1")["id"]
    on_worker = all_ids(gd(lab, ADMIN), detector(lab, ADMIN),
                        FindingCriteria={"Criterion": {"resource.instanceDetails.instanceId": {"Equals": [worker]}}})
    assert len(on_worker) == len([s for n, s in demo_specs(MEMBER) if n == "worker-1"])
    # another region's findings stay there
    eu_ids = all_ids(gd(lab, ADMIN, "eu-west-1"), detector(lab, ADMIN, "eu-west-1"))
    assert {f["Id"] for f in held(lab, ADMIN, "eu-west-1")["findings"]} == set(eu_ids)
    assert not set(eu_ids) & set(admin_ids)


def test_archive_unarchive_and_feedback_show_in_later_calls(demo):
    admin, member = gd(demo, ADMIN), gd(demo, MEMBER)
    admin_det, member_det = detector(demo, ADMIN), detector(demo, MEMBER)
    member_finding = all_ids(member, member_det)[0]

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        member.archive_findings(DetectorId=member_det, FindingIds=[member_finding])
    assert error_of(excinfo)[0] == "BadRequestException"
    assert member.get_findings(DetectorId=member_det, FindingIds=[member_finding])["Findings"][0]["Service"]["Archived"] is False

    admin.archive_findings(DetectorId=admin_det, FindingIds=[member_finding])
    [seen] = member.get_findings(DetectorId=member_det, FindingIds=[member_finding])["Findings"]
    assert seen["Service"]["Archived"] is True
    assert member_finding in all_ids(admin, admin_det, FindingCriteria={"Criterion": {"service.archived": {"Eq": ["true"]}}})

    admin.unarchive_findings(DetectorId=admin_det, FindingIds=[member_finding])
    [seen] = admin.get_findings(DetectorId=admin_det, FindingIds=[member_finding])["Findings"]
    assert seen["Service"]["Archived"] is False

    member.update_findings_feedback(DetectorId=member_det, FindingIds=[member_finding], Feedback="USEFUL")
    [seen] = admin.get_findings(DetectorId=admin_det, FindingIds=[member_finding])["Findings"]
    assert seen["Service"]["UserFeedback"] == "USEFUL"
    admin.update_findings_feedback(DetectorId=admin_det, FindingIds=[member_finding], Feedback="NOT_USEFUL")
    [seen] = member.get_findings(DetectorId=member_det, FindingIds=[member_finding])["Findings"]
    assert seen["Service"]["UserFeedback"] == "NOT_USEFUL"

    actions = [(e["account"], e["action"], e["outcome"]) for e in demo.journal(service="guardduty")]
    assert (MEMBER, "ArchiveFindings", "BadRequestException") in actions
    assert (ADMIN, "ArchiveFindings", "ok") in actions
    assert (ADMIN, "UnarchiveFindings", "ok") in actions
    assert (MEMBER, "UpdateFindingsFeedback", "ok") in actions


def test_create_sample_findings(demo):
    client = gd(demo, ADMIN, "eu-west-1")
    det = detector(demo, ADMIN, "eu-west-1")
    before = set(all_ids(client, det))
    client.create_sample_findings(DetectorId=det, FindingTypes=["Backdoor:EC2/C&CActivity.B!DNS",
                                                                 "Policy:S3/BucketBlockPublicAccessDisabled"])
    new = get_all(client, det, sorted(set(all_ids(client, det)) - before))
    assert sorted(f["Type"] for f in new) == ["Backdoor:EC2/C&CActivity.B!DNS", "Policy:S3/BucketBlockPublicAccessDisabled"]
    for finding in new:
        assert finding["Service"]["AdditionalInfo"]["Value"] == '{"sample":true}'
        assert finding["Region"] == "eu-west-1"


# -- Malware Protection ------------------------------------------------------------------------
NEWEST_FIRST = {"AttributeName": "scanStartTime", "OrderBy": "DESC"}


def _scans(client, det, **kwargs):
    out, token = [], None
    while True:
        page = client.describe_malware_scans(DetectorId=det, **kwargs, **({"NextToken": token} if token else {}))
        out.extend(page["Scans"])
        token = page.get("NextToken")
        if not token:
            return out


def test_scan_runs_then_completes_clean_with_the_instances_volumes(demo):
    client = gd(demo)
    det = detector(demo)
    healthy = demo.instance("healthy-1")
    scan_id = client.start_malware_scan(ResourceArn=instance_arn(demo, "healthy-1"))["ScanId"]
    [scan] = _scans(client, det)
    assert scan["ScanId"] == scan_id and scan["ScanStatus"] == "RUNNING"
    assert scan["ScanType"] == "ON_DEMAND" and scan["AccountId"] == ADMIN
    assert scan["ResourceDetails"]["InstanceArn"] == instance_arn(demo, "healthy-1")
    volumes = demo.client("ec2").describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [healthy["id"]]}])["Volumes"]
    assert sorted(v["VolumeArn"].rsplit("/", 1)[-1] for v in scan["AttachedVolumes"]) == sorted(v["VolumeId"] for v in volumes)
    assert {v["VolumeArn"].rsplit("/", 1)[-1]: v["VolumeSizeInGB"] for v in scan["AttachedVolumes"]} == \
        {v["VolumeId"]: v["Size"] for v in volumes}

    demo.advance_clock(120)
    [scan] = _scans(client, det)
    assert scan["ScanStatus"] == "COMPLETED"
    assert scan["ScanResultDetails"]["ScanResult"] == "CLEAN"
    assert scan["ScanEndTime"] >= scan["ScanStartTime"]
    assert not all_ids(client, det, FindingCriteria={"Criterion": {"type": {"Equals": ["Execution:EC2/MaliciousFile"]}}})
    assert [e["outcome"] for e in demo.journal(action="StartMalwareScan")] == ["ok"]
    assert demo.journal(action="DescribeMalwareScans")[-1]["service"] == "guardduty"


def test_second_scan_within_an_hour_is_refused_and_accepted_after(demo):
    client = gd(demo)
    arn = instance_arn(demo, "healthy-1")
    client.start_malware_scan(ResourceArn=arn)
    demo.advance_clock(1800)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.start_malware_scan(ResourceArn=arn)
    assert error_of(excinfo) == ("ConflictException",
                                 "A scan was started on this resource recently. You can request a scan on the same "
                                 "resource one hour after the previous scan start time.")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    # another instance is not held back
    client.start_malware_scan(ResourceArn=instance_arn(demo, "app-1"))
    demo.advance_clock(1801)
    second = client.start_malware_scan(ResourceArn=arn)["ScanId"]
    scans = _scans(client, detector(demo), FilterCriteria={"FilterCriterion": [
        {"CriterionKey": "EC2_INSTANCE_ARN", "FilterCondition": {"EqualsValue": arn}}]}, SortCriteria=NEWEST_FIRST)
    assert len(scans) == 2 and scans[0]["ScanId"] == second  # newest first, as asked
    outcomes = [e["outcome"] for e in demo.journal(action="StartMalwareScan")]
    assert outcomes == ["ok", "ConflictException", "ok", "ok"]


def test_infected_scan_produces_a_malicious_file_finding(demo):
    client = gd(demo)
    det = detector(demo)
    web = demo.instance("web-1")
    threats = DEMO["accounts"][ADMIN]["regions"][REGION]["instances"]["web-1"]["malware"]["threats"]
    scan_id = client.start_malware_scan(ResourceArn=instance_arn(demo, "web-1"))["ScanId"]
    malicious = {"Criterion": {"type": {"Equals": ["Execution:EC2/MaliciousFile"]}}}
    assert all_ids(client, det, FindingCriteria=malicious) == []
    demo.advance_clock(120)
    [scan] = _scans(client, det, FilterCriteria={"FilterCriterion": [
        {"CriterionKey": "SCAN_ID", "FilterCondition": {"EqualsValue": scan_id}}]})
    assert scan["ScanStatus"] == "COMPLETED" and scan["ScanResultDetails"]["ScanResult"] == "INFECTED"
    [finding] = get_all(client, det, all_ids(client, det, FindingCriteria=malicious))
    assert finding["Resource"]["InstanceDetails"]["InstanceId"] == web["id"]
    details = finding["Service"]["EbsVolumeScanDetails"]
    assert details["ScanId"] == scan_id
    assert details["ScanStartedAt"] == scan["ScanStartTime"] and details["ScanCompletedAt"] == scan["ScanEndTime"]
    names = details["ScanDetections"]["ThreatDetectedByName"]["ThreatNames"]
    found = [(n["Name"], p["FilePath"], p["Hash"]) for n in names for p in n["FilePaths"]]
    assert sorted(found) == sorted((t["name"], t["path"], t["hash"]) for t in threats)
    assert details["ScanDetections"]["ThreatsDetectedItemCount"]["Files"] == len(threats)
    volume_ids = {v["VolumeArn"] for v in scan["AttachedVolumes"]}
    assert {p["VolumeArn"] for n in names for p in n["FilePaths"]} <= volume_ids
    # the lab holds exactly what botocore returned, timestamps included
    holding = {f["Id"]: f for f in held(demo)["findings"]}
    assert normalized(finding) == holding[finding["Id"]]
    assert normalized(scan) == next(s for s in held(demo)["scans"] if s["ScanId"] == scan_id)


def test_excluded_instance_scan_is_started_and_skipped(demo):
    client = gd(demo)
    healthy = demo.instance("healthy-1")
    demo.client("ec2").create_tags(Resources=[healthy["id"]], Tags=[{"Key": "GuardDutyExcluded", "Value": "true"}])
    scan_id = client.start_malware_scan(ResourceArn=instance_arn(demo, "healthy-1"))["ScanId"]
    [scan] = _scans(client, detector(demo))
    assert scan["ScanId"] == scan_id and scan["ScanStatus"] == "SKIPPED"
    assert "ScanResultDetails" not in scan


def test_administrator_scans_a_members_instance_and_both_see_the_scan(demo):
    admin, member = gd(demo, ADMIN), gd(demo, MEMBER)
    scan_id = admin.start_malware_scan(ResourceArn=instance_arn(demo, "worker-2"))["ScanId"]
    [seen_by_member] = _scans(member, detector(demo, MEMBER))
    assert seen_by_member["ScanId"] == scan_id
    assert seen_by_member["DetectorId"] == detector(demo, MEMBER)
    assert seen_by_member["AdminDetectorId"] == detector(demo, ADMIN)
    assert [s["ScanId"] for s in _scans(admin, detector(demo, ADMIN))] == [scan_id]
    # a member cannot scan the administrator's instances
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        member.start_malware_scan(ResourceArn=instance_arn(demo, "web-1"))
    assert error_of(excinfo)[0] == "BadRequestException"


def test_describe_malware_scans_filters_sorts_and_paginates(demo):
    client = gd(demo)
    det = detector(demo)
    names = ["web-1", "app-1", "bastion-1", "healthy-1"]
    started = []
    for name in names:
        started.append(client.start_malware_scan(ResourceArn=instance_arn(demo, name))["ScanId"])
        demo.advance_clock(10)
    everything = _scans(client, det, SortCriteria=NEWEST_FIRST)
    assert [s["ScanId"] for s in everything] == started[::-1]
    # AWS documents no default order: the lab answers oldest first, so whoever wants the newest must sort.
    assert [s["ScanId"] for s in _scans(client, det)] == started
    ascending = _scans(client, det, SortCriteria={"AttributeName": "scanStartTime", "OrderBy": "ASC"})
    assert [s["ScanId"] for s in ascending] == started
    first_page = client.describe_malware_scans(DetectorId=det, MaxResults=3, SortCriteria=NEWEST_FIRST)
    assert len(first_page["Scans"]) == 3 and first_page["NextToken"]
    rest = client.describe_malware_scans(DetectorId=det, MaxResults=3, NextToken=first_page["NextToken"],
                                         SortCriteria=NEWEST_FIRST)
    assert [s["ScanId"] for s in first_page["Scans"] + rest["Scans"]] == started[::-1]
    assert "NextToken" not in rest
    cut = int(everything[1]["ScanStartTime"].timestamp() * 1000)
    later = _scans(client, det, FilterCriteria={"FilterCriterion": [
        {"CriterionKey": "SCAN_START_TIME", "FilterCondition": {"GreaterThan": cut}}]})
    assert [s["ScanId"] for s in later] == [started[-1]]
    running = _scans(client, det, FilterCriteria={"FilterCriterion": [
        {"CriterionKey": "SCAN_STATUS", "FilterCondition": {"EqualsValue": "RUNNING"}}]})
    assert {s["ScanId"] for s in running} == {s["ScanId"] for s in everything if s["ScanStatus"] == "RUNNING"}


def test_describe_malware_scans_takes_one_criterion_and_sorts_by_start_time_only(demo):
    # botocore guardduty model: FilterCriterionList "max": 1, and SortCriteria.attributeName "must be
    # scanStartTime" (DescribeMalwareScansRequest); botocore sends both, AWS refuses them.
    client = gd(demo)
    det = detector(demo)
    client.start_malware_scan(ResourceArn=instance_arn(demo, "app-1"))
    two = {"FilterCriterion": [{"CriterionKey": "SCAN_START_TIME", "FilterCondition": {"GreaterThan": 1}},
                               {"CriterionKey": "SCAN_TYPE", "FilterCondition": {"EqualsValue": "ON_DEMAND"}}]}
    with pytest.raises(botocore.exceptions.ClientError) as several:
        client.describe_malware_scans(DetectorId=det, FilterCriteria=two)
    assert error_of(several)[0] == "BadRequestException" and "filterCriterion" in error_of(several)[1]
    with pytest.raises(botocore.exceptions.ClientError) as by_status:
        client.describe_malware_scans(DetectorId=det, SortCriteria={"AttributeName": "scanStatus", "OrderBy": "ASC"})
    assert error_of(by_status)[0] == "BadRequestException"
    assert len(client.describe_malware_scans(DetectorId=det, FilterCriteria={"FilterCriterion": two["FilterCriterion"][:1]})
               ["Scans"]) == 1


def test_malware_scan_settings_and_operations_left_to_moto(demo_once):
    lab = demo_once
    client = gd(lab)
    det = detector(lab)
    settings = client.get_malware_scan_settings(DetectorId=det)
    assert settings["EbsSnapshotPreservation"] == "NO_RETENTION"
    assert settings["ScanResourceCriteria"] == {"Include": {}, "Exclude": {}}
    assert client.list_detectors()["DetectorIds"] == [det]
    assert client.get_detector(DetectorId=det)["Status"] == "ENABLED"
    stats = client.get_findings_statistics(DetectorId=det, FindingStatisticTypes=["COUNT_BY_SEVERITY"])
    everything = get_all(client, det, all_ids(client, det))
    assert sum(stats["FindingStatistics"]["CountBySeverity"].values()) == len(everything)


def test_journal_records_guardduty_operations_by_name(demo):
    client = gd(demo)
    det = detector(demo)
    mark = demo.mark()
    ids = client.list_findings(DetectorId=det)["FindingIds"]
    client.get_findings(DetectorId=det, FindingIds=ids[:1])
    client.start_malware_scan(ResourceArn=instance_arn(demo, "app-1"))
    client.describe_malware_scans(DetectorId=det)
    client.get_malware_scan_settings(DetectorId=det)
    client.list_detectors()
    entries = demo.journal(since=mark, service="guardduty")
    assert [e["action"] for e in entries] == ["ListFindings", "GetFindings", "StartMalwareScan", "DescribeMalwareScans",
                                              "GetMalwareScanSettings", "ListDetectors"]
    assert all(e["outcome"] == "ok" and e["account"] == ADMIN and e["region"] == REGION for e in entries)
    assert entries[1]["params"]["findingIds"] == ids[:1]


def test_finding_spec_ages_and_count_become_guardduty_timestamps():
    from tests.lab.guardduty import GuardDutyLab

    class Clock:
        def now(self):
            return 1_800_000_000.0

    lab = GuardDutyLab(Clock())
    finding = lab.add_finding(ADMIN, REGION, "d" * 32, {
        "type": "Policy:S3/BucketBlockPublicAccessDisabled", "severity": 2.0, "resource_type": "S3Bucket",
        "bucket": "demo-logs", "first_seen_ago": "3h", "updated_ago": "10m", "count": 4})
    assert finding["Service"]["EventFirstSeen"] == finding["CreatedAt"] == "2027-01-15T05:00:00.000Z"
    assert finding["Service"]["EventLastSeen"] == finding["UpdatedAt"] == "2027-01-15T07:50:00.000Z"
    assert finding["Service"]["Count"] == 4
    assert finding["Resource"]["ResourceType"] == "S3Bucket"


def test_a_listing_is_selected_once_and_sees_every_change(monkeypatch):
    """The lab's own cost: a listing's criteria are matched against the findings once, not once per page (every
    page matched all of a region's findings again: 40% of the lab's CPU in an organization's inventory), and a
    finding archived, added or changed between two listings is what the next one sees."""
    from types import SimpleNamespace

    from tests.lab import guardduty as lab_guardduty
    from tests.lab.guardduty import GuardDutyLab

    class Clock:
        def now(self):
            return 1_800_000_000.0

    lab = GuardDutyLab(Clock())
    monkeypatch.setattr(lab, "_check_detector", lambda req, params: "d" * 32)
    for number in range(120):
        lab.add_finding(ADMIN, REGION, "d" * 32, {"type": "Policy:S3/BucketBlockPublicAccessDisabled",
                                                  "severity": 2.0 + number % 3, "resource_type": "S3Bucket",
                                                  "bucket": f"bucket-{number}"})
    matched = []
    matches = lab_guardduty.gf.matches
    monkeypatch.setattr(lab_guardduty.gf, "matches", lambda *args: matched.append(1) or matches(*args))
    req = SimpleNamespace(account=ADMIN, region=REGION)
    unarchived = {"FindingCriteria": {"Criterion": {"service.archived": {"Equals": ["false"]}}},
                  "SortCriteria": {"AttributeName": "severity", "OrderBy": "DESC"}, "MaxResults": 50}

    def listing():
        ids, token = [], None
        while True:
            page = lab._list_findings(req, dict(unarchived, **({"NextToken": token} if token else {})))
            ids.extend(page["FindingIds"])
            token = page.get("NextToken")
            if not token:
                return ids

    first = listing()
    assert len(first) == 120 and len(matched) == 120  # three pages, one pass
    severity = {f["Id"]: f["Severity"] for f in lab.findings[(ADMIN, REGION)].values()}
    assert [severity[i] for i in first] == sorted(severity.values(), reverse=True)
    assert listing() == first and len(matched) == 120  # the same listing again: no new pass

    lab._archive_findings(req, {"FindingIds": first[:2]})
    assert listing() == first[2:]
    added = lab.add_finding(ADMIN, REGION, "d" * 32, {"type": "Policy:S3/BucketBlockPublicAccessDisabled",
                                                       "severity": 9.0, "resource_type": "S3Bucket", "bucket": "new"})
    assert listing() == [added["Id"]] + first[2:]
    lab._update_findings_feedback(req, {"FindingIds": [first[2]], "Feedback": "USEFUL"})
    lab._unarchive_findings(req, {"FindingIds": [first[0]]})
    assert listing() == [added["Id"]] + first[:1] + first[2:]
