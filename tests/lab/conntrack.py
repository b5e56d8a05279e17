"""Security group connection tracking: per ENI, the established flows EC2 would keep or drop.

AWS (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/security-group-connection-tracking.html):
- a TCP or UDP flow is *untracked* when the rule that allows it in the direction it was opened allows
  that traffic from/to all addresses (0.0.0.0/0, or ::/0 for IPv6) and a rule in the other direction
  allows all response traffic (all protocols or all ports 0-65535) to/from all addresses; the page's
  example: inbound TCP 80 from 0.0.0.0/0 with outbound all traffic to 0.0.0.0/0 is untracked, inbound
  TCP 22 from one /32 is tracked;
- ICMP (and every other protocol) is always tracked, and so is every flow through an "automatically
  tracked" path: a NAT gateway, a Network Load Balancer, Global Accelerator, AWS Network Firewall, a
  transit gateway attachment, a Gateway Load Balancer (PATHS);
- an untracked flow is checked against the rules packet by packet: it ends as soon as no rule of the
  ENI's current groups allows it. A tracked flow survives any rule or group change and ends only when
  it has been idle for its timeout (TCP established: 432000 s, 350 s on Nitro v6 instance types;
  UDP: 30 s, 180 s for a stream), which ConnectionTrackingSpecification on the ENI changes
  (botocore ec2 model, ConnectionTrackingSpecificationRequest: TcpEstablishedTimeout 60-432000,
  UdpStreamTimeout 60-180, UdpTimeout 30-60);
- moving an ENI onto groups under which its flows would be untracked makes them untracked (that is the
  conversion step of AWS's containment procedure, AWSSupport-ContainEC2Instance).

The lab re-reads each flow's ENI groups after every EC2 call that succeeded in its account and region,
and expires idle tracked flows on the lab clock. Tests open flows with POST /_lab/flows, mark traffic
with {"touch": [ids]}, and read the live ones with GET /_lab/flows. moto 5.2.5 ignores
ConnectionTrackingSpecification; the lab validates it, keeps it on the ENI (DescribeNetworkInterfaces
shows it as ConnectionTrackingConfiguration) and applies it to the ENI's flows.
ICMP flows have no documented idle timeout: the lab keeps them until their ENI goes away.
"""

import ipaddress
import itertools
import threading

PATHS = ("nat-gateway", "network-load-balancer", "global-accelerator", "network-firewall",
         "transit-gateway", "gateway-load-balancer")
PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
# Default idle timeouts, seconds (botocore ec2 model, ConnectionTrackingSpecificationRequest)
TCP_ESTABLISHED_DEFAULT = 432000
TCP_ESTABLISHED_NITRO_V6 = 350
UDP_DEFAULT, UDP_STREAM_DEFAULT = 30, 180
LIMITS = {"TcpEstablishedTimeout": (60, 432000), "UdpStreamTimeout": (60, 180), "UdpTimeout": (30, 60)}
# Nitro v6 families the lab knows (the established-TCP default is 350 s on them; AWS's instance types page
# lists the generation of each family)
NITRO_V6_FAMILIES = frozenset(["c8i", "c8i-flex", "m8i", "m8i-flex", "r8i", "r8i-flex", "i8ge", "x8i"])


def _protocol(value):
    value = str(value or "").lower()
    return PROTOCOL_NUMBERS.get(value, value)


def _network(rule):
    cidr = rule.ip_range.get("CidrIp") or rule.ip_range.get("CidrIpv6")
    return ipaddress.ip_network(cidr, strict=False) if cidr else None


def _rule_allows(rule, protocol, port, remote):
    """Does this security group rule allow traffic of `protocol`/`port` with the `remote` address?"""
    rule_protocol = _protocol(rule.ip_protocol)
    if rule_protocol not in ("-1", protocol):
        return False
    if rule_protocol != "-1" and protocol in ("tcp", "udp") and rule.from_port is not None:
        if not int(rule.from_port) <= int(port) <= int(rule.to_port):
            return False
    network = _network(rule)
    return network is not None and network.version == remote.version and remote in network


