# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a security group change cannot cut: flows EC2 keeps tracking, and how long it keeps them.

AWS (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/security-group-connection-tracking.html,
"Automatically tracked connections"): flows through an egress-only internet gateway, a Gateway Load
Balancer (endpoint), Global Accelerator, a NAT gateway, a Network Firewall endpoint, a Network Load
Balancer, an interface VPC endpoint or a transit gateway attachment are always tracked, so the conversion
step does not untrack them and they survive isolation until they are idle for their timeout (established
TCP: 432000 s by default, 350 s on Nitro v6 instance types; botocore ec2 model,
ConnectionTrackingSpecificationRequest). Two things follow, both pure functions here:
- `tracked_paths`: from each ENI's subnet route table (the explicitly associated one, else the VPC's main
  table), the routes to a NAT gateway, a transit gateway, an egress-only internet gateway, or a VPC
  endpoint of type GatewayLoadBalancer (a route to one shows as GatewayId vpce-...; a Network Firewall
  endpoint is one too but is not listed by DescribeVpcEndpoints), per instance, with the recommendation
  to contain the subnet (cloudsec.guardduty.ec2_subnet_containment: network ACLs are stateless);
- `plan_timeouts`: ConnectionTrackingSpecification for the isolated ENIs (ModifyNetworkInterfaceAttribute),
  so idle tracked flows expire in minutes instead of days.
NLB, Global Accelerator and interface endpoints reach an instance without a route of its subnet: the
detach step (target groups) and the docs cover them.
"""

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import call, describe_by_filter


# option name -> (API name, min, max), seconds (botocore ec2 model, ConnectionTrackingSpecificationRequest)
TIMEOUTS = {
    "tcp_established_timeout": ("TcpEstablishedTimeout", 60, 432000),
    "udp_stream_timeout": ("UdpStreamTimeout", 60, 180),
    "udp_timeout": ("UdpTimeout", 30, 60),
}
NAT_GATEWAY, TRANSIT_GATEWAY = "nat-gateway", "transit-gateway"
EGRESS_ONLY_IGW, GATEWAY_LOAD_BALANCER = "egress-only-internet-gateway", "gateway-load-balancer"
FIREWALL_OR_GWLB = "network-firewall-or-gateway-load-balancer-endpoint"
SUBNET_CONTAINMENT = "cloudsec.guardduty.ec2_subnet_containment"


def tracking_specification(option):
    """The ConnectionTrackingSpecification for the `connection_tracking` option ({} when unset);
    ValueError naming the option and AWS's limits when a value is out of range."""
    spec = {}
    for name, (api_name, low, high) in TIMEOUTS.items():
        value = (option or {}).get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"connection_tracking.{name} must be between {low} and {high} seconds "
                             f"(EC2's limits), got {value!r}")
        spec[api_name] = value
    return spec


def plan_timeouts(instance_enis, described, spec):
    """[step] setting `spec` on each ENI whose described ConnectionTrackingConfiguration differs."""
    steps = []
    for instance_id, eni_ids in instance_enis.items():
        for eni_id in eni_ids:
            current = (described.get(eni_id) or {}).get("ConnectionTrackingConfiguration") or {}
            if spec and any(current.get(k) != v for k, v in spec.items()):
                steps.append({"action": "ModifyNetworkInterfaceAttribute", "resource": eni_id,
                              "instance_id": instance_id, "connection_tracking": dict(spec)})
    return steps


def route_table_for(subnet_id, vpc_id, route_tables):
    """The table routing a subnet: the one associated with it, else the VPC's main table (VPC guide)."""
    main = None
    for table in route_tables:
        for association in table.get("Associations") or []:
            if association.get("SubnetId") == subnet_id:
                return table
            if association.get("Main") and table.get("VpcId") == vpc_id:
                main = table
    return main


def _route_paths(table, endpoint_types):
    for route in (table or {}).get("Routes") or []:
        if route.get("State") == "blackhole":
            continue
        destination = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock") or \
            route.get("DestinationPrefixListId")
        gateway = route.get("GatewayId") or ""
        if route.get("NatGatewayId"):
            yield NAT_GATEWAY, route["NatGatewayId"], destination
        elif route.get("TransitGatewayId"):
            yield TRANSIT_GATEWAY, route["TransitGatewayId"], destination
        elif route.get("EgressOnlyInternetGatewayId"):
            yield EGRESS_ONLY_IGW, route["EgressOnlyInternetGatewayId"], destination
        elif gateway.startswith("vpce-"):
            kind = endpoint_types.get(gateway)
            if kind == "GatewayLoadBalancer":
                yield GATEWAY_LOAD_BALANCER, gateway, destination
            elif kind is None:  # not one of the account's endpoints: a Network Firewall endpoint, or not visible
                yield FIREWALL_OR_GWLB, gateway, destination


def tracked_paths(instance_enis, described, route_tables, endpoint_types):
    """{instance_id: [{network_interface_id, subnet_id, route_table_id, path, target, destination}]}."""
    out = {}
    for instance_id, eni_ids in instance_enis.items():
        found = []
        for eni_id in eni_ids:
            eni = described.get(eni_id) or {}
            table = route_table_for(eni.get("SubnetId"), eni.get("VpcId"), route_tables)
            for path, target, destination in _route_paths(table, endpoint_types):
                found.append({"network_interface_id": eni_id, "subnet_id": eni.get("SubnetId"),
                              "route_table_id": table.get("RouteTableId"), "path": path, "target": target,
                              "destination": destination})
        out[instance_id] = found
    return out


def vpce_gateways(route_tables):
    return sorted({r["GatewayId"] for t in route_tables for r in t.get("Routes") or []
                   if str(r.get("GatewayId", "")).startswith("vpce-")})


def paths_warning(instance_id, paths):
    """One sentence per instance: which ENI keeps which path, and what cuts it."""
    if not paths:
        return None
    listed = "; ".join(f"{p['network_interface_id']} ({p['subnet_id']}): {p['path']} {p['target']} "
                       f"for {p['destination']}" for p in paths)
    return (f"{instance_id}: flows through these paths stay tracked after isolation (a security group change "
            f"cannot cut them until they are idle for their timeout): {listed}. Cut them with {SUBNET_CONTAINMENT} "
            f"(a stateless network ACL on the subnet), or set connection_tracking to shorten the idle timeout.")


# -- AWS calls (through the floor, aws_calls.py) ------------------------------------------------------

def describe_route_tables(client, vpc_ids):
    """Every route table of these VPCs (the main tables and the subnets' own)."""
    return describe_by_filter(client, "DescribeRouteTables", "RouteTables", "vpc-id", sorted(set(vpc_ids)))


def vpc_endpoint_types(client, endpoint_ids):
    """{vpce id: VpcEndpointType} of the account's endpoints among these ids (by filter: an id that is not
    the account's, such as a Network Firewall endpoint, is absent instead of failing)."""
    return {endpoint["VpcEndpointId"]: endpoint.get("VpcEndpointType")
            for endpoint in describe_by_filter(client, "DescribeVpcEndpoints", "VpcEndpoints", "vpc-endpoint-id",
                                               sorted(set(endpoint_ids)))}


def set_timeouts(client, eni_id, spec):
    # one attribute per ModifyNetworkInterfaceAttribute call, as for the groups
    return call(client, "ModifyNetworkInterfaceAttribute", NetworkInterfaceId=eni_id, ConnectionTrackingSpecification=spec)
