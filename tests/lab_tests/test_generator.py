"""Generated scenarios (`generated:N[:ACCOUNTS[:REGIONS]]`): exactly N EC2 findings, `count:` instances."""

from tests.lab.generator import ACCOUNTS, HEALTHY_PER_SOURCE, REGIONS


def _findings(gd, **criterion):
    detector = gd.list_detectors()["DetectorIds"][0]
    ids, kwargs = [], {"DetectorId": detector, "MaxResults": 50,
                       "FindingCriteria": {"Criterion": {k.replace("__", "."): v for k, v in criterion.items()}}}
    while True:
        page = gd.list_findings(**kwargs)
        ids += page["FindingIds"]
        if not page.get("NextToken"):
            return ids
        kwargs["NextToken"] = page["NextToken"]


def test_generated_scenario_has_exactly_n_findings_over_accounts_and_regions(lab):
    resources = lab.reset("generated:23:2:2")
    sources = [(a, r) for a in ACCOUNTS[:2] for r in REGIONS[:2]]
    total = 0
    for account, region in sources:
        ec2 = lab.client("ec2", account, region)
        instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        ec2_findings = _findings(lab.client("guardduty", account, region), service__archived={"Equals": ["false"]},
                                 resource__resourceType={"Equals": ["Instance"]},
                                 accountId={"Equals": [account]})
        s3 = _findings(lab.client("guardduty", account, region), resource__resourceType={"Equals": ["S3Bucket"]},
                       accountId={"Equals": [account]})
        total += len(ec2_findings)
        assert len(s3) == 1
        # two findings per compromised instance, one more instance when the share is odd, plus the healthy ones
        assert len(instances) == HEALTHY_PER_SOURCE + (len(ec2_findings) + 1) // 2
        names = {t["Value"] for i in instances for t in i.get("Tags", []) if t["Key"] == "Name"}
        assert len(names) <= 3  # `count:` instances share their entry's Name tag
    assert total == 23
    # the resource map names every instance, count entries as NAME-00000...
    assert len(resources["instances"]) == 4 * HEALTHY_PER_SOURCE + 12
    assert all(v["id"].startswith("i-") for v in resources["instances"].values())


def test_count_instances_come_from_one_run_instances_call(lab):
    lab.reset("generated:40:1:1")
    ec2 = lab.client("ec2", ACCOUNTS[0], REGIONS[0])
    reservations = ec2.describe_instances()["Reservations"]
    # AWS: one reservation per RunInstances call; 20 compromised instances in one, the healthy ones in another
    assert sorted(len(r["Instances"]) for r in reservations) == sorted([20, HEALTHY_PER_SOURCE])


def test_enis_option_gives_instances_one_to_k_interfaces_in_their_subnet_and_group(lab):
    resources = lab.reset("generated:24:1:1", enis=3)
    ec2 = lab.client("ec2", ACCOUNTS[0], REGIONS[0])
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    web = [i for i in instances if {"Key": "Service", "Value": "web"} in i.get("Tags", [])]
    # 12 compromised instances, a third each with 1, 2 and 3 ENIs (AWS: one RunInstances per entry)
    assert sorted(len(i["NetworkInterfaces"]) for i in web) == [1] * 4 + [2] * 4 + [3] * 4
    healthy = [i for i in instances if i not in web]
    assert all(len(i["NetworkInterfaces"]) == 1 for i in healthy)
    app = resources["accounts"][ACCOUNTS[0]]["regions"][REGIONS[0]]["security_groups"]["app"]
    for inst in web:
        assert sorted(n["Attachment"]["DeviceIndex"] for n in inst["NetworkInterfaces"]) == list(range(len(inst["NetworkInterfaces"])))
        assert all([g["GroupId"] for g in n["Groups"]] == [app] for n in inst["NetworkInterfaces"])
    # the resource map lists each instance's ENIs in device order
    mapped = {v["id"]: v["enis"] for k, v in resources["instances"].items() if k.startswith("compromised")}
    for inst in web:
        by_index = sorted(inst["NetworkInterfaces"], key=lambda n: n["Attachment"]["DeviceIndex"])
        assert mapped[inst["InstanceId"]] == [n["NetworkInterfaceId"] for n in by_index]


def test_unit_instances_makes_an_organization_of_n_compromised_instances(lab):
    # bench_org.py's lab: N instances (not findings), 20 accounts, each member with its responder role
    resources = lab.reset("generated:30:20:1", unit="instances")
    compromised = {k: v for k, v in resources["instances"].items() if k.startswith("compromised")}
    assert len(compromised) == 30
    assert {v["account"] for v in compromised.values()} == set(ACCOUNTS[:20])
    assert len(set(ACCOUNTS)) == 20 and all(len(a) == 12 and a.isdigit() for a in ACCOUNTS)
    # the GuardDuty administrator sees its 19 members' findings: two on each instance
    gd = lab.client("guardduty", ACCOUNTS[0], REGIONS[0])
    findings = _findings(gd, resource__resourceType={"Equals": ["Instance"]})
    assert len(findings) == 60
    # each member's instances are reached through its responder role (credentials of that account)
    last = ACCOUNTS[19]
    ec2 = lab.client("ec2", last, REGIONS[0])
    web = [i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "tag:Service", "Values": ["web"]}])["Reservations"]
           for i in r["Instances"]]
    assert sorted(web) == sorted(v["id"] for v in compromised.values() if v["account"] == last)
