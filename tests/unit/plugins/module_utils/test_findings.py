# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""findings.py: GetFindings results (botocore-shaped, as boto3 returns them) in, hosts/vars/groups out."""

import copy
import datetime

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import findings as fnd

NOW = datetime.datetime(2024, 5, 2, 12, 0, 0, tzinfo=datetime.timezone.utc).timestamp()


def instance_details(instance_id="i-0123456789abcdef0", tags=None, groups=(("sg-0aaa", "web"), ("sg-0bbb", "app"))):
    return {
        "AvailabilityZone": "us-east-1a",
        "IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/web-role", "Id": "AIPAEXAMPLE"},
        "ImageDescription": "Amazon Linux 2",
        "ImageId": "ami-12c6146b",
        "InstanceId": instance_id,
        "InstanceState": "running",
        "InstanceType": "t3.micro",
        "LaunchTime": "2024-05-01T08:00:00.000Z",
        "NetworkInterfaces": [{
            "Ipv6Addresses": ["2600:1f18::10"],
            "NetworkInterfaceId": "eni-0aaa",
            "PrivateDnsName": "ip-10-10-1-10.ec2.internal",
            "PrivateIpAddress": "10.10.1.10",
            "PrivateIpAddresses": [{"PrivateDnsName": "ip-10-10-1-10.ec2.internal", "PrivateIpAddress": "10.10.1.10"}],
            "PublicDnsName": "ec2-198-51-100-1.compute-1.amazonaws.com",
            "PublicIp": "198.51.100.1",
            "SecurityGroups": [{"GroupId": g, "GroupName": n} for g, n in groups],
            "SubnetId": "subnet-0aaa",
            "VpcId": "vpc-0aaa",
        }],
        "Tags": [{"Key": k, "Value": v} for k, v in (tags if tags is not None else {"Name": "web-1", "Environment": "production"}).items()],
    }


def finding(fid, ftype="Backdoor:EC2/C&CActivity.B", severity=8.0, account="123456789012", region="us-east-1",
            instance=None, archived=False, updated="2024-05-02T11:00:00.000Z", action=None, resource_type="Instance"):
    resource = {"ResourceType": resource_type}
    if instance is not False:
        resource["InstanceDetails"] = instance or instance_details()
    return {
        "AccountId": account,
        "Arn": f"arn:aws:guardduty:{region}:{account}:detector/d1/finding/{fid}",
        "CreatedAt": "2024-05-02T10:00:00.000Z",
        "Description": "description",
        "Id": fid,
        "Partition": "aws",
        "Region": region,
        "Resource": resource,
        "SchemaVersion": "2.0",
        "Service": {
            "Action": action or {
                "ActionType": "NETWORK_CONNECTION",
                "NetworkConnectionAction": {
                    "Blocked": False, "ConnectionDirection": "OUTBOUND", "Protocol": "TCP",
                    "LocalPortDetails": {"Port": 49822, "PortName": "Unknown"},
                    "RemotePortDetails": {"Port": 443, "PortName": "HTTPS"},
                    "RemoteIpDetails": {"IpAddressV4": "203.0.113.77", "Country": {"CountryName": "Unknown"}},
                },
            },
            "Archived": archived,
            "Count": 3,
            "DetectorId": "d1",
            "EventFirstSeen": "2024-05-02T09:00:00.000Z",
            "EventLastSeen": "2024-05-02T10:30:00.000Z",
            "ResourceRole": "ACTOR",
            "ServiceName": "guardduty",
        },
        "Severity": severity,
        "Title": f"{ftype} on the instance",
        "Type": ftype,
        "UpdatedAt": updated,
    }


SSH_INBOUND = {
    "ActionType": "NETWORK_CONNECTION",
    "NetworkConnectionAction": {"ConnectionDirection": "INBOUND", "Protocol": "TCP",
                                "LocalPortDetails": {"Port": 22, "PortName": "SSH"},
                                "RemoteIpDetails": {"IpAddressV4": "198.51.100.23"}},
}
DNS = {"ActionType": "DNS_REQUEST", "DnsRequestAction": {"Domain": "pool.minexmr.example", "Protocol": "UDP"}}


def select(**kwargs):
    return fnd.normalize_selection(now=NOW, **kwargs)


# -- the filter vocabulary -----------------------------------------------------------------------