def _rule_open_to_all(rule, remote, all_ports):
    network = _network(rule)
    if network is None or network.version != remote.version or network.prefixlen != 0:
        return False
    if not all_ports:
        return True
    protocol = _protocol(rule.ip_protocol)
    return protocol == "-1" or (protocol in ("tcp", "udp") and int(rule.from_port or 0) == 0
                                and int(rule.to_port or 0) == 65535)


def _rules(groups, direction):
    return [r for g in groups for r in (g.ingress_rules if direction == "inbound" else g.egress_rules)]


def allowed(groups, flow):
    """A rule of the groups allows the flow in the direction it was opened."""
    remote = ipaddress.ip_address(flow["remote"])
    return any(_rule_allows(r, flow["protocol"], flow["port"], remote) for r in _rules(groups, flow["direction"]))


def untracked_under(groups, flow):
    """AWS's rule: TCP/UDP, not on an automatically tracked path, allowed from/to all addresses in the
    direction it was opened, and all response traffic allowed to/from all addresses the other way."""
    if flow["protocol"] not in ("tcp", "udp") or flow.get("path"):
        return False
    remote = ipaddress.ip_address(flow["remote"])
    other = "outbound" if flow["direction"] == "inbound" else "inbound"
    opening = [r for r in _rules(groups, flow["direction"])
               if _rule_allows(r, flow["protocol"], flow["port"], remote) and _rule_open_to_all(r, remote, False)]
    response = [r for r in _rules(groups, other) if _rule_open_to_all(r, remote, True)]
    return bool(opening) and bool(response)


