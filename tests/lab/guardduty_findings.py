"""GuardDuty findings as the lab builds and filters them: the shape boto3 returns for GetFindings.

Findings are built from a scenario's finding specs (see tests/lab/scenarios/demo.yaml) and from
moto's EC2 state at the time they are added, the way GuardDuty snapshots the resource it reports.
FindingCriteria are evaluated on the finding's wire form, because that is what their field
names (`resource.instanceDetails.instanceId`, `service.archived`, `updatedAt`...) refer to.
"""

import datetime
import hashlib
import re
import secrets

from tests.lab import guardduty_wire as wire

SCHEMA_VERSION = "2.0"

PORT_NAMES = {22: "SSH", 25: "SMTP", 53: "DNS", 80: "HTTP", 443: "HTTPS", 445: "SMB", 873: "RSYNC",
              3306: "MYSQL", 3389: "RDP", 5432: "POSTGRESQL", 8080: "HTTP"}

# remote addresses the demo uses (documentation ranges): a plausible place on the map for each
GEO = {"Unknown": ("Unknown", "Unknown", 0.0, 0.0)}
DEFAULT_GEO = ("Netherlands", "Amsterdam", 52.37, 4.89)

# type -> (title, description, feature name); {resource}, {remote_ip}, {domain}, {role}, {bucket},
# {threat}, {path}, {api}, {local_port} are filled in. Wording follows GuardDuty's finding texts.
FINDING_TYPES = {
    "UnauthorizedAccess:EC2/SSHBruteForce": (
        "{remote_ip} is performing SSH brute force attacks against {resource}.",
        "{remote_ip} is performing SSH brute force attacks against {resource}. Brute force attacks are used to gain "
        "unauthorized access to your instance by guessing the SSH password.",
        "FlowLogs"),
    "UnauthorizedAccess:EC2/RDPBruteForce": (
        "{remote_ip} is performing RDP brute force attacks against {resource}.",
        "{remote_ip} is performing RDP brute force attacks against {resource}. Brute force attacks are used to gain "
        "unauthorized access to your instance by guessing the RDP password.",
        "FlowLogs"),
    "Backdoor:EC2/C&CActivity.B": (
        "EC2 instance {resource} is communicating with a Command & Control server.",
        "EC2 instance {resource} is communicating with {remote_ip}, an IP address that is associated with a known "
        "Command & Control server.",
        "FlowLogs"),
    "Backdoor:EC2/C&CActivity.B!DNS": (
        "Command and Control server domain name queried by EC2 instance {resource}.",
        "EC2 instance {resource} is querying {domain}, a domain name associated with a known Command & Control server.",
        "DnsLogs"),
    "CryptoCurrency:EC2/BitcoinTool.B!DNS": (
        "Bitcoin-related domain name queried by EC2 instance {resource}.",
        "EC2 instance {resource} is querying {domain}, a domain name that is associated with Bitcoin-related "
        "activity.",
        "DnsLogs"),
    "CryptoCurrency:EC2/BitcoinTool.B": (
        "Bitcoin-related IP address contacted by EC2 instance {resource}.",
        "EC2 instance {resource} is communicating with {remote_ip}, an IP address that is associated with "
        "Bitcoin-related activity.",
        "FlowLogs"),
    "Trojan:EC2/DNSDataExfiltration": (
        "Data exfiltration through DNS queries from EC2 instance {resource}.",
        "EC2 instance {resource} is attempting to exfiltrate data by performing DNS queries to {domain}.",
        "DnsLogs"),
    "Recon:EC2/PortProbeUnprotectedPort": (
        "Unprotected port on EC2 instance {resource} is being probed.",
        "EC2 instance has an unprotected port {local_port} which is being probed by a known malicious host.",
        "FlowLogs"),
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS": (
        "Credentials for instance role {role} used from external IP address.",
        "Credentials created exclusively for an EC2 instance using instance role {role} have been used from "
        "external IP address {remote_ip}.",
        "CloudTrail"),
    "Policy:S3/BucketBlockPublicAccessDisabled": (
        "Amazon S3 Block Public Access was disabled for S3 bucket {bucket}.",
        "Amazon S3 Block Public Access was disabled for S3 bucket {bucket} by {user} calling {api}. If this "
        "behavior is not expected, it may indicate a configuration mistake or that your credentials are "
        "compromised.",
        "CloudTrail"),
    "Execution:EC2/MaliciousFile": (
        "Malicious file detected on EC2 instance {resource}.",
        "A malicious file {threat} was detected at {path} on an EBS volume attached to EC2 instance {resource}.",
        "EbsMalwareProtection"),
}