@pytest.mark.parametrize("value, seconds", [("24h", 86400), ("30m", 1800), ("7d", 604800), ("2w", 1209600),
                                            ("3600", 3600), (90, 90), ("1.5h", 5400)])
def test_updated_since_durations_count_back_from_now(value, seconds):
    assert fnd.parse_updated_since(value, now=NOW) == int((NOW - seconds) * 1000)


def test_updated_since_timestamps():
    assert fnd.parse_updated_since("2024-05-01T00:00:00Z") == 1714521600000
    assert fnd.parse_updated_since("2024-05-01T02:00:00+02:00") == 1714521600000
    assert fnd.parse_updated_since(None) is None


def test_updated_since_rejects_nonsense():
    with pytest.raises(fnd.FilterError, match="updated_since"):
        fnd.parse_updated_since("yesterday")


def test_archived_choices():
    assert [select(archived=a)["archived"] for a in ("exclude", "only", "include", False, True, None)] == \
        [False, True, None, False, True, None]
    with pytest.raises(fnd.FilterError, match="archived"):
        select(archived="yes")


def test_min_severity_must_be_a_number():
    with pytest.raises(fnd.FilterError, match="min_severity"):
        fnd.normalize_selection(min_severity="high")


def test_default_criteria_ask_for_active_instance_findings():
    assert fnd.finding_criteria(select()) == {"Criterion": {
        "resource.resourceType": {"Equals": ["Instance", "AccessKey"]},
        "service.archived": {"Equals": ["false"]},
    }}


def test_criteria_narrow_by_severity_and_update_time():
    criterion = fnd.finding_criteria(select(min_severity=4.5, updated_since="24h", archived=None))["Criterion"]
    assert "service.archived" not in criterion
    assert criterion["severity"] == {"GreaterThanOrEqual": 4}  # a Long: the exact bound is checked client-side
    assert criterion["updatedAt"] == {"GreaterThanOrEqual": int((NOW - 86400) * 1000)}


def test_archived_only_criteria():
    assert fnd.finding_criteria(select(archived=True))["Criterion"]["service.archived"] == {"Equals": ["true"]}


def test_criteria_are_valid_for_botocore():
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("guardduty")
    params = {"DetectorId": "d1", "MaxResults": 50,
              "FindingCriteria": fnd.finding_criteria(select(min_severity=7, updated_since="2h", archived=True))}
    validate_parameters(params, model.operation_model("ListFindings").input_shape)


@pytest.mark.parametrize("pattern, expected", [
    ("Backdoor", True), ("Backdoor:EC2/*", True), ("Backdoor:EC2/C&CActivity.B", True), ("*C&C*", True),
    ("Backdoor:IAMUser/*", False), ("CryptoCurrency", False), ("backdoor", False),
])
def test_type_patterns_are_prefixes_or_globs(pattern, expected):
    assert fnd.type_matches("Backdoor:EC2/C&CActivity.B", pattern) is expected


def test_selection_reasons():
    f = finding("f1")
    assert fnd.finding_selected(f, select()) == (True, None)
    assert fnd.finding_selected(finding("s3", instance=False, resource_type="S3Bucket"), select())[1] == \
        "not an EC2 instance finding"
    assert fnd.finding_selected(finding("a", archived=True), select())[1] == "archived"
    assert fnd.finding_selected(finding("a", archived=True), select(archived=None)) == (True, None)
    assert fnd.finding_selected(f, select(archived=True))[1] == "not archived"
    assert fnd.finding_selected(finding("low", severity=4.4), select(min_severity=4.5))[1] == "below min_severity"
    assert fnd.finding_selected(f, select(finding_types=["CryptoCurrency"]))[1] == "type not in finding_types"
    assert fnd.finding_selected(f, select(finding_types=["Backdoor:EC2/*"], exclude_finding_types=["*.B"]))[1] == \
        "type in exclude_finding_types"
    old = finding("old", updated="2024-04-01T00:00:00.000Z")
    assert fnd.finding_selected(old, select(updated_since="24h"))[1] == "updated before updated_since"
    assert fnd.finding_selected(f, select(updated_since="24h")) == (True, None)


