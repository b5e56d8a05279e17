# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Triage (seed step 3, identify the source): from each finding's type and action, what to do about it.

`recommend(finding)` is the pure mapping finding type -> recommendations:
  close_exposure   SSH/RDP brute force aimed at the instance, port probes: the security-group rules that expose
                   the reported local port to 0.0.0.0/0 or ::/0 (found by `exposing_rules`);
  rebuild          CryptoCurrency, Backdoor, Trojan, malware found: the instance cannot be trusted any more,
                   terminate it and replace it from a known-good image (cloudsec.guardduty.ec2_eradicate);
  cut_credentials  instance credentials used from elsewhere: cut them (cloudsec.guardduty.ec2_instance_credentials)
                   and rotate what the role could reach;
  investigate      anything else.
Findings are accepted in GetFindings' shape (Type, Service.Action...) or as the inventory plugin summarizes
them (type, action_type, local_ports, direction...).
"""

import json

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty as gd
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter, describe_by_ids
from ansible_collections.cloudsec.guardduty.plugins.module_utils.records import tag_dict

OPEN_CIDRS = ("0.0.0.0/0", "::/0")
RECORD_PREFIX = "guardduty:revoked-rule:"  # + rule id; value: the rule, compact JSON, to re-authorize on release
TAG_VALUE_MAX = 256
DEFAULT_PORTS = {"UnauthorizedAccess:EC2/SSHBruteForce": 22, "UnauthorizedAccess:EC2/RDPBruteForce": 3389}
REBUILD_FAMILIES = ("CryptoCurrency", "Backdoor", "Trojan")
REBUILD_TYPES = ("Execution:EC2/MaliciousFile",)


def normalize(finding):
    """{id, type, severity, instance_id, role_arn, action_type, direction, protocol, local_ports, remote_ips, domains, api}."""
    if "Type" in finding or "Service" in finding:
        service = finding.get("Service") or {}
        action = service.get("Action") or {}
        details = (finding.get("Resource") or {}).get("InstanceDetails") or {}
        out = {"id": finding.get("Id"), "type": finding.get("Type") or "", "severity": float(finding.get("Severity") or 0),
               "instance_id": details.get("InstanceId"), "role_arn": (details.get("IamInstanceProfile") or {}).get("Arn"),
               "action_type": action.get("ActionType"), "direction": None, "protocol": None, "local_ports": [],
               "remote_ips": [], "domains": [], "api": None, "resource_role": service.get("ResourceRole")}
        net = action.get("NetworkConnectionAction") or {}
        if net:
            out["direction"] = net.get("ConnectionDirection")
            out["protocol"] = net.get("Protocol")
            if (net.get("LocalPortDetails") or {}).get("Port") is not None:
                out["local_ports"].append(int(net["LocalPortDetails"]["Port"]))
            if (net.get("RemoteIpDetails") or {}).get("IpAddressV4"):
                out["remote_ips"].append(net["RemoteIpDetails"]["IpAddressV4"])
        for probe in (action.get("PortProbeAction") or {}).get("PortProbeDetails") or []:
            port = (probe.get("LocalPortDetails") or {}).get("Port")
            if port is not None and int(port) not in out["local_ports"]:
                out["local_ports"].append(int(port))
            if (probe.get("RemoteIpDetails") or {}).get("IpAddressV4"):
                out["remote_ips"].append(probe["RemoteIpDetails"]["IpAddressV4"])
        if (action.get("DnsRequestAction") or {}).get("Domain"):
            out["domains"].append(action["DnsRequestAction"]["Domain"])
        api = action.get("AwsApiCallAction") or {}
        if api:
            out["api"] = api.get("Api")
            if (api.get("RemoteIpDetails") or {}).get("IpAddressV4"):
                out["remote_ips"].append(api["RemoteIpDetails"]["IpAddressV4"])
        return out
    return {"id": finding.get("id"), "type": finding.get("type") or "", "severity": float(finding.get("severity") or 0),
            "instance_id": finding.get("instance_id"), "role_arn": finding.get("role_arn"),
            "action_type": finding.get("action_type"), "direction": finding.get("direction"),
            "protocol": finding.get("protocol"), "local_ports": [int(p) for p in finding.get("local_ports") or []],
            "remote_ips": list(finding.get("remote_ips") or []), "domains": list(finding.get("domains") or []),
            "api": finding.get("api"), "resource_role": finding.get("resource_role")}


def _base(finding, kind, summary, module=None, **extra):
    return dict({"kind": kind, "finding_id": finding["id"], "finding_type": finding["type"],
                 "severity": finding["severity"], "summary": summary, "module": module}, **extra)


def recommend(finding):
    """The recommendations for one finding (normalized or not), most important first."""
    f = finding if "local_ports" in finding and "action_type" in finding else normalize(finding)
    ftype = f["type"]
    family = ftype.split(":", 1)[0]
    remote = ", ".join(f["remote_ips"]) or "unknown"
    if ftype in DEFAULT_PORTS:
        if f["direction"] == "OUTBOUND":
            return [_base(f, "rebuild", f"the instance is brute-forcing others ({remote}): it is compromised; "
                          "terminate it and replace it from a known-good image", "cloudsec.guardduty.ec2_eradicate")]
        ports = f["local_ports"] or [DEFAULT_PORTS[ftype]]
        return [_base(f, "close_exposure", f"close the security-group rules exposing port(s) {', '.join(map(str, ports))} "
                      f"to the internet (attempts from {remote}); use a bastion, SSM Session Manager or a narrow CIDR",
                      "cloudsec.guardduty.guardduty_find_source", ports=ports, protocol=(f["protocol"] or "TCP").lower())]
    if ftype.startswith("Recon:EC2/PortProbe"):
        ports = f["local_ports"]
        return [_base(f, "close_exposure", f"close the security-group rules exposing probed port(s) "
                      f"{', '.join(map(str, ports)) or '(none reported)'} to the internet",
                      "cloudsec.guardduty.guardduty_find_source", ports=ports, protocol="tcp")]
    if family in REBUILD_FAMILIES or ftype in REBUILD_TYPES:
        context = ", ".join(f["domains"] + f["remote_ips"])
        return [_base(f, "rebuild", f"{family} activity{' (' + context + ')' if context else ''}: the instance cannot be "
                      "trusted; take evidence, then terminate it and replace it from a known-good image",
                      "cloudsec.guardduty.ec2_eradicate")]
    if ftype.startswith("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration"):
        role = f["role_arn"] or "the instance's role"
        return [_base(f, "cut_credentials", f"the instance's role credentials were used from {remote}: cut them for this "
                      f"instance, review what {role} allowed ({f['api'] or 'API calls'}), and rotate secrets it could read",
                      "cloudsec.guardduty.ec2_instance_credentials", role=f["role_arn"])]
    return [_base(f, "investigate", f"no automatic recommendation for {ftype or 'this finding'}: see GuardDuty's "
                  "remediation guidance for the finding type")]


def _port_in(rule, port):
    low, high = rule.get("FromPort"), rule.get("ToPort")
    if low in (None, -1) or high in (None, -1):
        return True
    return int(low) <= int(port) <= int(high)


def exposing_rules(rules, ports, protocol="tcp"):
    """The ingress rules (DescribeSecurityGroupRules' shape) that open one of `ports` to 0.0.0.0/0 or ::/0."""
    out = []
    for rule in rules:
        if rule.get("IsEgress"):
            continue
        if rule.get("CidrIpv4") not in OPEN_CIDRS and rule.get("CidrIpv6") not in OPEN_CIDRS:
            continue
        if str(rule.get("IpProtocol")) not in ("-1", str(protocol).lower()):
            continue
        if any(_port_in(rule, p) for p in ports):
            out.append(rule)
    return out


def rule_record(rule, instance_id):
    """The tag (key, value) recording a revoked rule, enough to authorize it again."""
    data = {"i": instance_id, "p": rule["IpProtocol"], "f": rule.get("FromPort"), "t": rule.get("ToPort")}
    if rule.get("CidrIpv4"):
        data["c4"] = rule["CidrIpv4"]
    if rule.get("CidrIpv6"):
        data["c6"] = rule["CidrIpv6"]
    text = json.dumps(data, separators=(",", ":"))
    description = rule.get("Description")
    if description:
        with_description = json.dumps(dict(data, d=description), separators=(",", ":"))
        if len(with_description) <= TAG_VALUE_MAX:
            text = with_description
    return RECORD_PREFIX + rule["SecurityGroupRuleId"], text


def permission_from_record(value):
    """IpPermissions (one) for AuthorizeSecurityGroupIngress from a recorded rule."""
    data = json.loads(value)
    perm = {"IpProtocol": data["p"]}
    if data["p"] != "-1":
        perm["FromPort"], perm["ToPort"] = data["f"], data["t"]
    extra = {"Description": data["d"]} if data.get("d") else {}
    if data.get("c4"):
        perm["IpRanges"] = [dict({"CidrIp": data["c4"]}, **extra)]
    if data.get("c6"):
        perm["Ipv6Ranges"] = [dict({"CidrIpv6": data["c6"]}, **extra)]
    return data["i"], perm


def instance_groups(instance, interface_tags, decode_isolation_record):
    """The security groups that face the network for the instance: each ENI's recorded original groups when the
    instance is isolated (ec2_isolation's record on the ENI), else its current ones. Returns (groups, isolated)."""
    groups, isolated = [], False
    for nic in instance.get("NetworkInterfaces") or []:
        recorded = decode_isolation_record(interface_tags.get(nic["NetworkInterfaceId"]) or {})
        if recorded:
            isolated = True
            current = recorded
        else:
            current = [g["GroupId"] for g in nic.get("Groups") or []]
        groups.extend(g for g in current if g not in groups)
    return groups, isolated


# -- AWS ----------------------------------------------------------------------------------------


def describe_rules(ec2, group_ids):
    """[rule] of the groups, DescribeSecurityGroupRules' shape."""
    return describe_by_filter(ec2, "DescribeSecurityGroupRules", "SecurityGroupRules", "group-id", group_ids)


def describe_interface_tags(ec2, interface_ids):
    """{ENI id: {tag: value}}."""
    return {nic["NetworkInterfaceId"]: tag_dict(nic.get("TagSet"))
            for nic in describe_by_ids(ec2, "DescribeNetworkInterfaces", "NetworkInterfaces", "NetworkInterfaceIds", interface_ids)}


def describe_group_tags(ec2, group_ids):
    """{group id: {tag: value}}."""
    return {group["GroupId"]: tag_dict(group.get("Tags"))
            for group in describe_by_ids(ec2, "DescribeSecurityGroups", "SecurityGroups", "GroupIds", group_ids)}


def fetch_findings(guardduty, instance_ids, include_archived=False):
    """GetFindings' findings about the instances, from this region's detector ([] when there is none), read through
    the GuardDuty layer (guardduty.py); a failure raises AWS's own error."""
    criterion = {"resource.instanceDetails.instanceId": {"Eq": list(instance_ids)}}
    if not include_archived:
        criterion["service.archived"] = {"Eq": ["false"]}
    try:
        detectors = gd.list_detector_ids(guardduty)
        if not detectors:
            return []
        return gd.get_findings(guardduty, detectors[0], gd.list_finding_ids(guardduty, detectors[0], {"Criterion": criterion}))
    except gd.GuardDutyError as exc:
        raise (exc.cause or exc) from None


def ec2_call(ec2, action, params):
    return aws_calls.call(ec2, action, **params)