DEFAULT_TYPES_FOR_SAMPLES = ["UnauthorizedAccess:EC2/SSHBruteForce", "Backdoor:EC2/C&CActivity.B",
                             "CryptoCurrency:EC2/BitcoinTool.B!DNS", "Execution:EC2/MaliciousFile"]


# -- time --------------------------------------------------------------------------------------
def iso(epoch):
    """GuardDuty's finding timestamps: ISO 8601, milliseconds, Z."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_to_ms(text):
    moment = datetime.datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return int(moment.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def parse_ago(text):
    """'3h', '10m', '2d', '30s' or a number of seconds."""
    if text is None:
        return 0.0
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def stamp(epoch):
    """A timestamp member: whole seconds, so the wire's epoch number parses back to the same value."""
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)


def new_id():
    return secrets.token_hex(16)


# -- moto's EC2 state --------------------------------------------------------------------------
def ec2_backend(account, region):
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def instance_details(account, region, instance_id):
    """resource.instanceDetails, read from moto at the moment the finding is made."""
    backend = ec2_backend(account, region)
    inst = backend.get_instance(instance_id)
    details = {
        "AvailabilityZone": inst.placement.zone,
        "ImageId": inst.image_id,
        "InstanceId": inst.id,
        "InstanceState": inst.state,
        "InstanceType": inst.instance_type,
        "LaunchTime": iso(inst.launch_time.replace(tzinfo=datetime.timezone.utc).timestamp()),
        "NetworkInterfaces": [],
        "ProductCodes": [],
        "Tags": [{"Key": t["key"], "Value": t["value"]} for t in inst.get_tags()],
    }
    image = _image(backend, inst.image_id)
    if image is not None and getattr(image, "description", None):
        details["ImageDescription"] = image.description
    if getattr(inst, "platform", None):
        details["Platform"] = inst.platform
    association = backend.iam_instance_profile_associations.get(inst.id)
    if association is not None:
        profile = association.iam_instance_profile
        details["IamInstanceProfile"] = {"Arn": profile.arn, "Id": profile.id}
    for index in sorted(inst.nics):
        nic = inst.nics[index]
        private_ips = [a["PrivateIpAddress"] for a in (getattr(nic, "private_ip_addresses", None) or [])
                       if a.get("PrivateIpAddress")] or [nic.private_ip_address]
        region_dns = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        entry = {
            "Ipv6Addresses": list(nic.ipv6_addresses or []),
            "NetworkInterfaceId": nic.id,
            "PrivateDnsName": _dns(nic.private_ip_address, region_dns),
            "PrivateIpAddress": nic.private_ip_address,
            "PrivateIpAddresses": [{"PrivateDnsName": _dns(ip, region_dns), "PrivateIpAddress": ip}
                                   for ip in private_ips],
            "SecurityGroups": [{"GroupId": g.id, "GroupName": g.name} for g in nic.group_set],
            "SubnetId": nic.subnet.id,
            "VpcId": nic.subnet.vpc_id,
        }
        if nic.public_ip:
            entry["PublicIp"] = nic.public_ip
            entry["PublicDnsName"] = f"ec2-{nic.public_ip.replace('.', '-')}.compute-1.amazonaws.com"
        details["NetworkInterfaces"].append(entry)
    return details


def _dns(ip, suffix):
    return f"ip-{ip.replace('.', '-')}.{suffix}" if ip else ""


def _image(backend, image_id):
    try:
        images = backend.describe_images(ami_ids=[image_id])
    except Exception:  # an image moto no longer knows: the finding just lacks its description
        return None
    return images[0] if images else None