def test_tag_filters_need_every_key_with_one_of_the_values():
    f = finding("f1")
    assert fnd.finding_selected(f, select(tags={"Environment": ["staging", "prod*"]})) == (True, None)
    assert fnd.finding_selected(f, select(tags={"Environment": "production", "Name": "web-*"})) == (True, None)
    assert fnd.finding_selected(f, select(tags={"Environment": "staging"}))[1] == "instance tags do not match"
    assert fnd.finding_selected(f, select(tags={"Owner": None}))[1] == "instance tags do not match"
    assert fnd.finding_selected(f, select(tags={"Name": None})) == (True, None)


# -- findings -> hosts ---------------------------------------------------------------------------


def demo_findings():
    web = instance_details("i-0000000000000web1")
    worker = instance_details("i-000000000worker1", tags={"Name": "worker-1", "Environment": "staging"})
    return [
        finding("ssh", "UnauthorizedAccess:EC2/SSHBruteForce", 2.0, instance=web, action=SSH_INBOUND,
                updated="2024-05-02T09:00:00.000Z"),
        finding("cc", "Backdoor:EC2/C&CActivity.B", 8.0, instance=web),
        finding("miner", "CryptoCurrency:EC2/BitcoinTool.B!DNS", 5.0, instance=worker, account="111122223333",
                action=DNS),
        finding("s3", "Policy:S3/BucketBlockPublicAccessDisabled", 2.0, instance=False, resource_type="S3Bucket"),
        finding("old", "Recon:EC2/PortProbeUnprotectedPort", 2.0, instance=web, archived=True),
    ]


def test_one_host_per_instance_with_its_findings_most_severe_first():
    hosts, ignored = fnd.build_hosts(demo_findings(), select())
    assert sorted(hosts) == [("111122223333", "us-east-1", "i-000000000worker1"),
                             ("123456789012", "us-east-1", "i-0000000000000web1")]
    assert ignored == {"not an EC2 instance finding": 1, "archived": 1}
    web = hosts[("123456789012", "us-east-1", "i-0000000000000web1")]
    assert [f["id"] for f in web["findings"]] == ["cc", "ssh"]
    assert web["max_severity"] == 8.0 and web["severity_label"] == "high"
    assert web["finding_types"] == ["Backdoor:EC2/C&CActivity.B", "UnauthorizedAccess:EC2/SSHBruteForce"]
    assert web["finding_families"] == ["Backdoor", "UnauthorizedAccess"]
    assert web["remote_ips"] == ["198.51.100.23", "203.0.113.77"]
    assert web["local_ports"] == [22, 49822]
    assert web["first_seen"] == "2024-05-02T09:00:00.000Z" and web["last_seen"] == "2024-05-02T10:30:00.000Z"
    ssh = web["findings"][1]
    assert ssh["direction"] == "INBOUND" and ssh["local_ports"] == [22] and ssh["remote_ips"] == ["198.51.100.23"]
    miner = hosts[("111122223333", "us-east-1", "i-000000000worker1")]["findings"][0]
    assert miner["domains"] == ["pool.minexmr.example"] and miner["family"] == "CryptoCurrency"


def test_a_finding_read_twice_counts_once():
    doubled = demo_findings() + [copy.deepcopy(demo_findings()[1])]
    hosts, dummy = fnd.build_hosts(doubled, select())
    assert hosts[("123456789012", "us-east-1", "i-0000000000000web1")]["finding_count"] == 2


def test_the_instance_is_described_by_its_latest_finding():
    older = instance_details("i-0000000000000web1", groups=[("sg-0old", "old")])
    newer = instance_details("i-0000000000000web1", groups=[("sg-0new", "isolation")])
    both = [finding("b", instance=newer, updated="2024-05-02T11:00:00.000Z"),
            finding("a", instance=older, updated="2024-05-02T08:00:00.000Z")]
    hosts, dummy = fnd.build_hosts(both, select())
    host = list(hosts.values())[0]
    assert len(hosts) == 1
    assert host["instance"]["network_interfaces"][0]["security_groups"] == [{"group_id": "sg-0new",
                                                                            "group_name": "isolation"}]


def test_groups():
    hosts, dummy = fnd.build_hosts(demo_findings(), select())
    web = hosts[("123456789012", "us-east-1", "i-0000000000000web1")]
    assert fnd.host_groups(web) == ["compromised", "severity_high", "finding_backdoor", "finding_unauthorized_access",
                                    "account_123456789012", "region_us_east_1"]
    worker = hosts[("111122223333", "us-east-1", "i-000000000worker1")]
    assert fnd.host_groups(worker)[:3] == ["compromised", "severity_medium", "finding_crypto_currency"]