class FlowTable:
    def __init__(self, clock):
        self.clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.flows = {}

    def reset(self):
        with self._lock:
            self.flows = {}

    # -- the ENI as moto holds it ------------------------------------------------------------------
    @staticmethod
    def _eni(account, region, eni_id):
        from moto.ec2.models import ec2_backends
        try:
            return ec2_backends[account][region].get_network_interface(eni_id)
        except Exception:
            return None

    def timeouts(self, account, region, eni_id):
        eni = self._eni(account, region, eni_id)
        family = str(getattr(getattr(eni, "instance", None), "instance_type", "") or "").split(".")[0]
        out = {"TcpEstablishedTimeout": TCP_ESTABLISHED_NITRO_V6 if family in NITRO_V6_FAMILIES
               else TCP_ESTABLISHED_DEFAULT, "UdpStreamTimeout": UDP_STREAM_DEFAULT, "UdpTimeout": UDP_DEFAULT}
        out.update(getattr(eni, "connection_tracking_configuration", None) or {})
        return out

    def _timeout(self, flow):
        timeouts = self.timeouts(flow["account"], flow["region"], flow["eni"])
        if flow["protocol"] == "tcp":
            return timeouts["TcpEstablishedTimeout"]
        if flow["protocol"] == "udp":
            return timeouts["UdpStreamTimeout" if flow.get("stream") else "UdpTimeout"]
        return None

    # -- control endpoint ------------------------------------------------------------------------------
    def open(self, data):
        """Establish a flow on an ENI; refused (ValueError) when no rule of its groups allows it."""
        flow = {"eni": data["eni"], "account": data["account"], "region": data.get("region", "us-east-1"),
                "protocol": _protocol(data.get("protocol", "tcp")), "direction": data.get("direction", "inbound"),
                "remote": str(ipaddress.ip_address(data["remote"])), "port": int(data.get("port") or 0),
                "path": data.get("path"), "stream": bool(data.get("stream")), "name": data.get("name")}
        if flow["direction"] not in ("inbound", "outbound"):
            raise ValueError("direction: inbound or outbound")
        if flow["path"] is not None and flow["path"] not in PATHS:
            raise ValueError(f"path: one of {', '.join(PATHS)}")
        eni = self._eni(flow["account"], flow["region"], flow["eni"])
        if eni is None:
            raise ValueError(f"no network interface {flow['eni']} in {flow['account']} {flow['region']}")
        groups = list(eni.group_set)
        if not allowed(groups, flow):
            raise ValueError(f"no rule of {flow['eni']}'s groups allows {flow['direction']} {flow['protocol']} "
                             f"{flow['port']} with {flow['remote']}: the flow cannot be established")
        with self._lock:
            flow.update(id=f"flow-{next(self._ids)}", tracked=not untracked_under(groups, flow),
                        opened_at=self.clock.now(), last_seen=self.clock.now(), open=True, closed_reason=None)
            self.flows[flow["id"]] = flow
        return dict(flow)

    def touch(self, ids):
        """Traffic on these flows now: their idle time starts again (if they are still open)."""
        with self._lock:
            self._expire()
            for flow_id in ids:
                if flow_id in self.flows and self.flows[flow_id]["open"]:
                    self.flows[flow_id]["last_seen"] = self.clock.now()

    def live(self, eni=None, include_closed=False):
        with self._lock:
            self._expire()
            return [dict(f, timeout=self._timeout(f)) for f in self.flows.values()
                    if (include_closed or f["open"]) and (eni is None or f["eni"] == eni)]

    # -- what EC2 does -------------------------------------------------------------------------------
    def check_request(self, req):
        """AWS's refusal of an out-of-range ConnectionTrackingSpecification, or None."""
        if req.action != "ModifyNetworkInterfaceAttribute":
            return None
        for name, (low, high) in LIMITS.items():
            value = (req.params or {}).get(f"ConnectionTrackingSpecification.{name}")
            if value is None:
                continue
            if not str(value).isdigit() or not low <= int(value) <= high:
                return 400, "InvalidParameterValue", (f"The value '{value}' for {name} is invalid: it must be "
                                                      f"between {low} and {high} seconds.")
        return None

    def after(self, req, status):
        """A successful EC2 call: keep a connection-tracking spec, then re-read every flow's groups."""
        if req.protocol != "ec2" or status >= 400:
            return
        params = req.params or {}
        if req.action == "ModifyNetworkInterfaceAttribute":
            spec = {name: int(params[f"ConnectionTrackingSpecification.{name}"]) for name in LIMITS
                    if params.get(f"ConnectionTrackingSpecification.{name}") is not None}
            eni = self._eni(req.account, req.region, params.get("NetworkInterfaceId"))
            if spec and eni is not None:
                # kept on moto's ENI, so DescribeNetworkInterfaces shows ConnectionTrackingConfiguration as AWS does
                current = getattr(eni, "connection_tracking_configuration", None) or {}
                eni.connection_tracking_configuration = dict(current, **spec)
        if self.flows and not req.action.startswith(("Describe", "Get")):
            self.sync(req.account, req.region)

    def sync(self, account, region):
        with self._lock:
            self._expire()
            for flow in self.flows.values():
                if not flow["open"] or flow["account"] != account or flow["region"] != region:
                    continue
                eni = self._eni(account, region, flow["eni"])
                if eni is None:
                    self._close(flow, "network interface deleted")
                    continue
                groups = list(eni.group_set)
                if flow["tracked"]:
                    if untracked_under(groups, flow):
                        flow["tracked"] = False  # the conversion: from now on checked packet by packet
                    continue
                if not allowed(groups, flow):
                    self._close(flow, "untracked, and no rule of the ENI's groups allows it")
                elif not untracked_under(groups, flow):
                    flow["tracked"] = True
                    flow["last_seen"] = self.clock.now()

    def _expire(self):
        now = self.clock.now()
        for flow in self.flows.values():
            timeout = self._timeout(flow)
            if flow["open"] and flow["tracked"] and timeout is not None and now - flow["last_seen"] >= timeout:
                self._close(flow, f"tracked, idle for its timeout ({timeout} s)")

    def _close(self, flow, reason):
        flow["open"] = False
        flow["closed_reason"] = reason
        flow["closed_at"] = self.clock.now()