def instance_volumes(account, region, instance_id):
    """VolumeDetail for each EBS volume attached to the instance, by device name."""
    backend = ec2_backend(account, region)
    inst = backend.get_instance(instance_id)
    out = []
    root = getattr(inst, "root_device_name", None) or "/dev/xvda"
    for device, mapping in sorted(inst.block_device_mapping.items(), key=lambda item: (item[0] != root, item[0])):
        volume = backend.get_volume(mapping.volume_id)
        detail = {
            "VolumeArn": f"arn:aws:ec2:{region}:{account}:volume/{volume.id}",
            "VolumeType": volume.volume_type,
            "DeviceName": device,
            "VolumeSizeInGB": int(volume.size),
            "EncryptionType": "CMK" if volume.kms_key_id else ("DEFAULT" if volume.encrypted else "UNENCRYPTED"),
        }
        if volume.kms_key_id:
            detail["KmsKeyArn"] = volume.kms_key_id
        out.append(detail)
    return out


def instance_tags(account, region, instance_id):
    inst = ec2_backend(account, region).get_instance(instance_id)
    return {t["key"]: t["value"] for t in inst.get_tags()}


# -- building findings -------------------------------------------------------------------------
def remote_ip_details(ip, country=None):
    country_name, city, lat, lon = GEO.get(country or "", DEFAULT_GEO if not country else (country, "Unknown", 0.0, 0.0))
    asn = str(64496 + int(hashlib.sha256(ip.encode()).hexdigest(), 16) % 15)  # a documentation ASN
    return {
        "City": {"CityName": city},
        "Country": {"CountryName": country_name},
        "GeoLocation": {"Lat": lat, "Lon": lon},
        "IpAddressV4": ip,
        "Organization": {"Asn": asn, "AsnOrg": "Example Hosting", "Isp": "Example Hosting", "Org": "Example Hosting"},
    }


def _port(number):
    number = int(number)
    return {"Port": number, "PortName": PORT_NAMES.get(number, "Unknown")}


def build_action(action, local_ip=None):
    """service.action from a spec's action: {type, direction, remote_ip, ports, domain, ...}."""
    kind = action.get("type", "NETWORK_CONNECTION")
    remote_ip = action.get("remote_ip")
    out = {"ActionType": kind}
    if kind == "NETWORK_CONNECTION":
        direction = action.get("direction", "INBOUND")
        local_port = int(action.get("local_port", 0))
        remote_port = int(action.get("remote_port", 40000 + local_port % 20000 if direction == "INBOUND" else 443))
        out["NetworkConnectionAction"] = {
            "Blocked": False,
            "ConnectionDirection": direction,
            "LocalPortDetails": _port(local_port),
            "Protocol": action.get("protocol", "TCP"),
            "LocalIpDetails": {"IpAddressV4": local_ip or ""},
            "RemoteIpDetails": remote_ip_details(remote_ip or "198.51.100.1", action.get("country")),
            "RemotePortDetails": _port(remote_port),
        }
    elif kind == "PORT_PROBE":
        out["PortProbeAction"] = {"Blocked": False, "PortProbeDetails": [{
            "LocalPortDetails": _port(action.get("local_port", 0)),
            "LocalIpDetails": {"IpAddressV4": local_ip or ""},
            "RemoteIpDetails": remote_ip_details(remote_ip or "198.51.100.1", action.get("country")),
        }]}
    elif kind == "DNS_REQUEST":
        domain = action.get("domain", "example.com")
        out["DnsRequestAction"] = {"Domain": domain, "Protocol": action.get("protocol", "UDP"), "Blocked": False,
                                   "DomainWithSuffix": ".".join(domain.split(".")[-2:])}
    elif kind == "AWS_API_CALL":
        call = {"Api": action.get("api", "GetCallerIdentity"), "CallerType": "Remote IP",
                "ServiceName": action.get("service_name", "sts.amazonaws.com"),
                "UserAgent": action.get("user_agent", "aws-cli/2.15.0 Python/3.11")}
        if remote_ip:
            call["RemoteIpDetails"] = remote_ip_details(remote_ip, action.get("country"))
        out["AwsApiCallAction"] = call
    else:
        raise ValueError(f"unknown finding action type {kind!r}")
    return out


