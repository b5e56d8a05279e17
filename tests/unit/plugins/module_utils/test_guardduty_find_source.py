# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Triage: finding type -> recommendation, for every finding type of the demo scenario, and the exposing rules."""

import json

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty_find_source as find_source


def net(direction, port, remote="198.51.100.23"):
    return {"ActionType": "NETWORK_CONNECTION", "NetworkConnectionAction": {
        "ConnectionDirection": direction, "Protocol": "TCP", "LocalPortDetails": {"Port": port},
        "RemoteIpDetails": {"IpAddressV4": remote}}}


def finding(ftype, action=None, instance_id="i-0123456789abcdef0", role=None):
    details = {"InstanceId": instance_id}
    if role:
        details["IamInstanceProfile"] = {"Arn": role}
    return {"Id": "f-" + ftype, "Type": ftype, "Severity": 5.0, "Resource": {"InstanceDetails": details},
            "Service": {"Action": action or {}}}


# The finding types of the lab's demo scenario (tests/integration_lab/test_guardduty_find_source.py checks that it
# gets no generic advice), in GetFindings' shape, with the kind of recommendation each must get.
CASES = {
    "UnauthorizedAccess:EC2/SSHBruteForce": (finding("UnauthorizedAccess:EC2/SSHBruteForce", net("INBOUND", 22)), "close_exposure"),
    "UnauthorizedAccess:EC2/RDPBruteForce": (finding("UnauthorizedAccess:EC2/RDPBruteForce", net("INBOUND", 3389)), "close_exposure"),
    "Backdoor:EC2/C&CActivity.B": (finding("Backdoor:EC2/C&CActivity.B", net("OUTBOUND", 49822, "203.0.113.77")), "rebuild"),
    "CryptoCurrency:EC2/BitcoinTool.B!DNS": (finding("CryptoCurrency:EC2/BitcoinTool.B!DNS", {
        "ActionType": "DNS_REQUEST", "DnsRequestAction": {"Domain": "pool.minexmr.example"}}), "rebuild"),
    "Trojan:EC2/DNSDataExfiltration": (finding("Trojan:EC2/DNSDataExfiltration", {
        "ActionType": "DNS_REQUEST", "DnsRequestAction": {"Domain": "x1f3.exfil.example"}}), "rebuild"),
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS": (finding(
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        {"ActionType": "AWS_API_CALL", "AwsApiCallAction": {"Api": "DescribeInstances",
                                                            "RemoteIpDetails": {"IpAddressV4": "198.51.100.200"}}},
        role="arn:aws:iam::111122223333:instance-profile/worker-role"), "cut_credentials"),
    "Policy:S3/BucketBlockPublicAccessDisabled": (finding("Policy:S3/BucketBlockPublicAccessDisabled", instance_id=None), "investigate"),
}


@pytest.mark.parametrize("ftype", sorted(CASES))
def test_recommendation_kind(ftype):
    raw, kind = CASES[ftype]
    recommendations = find_source.recommend(raw)
    assert [r["kind"] for r in recommendations] == [kind]
    assert recommendations[0]["finding_type"] == ftype and recommendations[0]["finding_id"] == raw["Id"]


def test_brute_force_names_the_port_and_role_is_carried():
    ssh = find_source.recommend(CASES["UnauthorizedAccess:EC2/SSHBruteForce"][0])[0]
    assert ssh["ports"] == [22] and ssh["protocol"] == "tcp"
    rdp = find_source.recommend(finding("UnauthorizedAccess:EC2/RDPBruteForce"))[0]
    assert rdp["ports"] == [3389]  # no action details: the service's port
    cut = find_source.recommend(CASES["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"][0])[0]
    assert cut["role"].endswith("worker-role") and cut["module"] == "cloudsec.guardduty.ec2_instance_credentials"


def test_outbound_brute_force_means_the_instance_is_the_attacker():
    assert find_source.recommend(finding("UnauthorizedAccess:EC2/SSHBruteForce", net("OUTBOUND", 22)))[0]["kind"] == "rebuild"


