# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""GuardDuty findings as plain data: which findings to ask for, which to keep, and the hosts they describe.

Pure functions over botocore-shaped GetFindings results; no AWS calls here. The inventory plugin and
the finding modules share the same filter vocabulary:

  min_severity      float, findings below it are ignored
  finding_types     patterns a finding's type must match (one of); a plain string is a prefix, a string
                    with * ? or [ is a glob: "Backdoor", "Backdoor:EC2/*", "*SSHBruteForce"
  exclude_finding_types  patterns of types to ignore (wins over finding_types)
  updated_since     only findings updated at or after: a duration ("24h", "30m", "7d", "2w", "3600")
                    or an ISO 8601 timestamp
  archived          "exclude" or False (default): active findings only; "only" or True: archived only;
                    "include" or None: both
  tags              {key: value or [values]} the instance must carry (values may be globs)
"""

import datetime
import fnmatch
import re

from ansible_collections.cloudsec.guardduty.plugins.module_utils.arns import role_arn as arn_of_role

# ResourceType of the findings that can name an instance: "Instance", and the EC2 instance-credential
# findings (UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.*) whose resource is "AccessKey".
INSTANCE_RESOURCE_TYPES = ["Instance", "AccessKey"]

SEVERITY_HIGH = 7.0
SEVERITY_MEDIUM = 4.0
SEVERITY_BANDS = ((0, 4), (4, 7), (7, None))  # listed side by side: low, medium, high
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
GLOB_CHARS = re.compile(r"[*?\[]")
ARCHIVED_CHOICES = {"exclude": False, "only": True, "include": None}


class FilterError(ValueError):
    """A filter value that cannot be understood; the message names the option."""


# -- the filter vocabulary ------------------------------------------------------------------------


def parse_updated_since(value, now=None):
    """Epoch milliseconds for `updated_since`, or None. `now` is epoch seconds (default: the clock)."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value)
        match = DURATION.match(text)
        if match:
            seconds = float(match.group(1)) * DURATION_UNITS[match.group(2)]
        else:
            try:
                stamp = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise FilterError(f"updated_since: {text!r} is neither a duration (24h, 30m, 7d, 2w, 3600) "
                                  "nor an ISO 8601 timestamp") from None
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=datetime.timezone.utc)
            return int(stamp.timestamp() * 1000)
    now = datetime.datetime.now(datetime.timezone.utc).timestamp() if now is None else now
    return int((now - seconds) * 1000)


# AWS region codes: us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1, eu-isoe-west-1, eusc-de-east-1 ...
# (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html). A misspelt one
# (eu-west1) is refused by name before any call, not left to become an endpoint error and a lost region.
REGION_NAME = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$")


def check_region_names(regions):
    for region in regions:
        if not isinstance(region, str) or not REGION_NAME.match(region):
            raise FilterError(f"regions: {region!r} is not an AWS region name (like us-east-1 or eu-west-1)")


def normalize_selection(min_severity=None, finding_types=None, exclude_finding_types=None, updated_since=None,
                        archived=False, tags=None, now=None):
    """The filter options as one plain dict, validated, with `updated_since` resolved to epoch ms."""
    if min_severity not in (None, ""):
        try:
            min_severity = float(min_severity)
        except (TypeError, ValueError):
            raise FilterError(f"min_severity: {min_severity!r} is not a number") from None
    else:
        min_severity = None
    norm_tags = {}
    for key, values in (tags or {}).items():
        if values is None:
            values = ["*"]
        elif not isinstance(values, (list, tuple)):
            values = [values]
        norm_tags[str(key)] = [str(v) for v in values]
    archived = ARCHIVED_CHOICES.get(archived, archived) if isinstance(archived, str) else archived
    if archived not in (True, False, None):
        raise FilterError(f"archived: {archived!r} is not one of {', '.join(ARCHIVED_CHOICES)}")
    return {
        "min_severity": min_severity,
        "finding_types": [str(p) for p in finding_types or []],
        "exclude_finding_types": [str(p) for p in exclude_finding_types or []],
        "updated_since": parse_updated_since(updated_since, now),
        "archived": archived,
        "tags": norm_tags,
    }