def _resource_role(action):
    if action.get("type") == "NETWORK_CONNECTION" and action.get("direction", "INBOUND") == "INBOUND":
        return "TARGET"
    if action.get("type") == "PORT_PROBE":
        return "TARGET"
    return "ACTOR"


def _texts(finding_type, values):
    title, description, feature = FINDING_TYPES.get(finding_type, (
        "{type} activity involving {resource}.", "GuardDuty detected {type} activity involving {resource}.", None))
    fill = dict({"resource": "", "remote_ip": "", "domain": "", "role": "", "bucket": "", "threat": "",
                 "path": "", "api": "", "local_port": "", "user": "", "type": finding_type}, **values)
    return title.format(**fill), description.format(**fill), feature


def build_finding(account, region, detector_id, spec, now, instance=None, finding_id=None):
    """A finding (GetFindings' Finding shape, python form) from a scenario spec.

    `instance` is resource.instanceDetails when the finding is about an instance (already read
    from moto, or a sample's made-up one).
    """
    finding_type = spec["type"]
    finding_id = finding_id or new_id()
    action = spec.get("action") or {}
    updated = now - parse_ago(spec.get("updated_ago"))
    first_seen = min(now - parse_ago(spec.get("first_seen_ago")), updated) if spec.get("first_seen_ago") \
        else updated
    resource, values = _resource(account, region, spec, instance, action, now)
    values.setdefault("remote_ip", action.get("remote_ip", ""))
    values.setdefault("domain", action.get("domain", ""))
    values.setdefault("api", action.get("api", ""))
    values.setdefault("local_port", str(action.get("local_port", "")))
    values.setdefault("threat", spec.get("threat_name", ""))
    values.setdefault("path", spec.get("threat_path", ""))
    title, description, feature = _texts(finding_type, values)
    service = {
        "ServiceName": "guardduty",
        "DetectorId": detector_id,
        "Archived": bool(spec.get("archived", False)),
        "Count": int(spec.get("count", 1)),
        "EventFirstSeen": iso(first_seen),
        "EventLastSeen": iso(updated),
        "ResourceRole": _resource_role(action) if action else "TARGET",
    }
    if action:
        local_ip = None
        if instance and instance.get("NetworkInterfaces"):
            local_ip = instance["NetworkInterfaces"][0].get("PrivateIpAddress")
        service["Action"] = build_action(action, local_ip)
    if feature:
        service["FeatureName"] = feature
    if spec.get("sample"):
        service["AdditionalInfo"] = {"Value": '{"sample":true}', "Type": "default"}
    if spec.get("feedback"):
        service["UserFeedback"] = spec["feedback"]
    if spec.get("ebs_volume_scan_details"):
        service["EbsVolumeScanDetails"] = spec["ebs_volume_scan_details"]
    return {
        "AccountId": account,
        "Arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector_id}/finding/{finding_id}",
        "CreatedAt": iso(first_seen),
        "Description": description,
        "Id": finding_id,
        "Partition": "aws",
        "Region": region,
        "Resource": resource,
        "SchemaVersion": SCHEMA_VERSION,
        "Service": service,
        "Severity": float(spec.get("severity", 5.0)),
        "Title": title,
        "Type": finding_type,
        "UpdatedAt": iso(updated),
    }