def test_port_probe_and_malware_and_unknown():
    probe = finding("Recon:EC2/PortProbeUnprotectedPort", {"ActionType": "PORT_PROBE", "PortProbeAction": {
        "PortProbeDetails": [{"LocalPortDetails": {"Port": 3389}}, {"LocalPortDetails": {"Port": 22}}]}})
    assert find_source.recommend(probe)[0]["ports"] == [3389, 22]
    assert find_source.recommend(finding("Execution:EC2/MaliciousFile"))[0]["kind"] == "rebuild"
    assert find_source.recommend(finding("Something:EC2/New"))[0]["kind"] == "investigate"


def test_inventory_summaries_are_accepted():
    summary = {"id": "f1", "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 2.0, "instance_id": "i-1",
               "action_type": "NETWORK_CONNECTION", "direction": "INBOUND", "protocol": "TCP", "local_ports": [2222],
               "remote_ips": ["198.51.100.1"], "domains": [], "api": None}
    assert find_source.recommend(summary)[0]["ports"] == [2222]
    assert find_source.normalize(summary)["instance_id"] == "i-1"


RULES = [
    {"SecurityGroupRuleId": "sgr-ssh4", "GroupId": "sg-1", "IsEgress": False, "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"},
    {"SecurityGroupRuleId": "sgr-ssh6", "GroupId": "sg-1", "IsEgress": False, "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv6": "::/0"},
    {"SecurityGroupRuleId": "sgr-https", "GroupId": "sg-1", "IsEgress": False, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "0.0.0.0/0"},
    {"SecurityGroupRuleId": "sgr-range", "GroupId": "sg-2", "IsEgress": False, "IpProtocol": "tcp", "FromPort": 0, "ToPort": 1024, "CidrIpv4": "0.0.0.0/0"},
    {"SecurityGroupRuleId": "sgr-all", "GroupId": "sg-2", "IsEgress": False, "IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIpv6": "::/0"},
    {"SecurityGroupRuleId": "sgr-vpc", "GroupId": "sg-2", "IsEgress": False, "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "10.0.0.0/8"},
    {"SecurityGroupRuleId": "sgr-udp", "GroupId": "sg-2", "IsEgress": False, "IpProtocol": "udp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0"},
    {"SecurityGroupRuleId": "sgr-out", "GroupId": "sg-2", "IsEgress": True, "IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIpv4": "0.0.0.0/0"},
]


def test_exposing_rules_open_the_port_to_the_internet_only():
    found = [r["SecurityGroupRuleId"] for r in find_source.exposing_rules(RULES, [22], "tcp")]
    assert found == ["sgr-ssh4", "sgr-ssh6", "sgr-range", "sgr-all"]
    assert [r["SecurityGroupRuleId"] for r in find_source.exposing_rules(RULES, [3389], "tcp")] == ["sgr-all"]


def test_rule_record_round_trip():
    key, value = find_source.rule_record(dict(RULES[1], Description="ssh from anywhere"), "i-1")
    assert key == "guardduty:revoked-rule:sgr-ssh6" and len(value) <= 256
    assert find_source.permission_from_record(value) == ("i-1", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                                                 "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "ssh from anywhere"}]})
    dummy_key, value = find_source.rule_record(dict(RULES[0], Description="d" * 300), "i-1")
    assert len(value) <= 256 and "Description" not in json.dumps(find_source.permission_from_record(value))


def test_isolated_instance_uses_the_recorded_original_groups():
    instance = {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "Groups": [{"GroupId": "sg-iso"}]},
                                      {"NetworkInterfaceId": "eni-2", "Groups": [{"GroupId": "sg-b"}]}]}
    tags = {"eni-1": {"rec": "sg-a,sg-c"}}
    groups, isolated = find_source.instance_groups(instance, tags, lambda t: t["rec"].split(",") if "rec" in t else None)
    assert (groups, isolated) == (["sg-a", "sg-c", "sg-b"], True)