@pytest.mark.parametrize("severity, label", [(10, "high"), (7.0, "high"), (6.9, "medium"), (4, "medium"),
                                             (3.9, "low"), (1, "low")])
def test_severity_labels(severity, label):
    assert fnd.severity_label(severity) == label


@pytest.mark.parametrize("text, token", [("CryptoCurrency", "crypto_currency"), ("UnauthorizedAccess", "unauthorized_access"),
                                         ("Backdoor", "backdoor"), ("us-east-1", "us_east_1"), ("PrivilegeEscalation", "privilege_escalation"),
                                         ("", "unknown")])
def test_group_tokens(text, token):
    assert fnd.group_token(text) == token


def test_host_variables_prefixed_and_plain():
    hosts, dummy = fnd.build_hosts(demo_findings(), select())
    web = hosts[("123456789012", "us-east-1", "i-0000000000000web1")]
    hv = fnd.host_variables(web, "aws", "guardduty_", "arn:{partition}:iam::{account_id}:role/GuardDutyResponder")
    assert hv["instance_id"] == hv["guardduty_instance_id"] == "i-0000000000000web1"
    assert hv["account_id"] == "123456789012" and hv["region"] == "us-east-1"
    assert hv["responder_role_arn"] == hv["guardduty_responder_role_arn"] == \
        "arn:aws:iam::123456789012:role/GuardDutyResponder"
    assert hv["guardduty_availability_zone"] == "us-east-1a"
    assert hv["guardduty_vpc_id"] == "vpc-0aaa" and hv["guardduty_subnet_id"] == "subnet-0aaa"
    assert hv["guardduty_security_group_ids"] == ["sg-0aaa", "sg-0bbb"]
    assert hv["guardduty_network_interfaces"][0]["security_groups"][1] == {"group_id": "sg-0bbb", "group_name": "app"}
    assert hv["guardduty_iam_instance_profile"]["arn"].endswith("instance-profile/web-role")
    assert hv["guardduty_tags"] == {"Name": "web-1", "Environment": "production"}
    assert hv["guardduty_image_id"] == "ami-12c6146b"
    assert hv["guardduty_max_severity"] == 8.0 and hv["guardduty_finding_ids"] == ["cc", "ssh"]
    assert hv["guardduty_detector_id"] == "d1"
    assert not any(k.startswith("guardduty_") for k in set(hv) - {k for k in hv if k.startswith("guardduty_")})


def test_no_role_template_means_no_role():
    hosts, dummy = fnd.build_hosts(demo_findings(), select())
    hv = fnd.host_variables(next(iter(hosts.values())), "aws", "gd_", "")
    assert hv["responder_role_arn"] is None and hv["gd_responder_role_arn"] is None
    assert "gd_instance_id" in hv


def test_hostnames_by_preference_and_clashes_fall_back_to_instance_id():
    a = instance_details("i-000000000000000a1", tags={"Name": "web"})
    b = instance_details("i-000000000000000b2", tags={"Name": "web"})
    c = instance_details("i-000000000000000c3", tags={})
    hosts, dummy = fnd.build_hosts([finding("1", instance=a), finding("2", instance=b), finding("3", instance=c)], select())
    named, clashes = fnd.assign_hostnames(hosts, ["tag:Name", "private-ip-address"])
    assert [n for n, dummy in named] == ["web", "i-000000000000000b2", "10.10.1.10"]
    assert clashes == [("web", "i-000000000000000b2")]
    named, dummy = fnd.assign_hostnames(hosts, [])
    assert [n for n, dummy in named] == ["i-000000000000000a1", "i-000000000000000b2", "i-000000000000000c3"]
    with pytest.raises(fnd.FilterError, match="hostnames"):
        fnd.assign_hostnames(hosts, ["dns"])