def finding_criteria(selection):
    """The ListFindings FindingCriteria that narrows the listing server-side.

    Only what GuardDuty can express exactly goes here (type globs and instance tags cannot: a tag key and
    value criterion may match two different tags); `finding_selected` checks everything again.
    """
    criterion = {"resource.resourceType": {"Equals": list(INSTANCE_RESOURCE_TYPES)}}
    if selection.get("archived") is not None:
        criterion["service.archived"] = {"Equals": ["true" if selection["archived"] else "false"]}
    if selection.get("min_severity") is not None:
        # GreaterThanOrEqual is a Long: round down, the exact bound is applied client-side.
        criterion["severity"] = {"GreaterThanOrEqual": int(selection["min_severity"])}
    if selection.get("updated_since") is not None:
        criterion["updatedAt"] = {"GreaterThanOrEqual": int(selection["updated_since"])}
    return {"Criterion": criterion}


def listing_criteria(selection):
    """[FindingCriteria]: `finding_criteria` split by severity band, above min_severity.

    ListFindings pages follow each other (each needs the previous NextToken); separate bands are
    separate listings, which run side by side. Each finding is in exactly one band.
    """
    base = finding_criteria(selection)["Criterion"]
    floor = base.get("severity", {}).get("GreaterThanOrEqual")
    out = []
    for low, high in SEVERITY_BANDS:
        if floor is not None and high is not None and high <= floor:
            continue
        condition = {}
        low = max(low, floor or 0)
        if low:
            condition["GreaterThanOrEqual"] = low
        if high is not None:
            condition["LessThan"] = high
        out.append({"Criterion": dict(base, severity=condition)})
    return out


def type_matches(finding_type, pattern):
    if GLOB_CHARS.search(pattern):
        return fnmatch.fnmatchcase(finding_type, pattern)
    return finding_type.startswith(pattern)


def _tags_match(tags, wanted):
    for key, values in wanted.items():
        if key not in tags:
            return False
        if not any(fnmatch.fnmatchcase(tags[key], v) for v in values):
            return False
    return True


def finding_instance_id(finding):
    """The EC2 instance a finding is about, or None (S3, IAM, EKS... findings)."""
    details = (finding.get("Resource") or {}).get("InstanceDetails") or {}
    return details.get("InstanceId") or None


def finding_selected(finding, selection):
    """(True, None) to keep the finding, else (False, reason)."""
    if not finding_instance_id(finding):
        return False, "not an EC2 instance finding"
    service = finding.get("Service") or {}
    archived = bool(service.get("Archived"))
    if selection.get("archived") is not None and archived != bool(selection["archived"]):
        return False, "archived" if archived else "not archived"
    if selection.get("min_severity") is not None and float(finding.get("Severity") or 0) < selection["min_severity"]:
        return False, "below min_severity"
    ftype = finding.get("Type") or ""
    if selection.get("finding_types") and not any(type_matches(ftype, p) for p in selection["finding_types"]):
        return False, "type not in finding_types"
    if any(type_matches(ftype, p) for p in selection.get("exclude_finding_types") or []):
        return False, "type in exclude_finding_types"
    if selection.get("updated_since") is not None:
        updated = timestamp_ms(finding.get("UpdatedAt"))
        if updated is not None and updated < selection["updated_since"]:
            return False, "updated before updated_since"
    if selection.get("tags"):
        tags = tag_dict(finding["Resource"]["InstanceDetails"].get("Tags"))
        if not _tags_match(tags, selection["tags"]):
            return False, "instance tags do not match"
    return True, None


# -- findings -> hosts --------------------------------------------------------------------------


def timestamp_ms(value):
    """GuardDuty timestamps are ISO 8601 strings ("2024-05-01T10:00:00.000Z"); epoch ms, or None."""
    if not value:
        return None
    if isinstance(value, datetime.datetime):
        stamp = value
    else:
        try:
            stamp = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return int(stamp.timestamp() * 1000)


def tag_dict(tags):
    return {t.get("Key"): t.get("Value", "") for t in tags or [] if t.get("Key") is not None}


def severity_label(severity):
    severity = float(severity or 0)
    if severity >= SEVERITY_HIGH:
        return "high"
    if severity >= SEVERITY_MEDIUM:
        return "medium"
    return "low"


def type_family(finding_type):
    """The threat purpose of a finding type: "Backdoor" for "Backdoor:EC2/C&CActivity.B"."""
    return (finding_type or "").split(":", 1)[0] or "Unknown"