def _resource(account, region, spec, instance, action, now):
    resource_type = spec.get("resource_type")
    values = {}
    resource = {}
    if instance is not None:
        resource["InstanceDetails"] = instance
        values["resource"] = instance["InstanceId"]
        profile = (instance.get("IamInstanceProfile") or {}).get("Arn", "")
        values["role"] = profile.rsplit("/", 1)[-1] if profile else ""
    if spec.get("resource_ebs_volumes"):
        resource["EbsVolumeDetails"] = spec["resource_ebs_volumes"]
    if resource_type == "S3Bucket" or (resource_type is None and spec.get("bucket")):
        bucket = spec["bucket"]
        resource["S3BucketDetails"] = [{
            "Arn": f"arn:aws:s3:::{bucket}",
            "Name": bucket,
            "Type": "Destination",
            "CreatedAt": stamp(now - 30 * 86400),
            "Owner": {"Id": hashlib.sha256(account.encode()).hexdigest()},
            "Tags": [],
            "DefaultServerSideEncryption": {"EncryptionType": "AES256"},
            "PublicAccess": {"EffectivePermission": "NOT_PUBLIC", "PermissionConfiguration": {
                "BucketLevelPermissions": {
                    "AccessControlList": {"AllowsPublicReadAccess": False, "AllowsPublicWriteAccess": False},
                    "BucketPolicy": {"AllowsPublicReadAccess": False, "AllowsPublicWriteAccess": False},
                    "BlockPublicAccess": {"IgnorePublicAcls": False, "RestrictPublicBuckets": False,
                                          "BlockPublicAcls": False, "BlockPublicPolicy": False}},
                "AccountLevelPermissions": {"BlockPublicAccess": {
                    "IgnorePublicAcls": False, "RestrictPublicBuckets": False, "BlockPublicAcls": False,
                    "BlockPublicPolicy": False}}}},
        }]
        user = spec.get("user", "admin")
        resource["AccessKeyDetails"] = _access_key(account, spec, user)
        resource["ResourceType"] = "S3Bucket"
        values.update(resource=bucket, bucket=bucket, user=user, api=action.get("api") or "PutBucketPublicAccessBlock")
        return resource, values
    credential_exfiltration = "InstanceCredentialExfiltration" in spec["type"]
    if resource_type == "AccessKey" or credential_exfiltration or (resource_type is None and spec.get("access_key")):
        if credential_exfiltration and instance is not None:
            role = values.get("role") or "instance-role"
            resource["AccessKeyDetails"] = {
                "AccessKeyId": spec.get("access_key") or _fake_key("ASIA", instance["InstanceId"]),
                "PrincipalId": f"{_fake_key('AROA', role)}:{instance['InstanceId']}",
                "UserName": role,
                "UserType": "AssumedRole",
            }
        else:
            resource["AccessKeyDetails"] = _access_key(account, spec, spec.get("user", "admin"))
            values["resource"] = resource["AccessKeyDetails"]["AccessKeyId"]
        resource["ResourceType"] = "AccessKey"
        return resource, values
    if instance is None:
        raise ValueError(f"finding {spec['type']!r} needs an instance_id, a bucket or an access_key")
    resource["ResourceType"] = "Instance"
    return resource, values


def _access_key(account, spec, user):
    key = spec.get("access_key") or _fake_key("AKIA", f"{account}/{user}")
    return {"AccessKeyId": key, "PrincipalId": _fake_key("AIDA", f"{account}/{user}"), "UserName": user,
            "UserType": "IAMUser"}


def _fake_key(prefix, seed):
    return prefix + hashlib.sha256(seed.encode()).hexdigest().upper()[:16]


def sample_instance(region):
    """The made-up instance GuardDuty's sample findings describe."""
    return {
        "AvailabilityZone": "generated-az-1a",
        "IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:example/instance/profile", "Id": "GeneratedFindingInstanceProfileId"},
        "ImageDescription": "GeneratedFindingInstanceImageDescription",
        "ImageId": "ami-99999999",
        "InstanceId": "i-99999999",
        "InstanceState": "running",
        "InstanceType": "m3.xlarge",
        "LaunchTime": "2016-08-02T02:05:06.000Z",
        "NetworkInterfaces": [{
            "Ipv6Addresses": [], "NetworkInterfaceId": "eni-abcdef00",
            "PrivateDnsName": "GeneratedFindingPrivateDnsName", "PrivateIpAddress": "10.0.0.1",
            "PrivateIpAddresses": [{"PrivateDnsName": "GeneratedFindingPrivateName", "PrivateIpAddress": "10.0.0.1"}],
            "PublicDnsName": "GeneratedFindingPublicDNSName", "PublicIp": "198.51.100.0",
            "SecurityGroups": [{"GroupId": "GeneratedFindingSecurityId", "GroupName": "GeneratedFindingSecurityGroupName"}],
            "SubnetId": "GeneratedFindingSubnetId", "VpcId": "GeneratedFindingVPCId"}],
        "ProductCodes": [],
        "Tags": [{"Key": "GeneratedFindingInstaceTag1", "Value": "GeneratedFindingInstaceValue1"}],
    }