def test_instance_from_ec2_has_the_finding_shape():
    ec2 = {
        "InstanceId": "i-0000000000000web1", "InstanceType": "t3.micro", "ImageId": "ami-1",
        "State": {"Code": 16, "Name": "running"}, "Placement": {"AvailabilityZone": "us-east-1b"},
        "LaunchTime": datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc),
        "IamInstanceProfile": {"Arn": "arn:aws:iam::1:instance-profile/p", "Id": "AIPA"},
        "Tags": [{"Key": "Name", "Value": "web-1"}],
        "NetworkInterfaces": [
            {"NetworkInterfaceId": "eni-2", "Attachment": {"DeviceIndex": 1}, "SubnetId": "s2", "VpcId": "v",
             "Groups": [{"GroupId": "sg-2", "GroupName": "b"}], "PrivateIpAddress": "10.0.0.2"},
            {"NetworkInterfaceId": "eni-1", "Attachment": {"DeviceIndex": 0}, "SubnetId": "s1", "VpcId": "v",
             "Groups": [{"GroupId": "sg-1", "GroupName": "a"}], "PrivateIpAddress": "10.0.0.1",
             "Association": {"PublicIp": "198.51.100.5"}, "Ipv6Addresses": [{"Ipv6Address": "2600::1"}]},
        ],
    }
    got = fnd.instance_from_ec2(ec2, "123456789012", "us-east-1")
    from_finding = fnd.instance_from_finding(finding("x"))
    assert set(got) == set(from_finding)
    assert set(got["network_interfaces"][0]) == set(from_finding["network_interfaces"][0])
    assert [n["network_interface_id"] for n in got["network_interfaces"]] == ["eni-1", "eni-2"]
    assert got["network_interfaces"][0]["public_ip"] == "198.51.100.5"
    assert got["network_interfaces"][0]["ipv6_addresses"] == ["2600::1"]
    assert got["instance_state"] == "running" and got["launch_time"].startswith("2024-05-01")


def test_listing_is_split_by_severity_band_above_the_floor():
    bands = [c["Criterion"]["severity"] for c in fnd.listing_criteria(select())]
    assert bands == [{"LessThan": 4}, {"GreaterThanOrEqual": 4, "LessThan": 7}, {"GreaterThanOrEqual": 7}]
    bands = [c["Criterion"]["severity"] for c in fnd.listing_criteria(select(min_severity=5.5))]
    assert bands == [{"GreaterThanOrEqual": 5, "LessThan": 7}, {"GreaterThanOrEqual": 7}]
    assert [c["Criterion"]["severity"] for c in fnd.listing_criteria(select(min_severity=8))] == [{"GreaterThanOrEqual": 8}]
    # the rest of the criteria is the same in every band
    for crit in fnd.listing_criteria(select(updated_since="1h", archived="only")):
        assert crit["Criterion"]["service.archived"] == {"Equals": ["true"]} and "updatedAt" in crit["Criterion"]


@pytest.mark.parametrize("severity", [1.0, 3.9, 4.0, 6.9, 7.0, 8.9, 10.0])
def test_every_severity_is_in_exactly_one_band(severity):
    hits = [c for c in fnd.listing_criteria(select())
            if severity >= c["Criterion"]["severity"].get("GreaterThanOrEqual", 0)
            and severity < c["Criterion"]["severity"].get("LessThan", 11)]
    assert len(hits) == 1


def test_responder_role_is_in_the_callers_partition():
    # The inventory's default template; the partition is the one GetCallerIdentity's ARN carries (arns.py).
    hosts, dummy = fnd.build_hosts(demo_findings(), select())
    web = hosts[("123456789012", "us-east-1", "i-0000000000000web1")]
    for partition in ("aws-us-gov", "aws-iso-f", "aws-eusc"):
        hv = fnd.host_variables(web, partition, "gd_", "arn:{partition}:iam::{account_id}:role/GuardDutyResponder")
        assert hv["responder_role_arn"] == f"arn:{partition}:iam::123456789012:role/GuardDutyResponder"


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1", "us-isob-east-1",
                                    "eu-isoe-west-1", "eusc-de-east-1", "ap-southeast-7", "mx-central-1"])
def test_region_names_aws_has(region):
    fnd.check_region_names([region])


@pytest.mark.parametrize("region", ["eu-west1", "euwest-1", "us-east-1 ", "US-EAST-1", "", "us-east", 7])
def test_misspelt_region_refused_by_name(region):
    with pytest.raises(fnd.FilterError, match="is not an AWS region name"):
        fnd.check_region_names(["us-east-1", region])