def group_token(text):
    """A safe, lower-case group-name fragment: CryptoCurrency -> crypto_currency, us-east-1 -> us_east_1."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(text))
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


def _action_details(action):
    """Remote IPs, local ports, remote ports, domains and the API of one finding's action."""
    out = {"action_type": action.get("ActionType"), "remote_ips": [], "local_ports": [], "remote_ports": [],
           "domains": [], "direction": None, "protocol": None, "api": None}

    def remote(details):
        details = details or {}
        for key in ("IpAddressV4", "IpAddressV6"):
            if details.get(key) and details[key] not in out["remote_ips"]:
                out["remote_ips"].append(details[key])

    def port(bucket, details):
        value = (details or {}).get("Port")
        if value is not None and value not in out[bucket]:
            out[bucket].append(value)

    net = action.get("NetworkConnectionAction")
    if net:
        remote(net.get("RemoteIpDetails"))
        port("local_ports", net.get("LocalPortDetails"))
        port("remote_ports", net.get("RemotePortDetails"))
        out["direction"] = net.get("ConnectionDirection")
        out["protocol"] = net.get("Protocol")
    probe = action.get("PortProbeAction")
    if probe:
        for detail in probe.get("PortProbeDetails") or []:
            remote(detail.get("RemoteIpDetails"))
            port("local_ports", detail.get("LocalPortDetails"))
    dns = action.get("DnsRequestAction")
    if dns:
        if dns.get("Domain"):
            out["domains"].append(dns["Domain"])
        out["protocol"] = dns.get("Protocol")
    api = action.get("AwsApiCallAction")
    if api:
        remote(api.get("RemoteIpDetails"))
        out["api"] = api.get("Api")
    return out


def summarize_finding(finding):
    """What a responder needs from one finding, snake_case; action details only when the action has them.

    Kept small on purpose: every host carries its findings, and an inventory of thousands of hosts is
    copied and serialized by Ansible several times (the finding's ARN is arn:aws:guardduty:REGION:ACCOUNT:
    detector/DETECTOR/finding/ID; its description is in the console and in GetFindings).
    """
    service = finding.get("Service") or {}
    summary = {
        "id": finding.get("Id"),
        "type": finding.get("Type"),
        "family": type_family(finding.get("Type")),
        "severity": float(finding.get("Severity") or 0),
        "title": finding.get("Title"),
        "updated_at": finding.get("UpdatedAt"),
        "first_seen": service.get("EventFirstSeen"),
        "last_seen": service.get("EventLastSeen"),
        "archived": bool(service.get("Archived")),
        "detector_id": service.get("DetectorId"),
    }
    details = _action_details(service.get("Action") or {})
    summary["remote_ips"] = details.pop("remote_ips")
    summary["local_ports"] = details.pop("local_ports")
    summary.update({k: v for k, v in details.items() if v})
    return summary


def instance_from_finding(finding):
    """The instance as the finding saw it, snake_case (GuardDuty's InstanceDetails)."""
    details = finding["Resource"]["InstanceDetails"]
    enis = []
    for nic in details.get("NetworkInterfaces") or []:
        enis.append({
            "network_interface_id": nic.get("NetworkInterfaceId"),
            "vpc_id": nic.get("VpcId"),
            "subnet_id": nic.get("SubnetId"),
            "private_ip_address": nic.get("PrivateIpAddress"),
            "private_ip_addresses": [p.get("PrivateIpAddress") for p in nic.get("PrivateIpAddresses") or []
                                     if p.get("PrivateIpAddress")],
            "private_dns_name": nic.get("PrivateDnsName"),
            "public_ip": nic.get("PublicIp"),
            "public_dns_name": nic.get("PublicDnsName"),
            "ipv6_addresses": list(nic.get("Ipv6Addresses") or []),
            "security_groups": [{"group_id": g.get("GroupId"), "group_name": g.get("GroupName")}
                                for g in nic.get("SecurityGroups") or []],
        })
    profile = details.get("IamInstanceProfile") or {}
    return {
        "instance_id": details["InstanceId"],
        "account_id": finding.get("AccountId"),
        "region": finding.get("Region"),
        "availability_zone": details.get("AvailabilityZone"),
        "instance_type": details.get("InstanceType"),
        "instance_state": details.get("InstanceState"),
        "launch_time": details.get("LaunchTime"),
        "platform": details.get("Platform"),
        "image_id": details.get("ImageId"),
        "image_description": details.get("ImageDescription"),
        "iam_instance_profile": {"arn": profile.get("Arn"), "id": profile.get("Id")} if profile else None,
        "tags": tag_dict(details.get("Tags")),
        "network_interfaces": enis,
    }