def sample_spec(finding_type):
    spec = {"type": finding_type, "severity": 5.0, "sample": True}
    if ":S3/" in finding_type:
        spec.update(resource_type="S3Bucket", bucket="bucketName")
    elif ":IAMUser/" in finding_type and "InstanceCredentialExfiltration" not in finding_type:
        spec.update(resource_type="AccessKey", user="GeneratedFindingUserName")
        spec["action"] = {"type": "AWS_API_CALL", "remote_ip": "198.51.100.0"}
    elif "!DNS" in finding_type or "DNS" in finding_type.split("/")[-1]:
        spec["action"] = {"type": "DNS_REQUEST", "domain": "GeneratedFindingDomainName", "protocol": "UDP"}
    elif "MaliciousFile" in finding_type:
        pass
    else:
        spec["action"] = {"type": "NETWORK_CONNECTION", "direction": "INBOUND", "remote_ip": "198.51.100.0",
                          "local_port": 22, "protocol": "TCP"}
    return spec


# -- criteria ----------------------------------------------------------------------------------
DATE_FIELDS = {"updatedAt", "createdAt", "service.eventFirstSeen", "service.eventLastSeen"}
OPERATORS = ("Eq", "Neq", "Gt", "Gte", "Lt", "Lte", "Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqual",
             "LessThan", "LessThanOrEqual", "Matches", "NotMatches")


def field_values(wire_finding, field):
    """Every value at a dotted wire path, through lists (e.g. every ENI's publicIp)."""
    values = [wire_finding]
    for part in field.split("."):
        nxt = []
        for value in values:
            if isinstance(value, list):
                value = [v.get(part) for v in value if isinstance(v, dict)]
                nxt.extend(v for v in value if v is not None)
            elif isinstance(value, dict) and value.get(part) is not None:
                nxt.append(value[part])
        values = []
        for value in nxt:
            values.extend(value if isinstance(value, list) and not (value and isinstance(value[0], dict)) else [value])
    if field in DATE_FIELDS:
        return [iso_to_ms(v) for v in values if isinstance(v, str)]
    return values


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return [str(value), str(int(value))]
    return str(value)


def _equal(value, wanted):
    text = _as_text(value)
    texts = text if isinstance(text, list) else [text]
    if wanted in texts:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(wanted) == float(value)
        except ValueError:
            return False
    return False


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def condition_matches(values, condition):
    """One field's Condition (python form) against the finding's values for that field."""
    for op, wanted in condition.items():
        if wanted is None:
            continue
        if op in ("Eq", "Equals"):
            if not any(_equal(v, w) for v in values for w in wanted):
                return False
        elif op in ("Neq", "NotEquals"):
            if any(_equal(v, w) for v in values for w in wanted):
                return False
        elif op in ("Matches", "NotMatches"):
            hit = any(_glob(str(v), w) for v in values for w in wanted)
            if hit != (op == "Matches"):
                return False
        else:
            numbers = [n for n in (_number(v) for v in values) if n is not None]
            test = {"Gt": lambda n: n > wanted, "GreaterThan": lambda n: n > wanted,
                    "Gte": lambda n: n >= wanted, "GreaterThanOrEqual": lambda n: n >= wanted,
                    "Lt": lambda n: n < wanted, "LessThan": lambda n: n < wanted,
                    "Lte": lambda n: n <= wanted, "LessThanOrEqual": lambda n: n <= wanted}[op]
            if not any(test(n) for n in numbers):
                return False
    return True


def _glob(text, pattern):
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, text) is not None


def matches(wire_finding, criterion):
    """FindingCriteria.Criterion: every field's condition must hold."""
    return all(condition_matches(field_values(wire_finding, field), condition or {})
               for field, condition in (criterion or {}).items())


def sort_key(wire_finding, attribute):
    values = field_values(wire_finding, attribute)
    if not values:
        return (1, "")
    value = values[0]
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value)
    return (0, str(value))


def to_wire(finding):
    return wire.to_wire(wire.shape("Finding"), finding)
