"""Connection tracking, proven on the lab's flow table (tests/lab/conntrack.py, AWS's rules):

- on the same instances, a plain swap to a restrictive group (ModifyNetworkInterfaceAttribute straight to
  it: what Cloud Custodian's modify-security-groups action does) leaves every tracked flow established,
  while ec2_isolation (conversion group, then isolation group) leaves none;
- flows EC2 always tracks (here through a transit gateway attachment) survive isolation: ec2_isolation
  names the path per instance and recommends ec2_subnet_containment, and with `connection_tracking` their
  idle timeout on the isolated ENIs becomes minutes instead of 5 days.
"""

C2 = "203.0.113.77"
INSTANCES = ("web-1", "app-1")


def _tracked_flows(lab, name):
    """A C&C connection out of every ENI of the instance, and an inbound app connection where a rule allows one
    from a limited range: all tracked under the instance's groups (no all-traffic rule from 0.0.0.0/0 inbound)."""
    flows = []
    for index, eni in enumerate(lab.instance(name)["enis"]):
        flows.append(lab.open_flow(name, index, name=f"{name}/{eni}/c2", direction="outbound", protocol="tcp",
                                   port=443, remote=C2))
        try:
            flows.append(lab.open_flow(name, index, name=f"{name}/{eni}/app", direction="inbound", protocol="tcp",
                                       port=8080, remote="10.10.2.9"))
        except RuntimeError:  # no rule of this ENI allows it
            pass
    return flows


def _enis(lab):
    return [e for n in INSTANCES for e in lab.instance(n)["enis"]]


def _live(lab):
    enis = set(_enis(lab))
    return {f["name"] for f in lab.flows() if f["eni"] in enis}


def _plain_swap(lab):
    """Custodian's modify-security-groups with an isolation group: one call per ENI, straight to a group with
    no rules."""
    ec2 = lab.client("ec2")
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=_enis(lab))["NetworkInterfaces"]
    quarantine = {}
    for eni in described:
        vpc = eni["VpcId"]
        if vpc not in quarantine:
            group = ec2.create_security_group(GroupName="custodian-quarantine", Description="no rules",
                                              VpcId=vpc)["GroupId"]
            egress = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"]
            ec2.revoke_security_group_egress(GroupId=group, IpPermissions=egress)
            quarantine[vpc] = group
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                               Groups=[quarantine[vpc]])
    return {e["NetworkInterfaceId"]: [g["GroupId"] for g in e["Groups"]] for e in described}


def test_isolation_leaves_no_established_flow_where_a_plain_group_swap_leaves_every_one(demo):
    flows = [f for n in INSTANCES for f in _tracked_flows(demo, n)]
    assert len(flows) >= 5 and all(f["tracked"] for f in flows)
    opened = {f["name"] for f in flows}

    originals = _plain_swap(demo)
    assert _live(demo) == opened, "a plain swap should leave every tracked flow open, as EC2 does"
    ec2 = demo.client("ec2")
    for eni, groups in originals.items():  # back as they were, the flows still established
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=groups)
    assert _live(demo) == opened

    mark = demo.mark()
    result = demo.run_module("cloudsec.guardduty.ec2_isolation", {
        "instance_ids": [demo.instance(n)["id"] for n in INSTANCES], "incident_id": "INC-CT"})
    assert [r["state"] for r in result["instances"].values()] == ["isolated", "isolated"]
    assert _live(demo) == set(), "isolation must leave no established flow"
    closed = {f["name"]: f["closed_reason"] for f in demo.flows(closed=True) if f["name"] in opened}
    assert all("untracked" in reason for reason in closed.values()), closed
    moves = [e["params"]["NetworkInterfaceId"] for e in demo.journal(since=mark, action="ModifyNetworkInterfaceAttribute")]
    assert sorted(set(moves)) == sorted(_enis(demo)) and len(moves) == 2 * len(_enis(demo))  # conversion, isolation


