"""Connection tracking as EC2 does it (tests/lab/conntrack.py; AWS: security-group-connection-tracking.html).

web-1's first ENI is on `web` (TCP 22 and 443 from 0.0.0.0/0) and `app` (TCP 8080 from 10.10.0.0/16), with
the default outbound rule (all traffic to 0.0.0.0/0)."""

import botocore.exceptions
import pytest

ATTACKER = "198.51.100.23"
C2 = "203.0.113.77"


def _groups(lab, eni, vpc_rules):
    """A new group in the ENI's VPC with these rules ({"in": [...], "out": [...]}: IpPermissions); no default
    egress rule unless given."""
    ec2 = lab.client("ec2")
    vpc = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"g-{len(str(vpc_rules))}-{id(vpc_rules)}", Description="d",
                                      VpcId=vpc)["GroupId"]
    default_egress = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"]
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=default_egress)
    if vpc_rules.get("in"):
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=vpc_rules["in"])
    if vpc_rules.get("out"):
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=vpc_rules["out"])
    return group


ALL = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]


def _open(lab, **flow):
    return lab.open_flow("web-1", **flow)


def _live(lab, eni):
    return {f["name"]: f for f in lab.flows(eni)}


def test_flows_are_tracked_or_not_by_the_rules_that_allow_them(demo):
    eni = demo.instance("web-1")["enis"][0]
    ssh = _open(demo, name="ssh", direction="inbound", protocol="tcp", port=22, remote=ATTACKER)
    c2 = _open(demo, name="c2", direction="outbound", protocol="tcp", port=443, remote=C2)
    app = _open(demo, name="app", direction="inbound", protocol="tcp", port=8080, remote="10.10.2.9")
    nat = _open(demo, name="nat", direction="outbound", protocol="tcp", port=443, remote=C2, path="nat-gateway")
    # TCP 22 from 0.0.0.0/0 and all traffic out to 0.0.0.0/0: untracked (the page's TCP 80 example)
    assert not ssh["tracked"]
    # out to 0.0.0.0/0, but no inbound rule lets all response traffic in: tracked
    assert c2["tracked"] and app["tracked"]  # 8080 from 10.10.0.0/16 only: tracked
    assert nat["tracked"]  # a NAT gateway's flows are always tracked
    with pytest.raises(RuntimeError, match="no rule"):
        _open(demo, name="rdp", direction="inbound", protocol="tcp", port=3389, remote=ATTACKER)
    with pytest.raises(RuntimeError, match="no rule"):
        _open(demo, name="ping", direction="inbound", protocol="icmp", remote=ATTACKER)
    assert set(_live(demo, eni)) == {"ssh", "c2", "app", "nat"}


def test_a_group_change_ends_untracked_flows_at_once_and_tracked_ones_only_at_their_timeout(demo):
    eni = demo.instance("web-1")["enis"][0]
    for name, kwargs in {"ssh": dict(direction="inbound", port=22, remote=ATTACKER),
                         "c2": dict(direction="outbound", port=443, remote=C2)}.items():
        _open(demo, name=name, protocol="tcp", **kwargs)
    closed_group = _groups(demo, eni, {})
    demo.client("ec2").modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[closed_group])
    assert set(_live(demo, eni)) == {"c2"}  # the tracked C&C connection survives the swap
    demo.advance_clock(432000 - 10)
    assert set(_live(demo, eni)) == {"c2"}
    demo.advance_clock(10)
    assert not _live(demo, eni)  # idle for the default established-TCP timeout, 432000 s
    reasons = {f["name"]: f["closed_reason"] for f in demo.flows(eni, closed=True)}
    assert "untracked" in reasons["ssh"] and "432000" in reasons["c2"]


def test_moving_through_an_all_traffic_group_untracks_flows_except_icmp_and_tracked_paths(demo):
    eni = demo.instance("web-1")["enis"][0]
    ec2 = demo.client("ec2")
    icmp_group = _groups(demo, eni, {"in": [{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
                                             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}], "out": ALL})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[icmp_group] + [
        g["GroupId"] for g in ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Groups"]])
    _open(demo, name="c2", direction="outbound", protocol="tcp", port=443, remote=C2)
    _open(demo, name="udp", direction="outbound", protocol="udp", port=53, remote=C2, stream=True)
    _open(demo, name="ping", direction="inbound", protocol="icmp", remote=ATTACKER)
    for path in ("transit-gateway", "gateway-load-balancer", "network-load-balancer"):
        _open(demo, name=path, direction="outbound", protocol="tcp", port=443, remote=C2, path=path)
    conversion = _groups(demo, eni, {"in": ALL, "out": ALL})
    isolation = _groups(demo, eni, {})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[conversion])
    live = _live(demo, eni)
    assert not live["c2"]["tracked"] and not live["udp"]["tracked"]
    assert live["ping"]["tracked"] and live["transit-gateway"]["tracked"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[isolation])
    assert set(_live(demo, eni)) == {"ping", "transit-gateway", "gateway-load-balancer", "network-load-balancer"}


def test_connection_tracking_specification_sets_the_idle_timeouts_within_awss_limits(demo):
    eni = demo.instance("web-1")["enis"][0]
    ec2 = demo.client("ec2")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni,
                                               ConnectionTrackingSpecification={"TcpEstablishedTimeout": 59})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni,
                                               ConnectionTrackingSpecification={"UdpTimeout": 61})
    c2 = _open(demo, name="c2", direction="outbound", protocol="tcp", port=443, remote=C2, path="nat-gateway")
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, ConnectionTrackingSpecification={
        "TcpEstablishedTimeout": 60, "UdpStreamTimeout": 60, "UdpTimeout": 30})
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert described["ConnectionTrackingConfiguration"] == {"TcpEstablishedTimeout": 60, "UdpStreamTimeout": 60,
                                                            "UdpTimeout": 30}
    demo.advance_clock(50)
    demo.touch_flows([c2["id"]])  # traffic: the idle time starts again
    demo.advance_clock(50)
    assert _live(demo, eni)["c2"]["timeout"] == 60
    demo.advance_clock(10)
    assert not _live(demo, eni)