def instance_from_ec2(instance, account_id, region):
    """The same shape from an EC2 DescribeInstances instance: the instance as it is now."""
    enis = []
    for nic in sorted(instance.get("NetworkInterfaces") or [], key=lambda n: (n.get("Attachment") or {}).get("DeviceIndex", 0)):
        association = nic.get("Association") or {}
        enis.append({
            "network_interface_id": nic.get("NetworkInterfaceId"),
            "vpc_id": nic.get("VpcId"),
            "subnet_id": nic.get("SubnetId"),
            "private_ip_address": nic.get("PrivateIpAddress"),
            "private_ip_addresses": [p.get("PrivateIpAddress") for p in nic.get("PrivateIpAddresses") or []
                                     if p.get("PrivateIpAddress")],
            "private_dns_name": nic.get("PrivateDnsName"),
            "public_ip": association.get("PublicIp"),
            "public_dns_name": association.get("PublicDnsName"),
            "ipv6_addresses": [a.get("Ipv6Address") for a in nic.get("Ipv6Addresses") or [] if a.get("Ipv6Address")],
            "security_groups": [{"group_id": g.get("GroupId"), "group_name": g.get("GroupName")}
                                for g in nic.get("Groups") or []],
        })
    profile = instance.get("IamInstanceProfile") or {}
    launch = instance.get("LaunchTime")
    return {
        "instance_id": instance["InstanceId"],
        "account_id": account_id,
        "region": region,
        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "instance_type": instance.get("InstanceType"),
        "instance_state": (instance.get("State") or {}).get("Name"),
        "launch_time": launch.isoformat() if isinstance(launch, datetime.datetime) else launch,
        "platform": instance.get("Platform") or instance.get("PlatformDetails"),
        "image_id": instance.get("ImageId"),
        "image_description": None,
        "iam_instance_profile": {"arn": profile.get("Arn"), "id": profile.get("Id")} if profile else None,
        "tags": tag_dict(instance.get("Tags")),
        "network_interfaces": enis,
    }


def responder_role_arn(template, account_id, partition):
    """The role later tasks assume to act in the host's account; None when no template is set.

    `partition` fills {partition}: the caller's, from GetCallerIdentity's ARN (arns.py).
    """
    return arn_of_role(template, account_id, partition)


def build_hosts(findings, selection):
    """({(account, region, instance_id): host}, {reason: count} for what was ignored).

    A host is the instance (from its most recently updated finding) plus every selected finding on it,
    most severe first; duplicates (the same finding read through two accounts) count once.
    """
    hosts, ignored, seen = {}, {}, set()
    for finding in findings:
        if finding.get("Id") in seen:
            continue
        seen.add(finding.get("Id"))
        keep, reason = finding_selected(finding, selection)
        if not keep:
            ignored[reason] = ignored.get(reason, 0) + 1
            continue
        instance = instance_from_finding(finding)
        key = (instance["account_id"], instance["region"], instance["instance_id"])
        host = hosts.get(key)
        updated = timestamp_ms(finding.get("UpdatedAt")) or 0
        if host is None:
            host = hosts[key] = {"instance": instance, "findings": [], "_updated": updated}
        elif updated > host["_updated"]:
            host["instance"], host["_updated"] = instance, updated
        host["findings"].append(summarize_finding(finding))
    for host in hosts.values():
        del host["_updated"]
        host["findings"].sort(key=lambda f: (-f["severity"], -(timestamp_ms(f["updated_at"]) or 0), f["id"] or ""))
        host.update(summarize_host(host["findings"]))
    return hosts, ignored


def summarize_host(findings):
    """Highest severity, its label, the finding types and families, first/last seen, remote IPs and local ports."""
    severity = max((f["severity"] for f in findings), default=0.0)

    def union(key):
        out = []
        for f in findings:
            for value in f.get(key) or []:
                if value not in out:
                    out.append(value)
        return out

    first = [f["first_seen"] for f in findings if f.get("first_seen")]
    detector = next((f["detector_id"] for f in findings if f.get("detector_id")), None)
    for f in findings:
        f.pop("detector_id", None)  # the same for every finding of a host: kept once, at the host
    last = [f["last_seen"] for f in findings if f.get("last_seen")]
    return {
        "max_severity": severity,
        "severity_label": severity_label(severity),
        "finding_count": len(findings),
        "finding_types": sorted({f["type"] for f in findings if f.get("type")}),
        "finding_families": sorted({f["family"] for f in findings}),
        "first_seen": min(first, key=lambda v: timestamp_ms(v) or 0) if first else None,
        "last_seen": max(last, key=lambda v: timestamp_ms(v) or 0) if last else None,
        "remote_ips": sorted(union("remote_ips")),
        "local_ports": sorted(union("local_ports")),
        "detector_id": detector,
    }