def _route_through_transit_gateway_and_gwlb(lab, name):
    ec2 = lab.client("ec2")
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[lab.instance(name)["enis"][0]])["NetworkInterfaces"][0]
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [eni["SubnetId"]]}])
    tables = tables["RouteTables"] or ec2.describe_route_tables(Filters=[
        {"Name": "vpc-id", "Values": [eni["VpcId"]]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    table = tables[0]["RouteTableId"]
    tgw = ec2.create_transit_gateway()["TransitGateway"]["TransitGatewayId"]
    ec2.create_transit_gateway_vpc_attachment(TransitGatewayId=tgw, VpcId=eni["VpcId"], SubnetIds=[eni["SubnetId"]])
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.16.0.0/12", TransitGatewayId=tgw)
    endpoint = ec2.create_vpc_endpoint(VpcId=eni["VpcId"], VpcEndpointType="GatewayLoadBalancer",
                                       ServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
                                       SubnetIds=[eni["SubnetId"]])["VpcEndpoint"]["VpcEndpointId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="192.0.2.0/24", VpcEndpointId=endpoint)
    return eni, tgw, endpoint


def test_always_tracked_paths_are_named_and_their_flows_expire_with_connection_tracking(demo):
    eni, tgw, endpoint = _route_through_transit_gateway_and_gwlb(demo, "web-1")
    eni_id = eni["NetworkInterfaceId"]
    flow = demo.open_flow("web-1", name="via-tgw", direction="outbound", protocol="tcp", port=443,
                          remote="172.20.1.1", path="transit-gateway")
    args = {"instance_ids": [demo.instance("web-1")["id"]], "incident_id": "INC-CT",
            "connection_tracking": {"tcp_established_timeout": 120, "udp_timeout": 30}}
    mark = demo.mark()
    result = next(iter(demo.run_module("cloudsec.guardduty.ec2_isolation", args)["instances"].values()))
    assert result["state"] == "isolated"
    paths = {(p["network_interface_id"], p["path"], p["target"]) for p in result["tracked_paths"]}
    assert {(eni_id, "transit-gateway", tgw), (eni_id, "gateway-load-balancer", endpoint)} <= paths
    warning = next(w for w in result["warnings"] if "stay tracked" in w)
    assert tgw in warning and endpoint in warning and "ec2_subnet_containment" in warning
    # the transit gateway flow survives the conversion, as EC2 keeps tracking it
    assert [f["name"] for f in demo.flows(eni_id)] == ["via-tgw"]
    timeouts = [e for e in demo.journal(since=mark, action="ModifyNetworkInterfaceAttribute")
                if any(k.startswith("ConnectionTrackingSpecification") for k in e["params"])]
    assert sorted(e["params"]["NetworkInterfaceId"] for e in timeouts) == sorted(demo.instance("web-1")["enis"])
    described = demo.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    assert described["ConnectionTrackingConfiguration"]["TcpEstablishedTimeout"] == 120
    demo.touch_flows([flow["id"]])  # traffic now; the lab clock is wall time plus the advances
    demo.advance_clock(90)
    assert [f["id"] for f in demo.flows(eni_id)] == [flow["id"]]
    demo.advance_clock(31)
    assert not demo.flows(eni_id)  # idle for the 120 s set on the isolated ENI, not 432000 s

    mark = demo.mark()  # a rerun changes nothing
    again = demo.run_module("cloudsec.guardduty.ec2_isolation", args)
    assert not again["changed"]
    # reads only: Describe calls, and sts:GetCallerIdentity for the account of the per-instance lock
    assert not [e for e in demo.journal(since=mark)
                if not e["action"].startswith("Describe") and e["action"] != "GetCallerIdentity"]


def test_connection_tracking_out_of_awss_limits_is_refused_before_any_change(demo):
    mark = demo.mark()
    result = demo.run_module("cloudsec.guardduty.ec2_isolation", {
        "instance_ids": [demo.instance("web-1")["id"]], "connection_tracking": {"tcp_established_timeout": 30}},
        expect_rc=None)
    assert result["failed"] and "tcp_established_timeout must be between 60 and 432000" in result["msg"]
    assert not demo.journal(since=mark)