def host_groups(host):
    """The plugin's built-in groups for one host."""
    instance = host["instance"]
    groups = ["compromised", f"severity_{host['severity_label']}"]
    groups += [f"finding_{group_token(family)}" for family in host["finding_families"]]
    groups.append(f"account_{group_token(instance['account_id'])}")
    groups.append(f"region_{group_token(instance['region'])}")
    if host.get("conversion_stuck_enis"):
        groups.append(CONVERSION_STUCK_GROUP)
    return groups


CONVERSION_STUCK_GROUP = "guardduty_conversion_stuck"


def enis_on_groups(instance, group_ids):
    """The instance's network interfaces that have one of `group_ids` among their groups (sorted ids)."""
    return sorted(nic["network_interface_id"] for nic in instance["network_interfaces"]
                  if any(g["group_id"] in group_ids for g in nic["security_groups"]))


def host_variables(host, partition, prefix="guardduty_", role_template=None):
    """Host vars: everything under `prefix`, plus the plain keys later roles use to act on the host."""
    instance = host["instance"]
    role_arn = responder_role_arn(role_template, instance["account_id"], partition)
    enis = instance["network_interfaces"]
    security_group_ids = []
    for nic in enis:
        for group in nic["security_groups"]:
            if group["group_id"] and group["group_id"] not in security_group_ids:
                security_group_ids.append(group["group_id"])
    primary = enis[0] if enis else {}
    prefixed = {
        "instance_id": instance["instance_id"],
        "account_id": instance["account_id"],
        "region": instance["region"],
        "availability_zone": instance["availability_zone"],
        "vpc_id": primary.get("vpc_id"),
        "subnet_id": primary.get("subnet_id"),
        "private_ip_address": primary.get("private_ip_address"),
        "public_ip": primary.get("public_ip"),
        "network_interfaces": enis,
        "security_group_ids": security_group_ids,
        "iam_instance_profile": instance["iam_instance_profile"],
        "tags": instance["tags"],
        "image_id": instance["image_id"],
        "image_description": instance["image_description"],
        "instance_type": instance["instance_type"],
        "instance_state": instance["instance_state"],
        "launch_time": instance["launch_time"],
        "platform": instance["platform"],
        "responder_role_arn": role_arn,
        "findings": host["findings"],
        "finding_ids": [f["id"] for f in host["findings"]],
    }
    for key in ("detector_id", "max_severity", "severity_label", "finding_count", "finding_types", "finding_families",
                "first_seen", "last_seen", "remote_ips", "local_ports"):
        prefixed[key] = host[key]
    prefixed["conversion_stuck_enis"] = host.get("conversion_stuck_enis") or []
    hostvars = {f"{prefix}{k}": v for k, v in prefixed.items()}
    hostvars.update({
        "instance_id": instance["instance_id"],
        "account_id": instance["account_id"],
        "region": instance["region"],
        "responder_role_arn": role_arn,
    })
    return hostvars


HOSTNAME_SOURCES = ("instance-id", "private-ip-address", "private-dns-name", "public-ip-address", "public-dns-name")


def preferred_hostname(instance, preferences):
    """The first of `preferences` with a value: instance-id, tag:KEY, private-ip-address, private-dns-name,
    public-ip-address, public-dns-name. The instance id when none has one."""
    enis = instance.get("network_interfaces") or [{}]
    for preference in preferences or []:
        if preference.startswith("tag:"):
            value = instance["tags"].get(preference[4:])
        elif preference == "instance-id":
            value = instance["instance_id"]
        elif preference == "private-ip-address":
            value = enis[0].get("private_ip_address")
        elif preference == "private-dns-name":
            value = enis[0].get("private_dns_name")
        elif preference == "public-ip-address":
            value = enis[0].get("public_ip")
        elif preference == "public-dns-name":
            value = enis[0].get("public_dns_name")
        else:
            raise FilterError(f"hostnames: {preference!r} is not one of {', '.join(HOSTNAME_SOURCES)} or tag:KEY")
        if value:
            return str(value)
    return instance["instance_id"]


def assign_hostnames(hosts, preferences):
    """[(hostname, host)] in a stable order; a name already taken falls back to the instance id."""
    named, taken, clashes = [], set(), []
    for key in sorted(hosts):
        host = hosts[key]
        name = preferred_hostname(host["instance"], preferences)
        if name in taken:
            clashes.append((name, host["instance"]["instance_id"]))
            name = host["instance"]["instance_id"]
        taken.add(name)
        named.append((name, host))
    return named, clashes
