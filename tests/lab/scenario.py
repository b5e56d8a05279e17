"""Scenarios: accounts x regions x VPCs x instances, with the GuardDuty findings on them.

A scenario is YAML in tests/lab/scenarios/NAME.yaml, or generated (`generated:N[:ACCOUNTS[:REGIONS]]`,
see generator.py). It is loaded through the lab's own HTTP endpoint with boto3, so every resource is
created by the same API calls, parsed by the same botocore, as on AWS.

The returned map gives every created id by the scenario's names; `instances` indexes instances by
name across accounts and regions.
"""

import copy
import functools
import ipaddress
import itertools
import pathlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import yaml
from botocore.config import Config

SCENARIO_DIR = pathlib.Path(__file__).parent / "scenarios"
LAB_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
DEFAULT_ACCOUNT = "123456789012"
RESPONDER_ROLE = "GuardDutyResponder"
AMI = "ami-12c6146b"  # one of moto's built-in images


def read(name, options=None):
    if name.startswith("generated"):
        from tests.lab import generator

        parts = name.split(":")[1:]
        return generator.generate(*[int(p) for p in parts], **(options or {}))
    path = SCENARIO_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown scenario {name!r}: no {path}")
    return copy.deepcopy(_parse(str(path)))


@functools.lru_cache(maxsize=16)
def _parse(path):
    return yaml.load(pathlib.Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class Sessions:
    """boto3 sessions for each lab account: the default credentials, or a role assumed into it."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self._creds = {}
        self.config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=32)

    def client(self, service, account, region):
        creds = self._credentials(account)
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint, config=self.config, **creds)

    def _credentials(self, account):
        if account == DEFAULT_ACCOUNT:
            return LAB_CREDENTIALS
        if account not in self._creds:
            sts = boto3.client("sts", region_name="us-east-1", endpoint_url=self.endpoint, **LAB_CREDENTIALS)
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                                RoleSessionName="lab-scenario")["Credentials"]
            self._creds[account] = {
                "aws_access_key_id": c["AccessKeyId"],
                "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"],
            }
        return self._creds[account]


def load(lab, name, options=None):
    spec = read(name, options)
    sessions = Sessions(lab.endpoint)
    resources = {"accounts": {}, "instances": {}, "administrator": str(spec.get("administrator", DEFAULT_ACCOUNT)),
                 "responder_role": RESPONDER_ROLE}
    jobs = []
    for account, account_spec in (spec.get("accounts") or {}).items():
        account = str(account)
        _ensure_account(sessions, account)
        for region, region_spec in ((account_spec or {}).get("regions") or {}).items():
            jobs.append((account, region, region_spec or {}))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda j: _load_region(lab, sessions, *j), jobs))
    for (account, region, _), region_resources in zip(jobs, results):
        resources["accounts"].setdefault(account, {"regions": {}})["regions"][region] = region_resources
        for inst_name, inst in region_resources["instances"].items():
            resources["instances"][inst_name] = dict(inst, account=account, region=region)
    members = [a for a in resources["accounts"] if a != resources["administrator"]]
    lab.guardduty.set_administrator(resources["administrator"], members)
    return resources


def _ensure_account(sessions, account):
    iam = sessions.client("iam", account, "us-east-1")
    trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::'
             + DEFAULT_ACCOUNT + ':root"},"Action":"sts:AssumeRole"}]}')
    iam.create_role(RoleName=RESPONDER_ROLE, AssumeRolePolicyDocument=trust)


def _load_region(lab, sessions, account, region, spec):
    ec2 = sessions.client("ec2", account, region)
    out = {"detector_id": None, "vpcs": {}, "subnets": {}, "security_groups": {}, "instances": {},
           "target_groups": {}, "load_balancers": {}, "autoscaling_groups": {}, "instance_profiles": {}}
    if spec.get("guardduty", True):
        gd = sessions.client("guardduty", account, region)
        out["detector_id"] = gd.create_detector(Enable=True)["DetectorId"]
    if spec.get("securityhub", spec.get("guardduty", True)):
        # Security Hub with GuardDuty, as most organizations run them: the lab imports the GuardDuty
        # findings as ASFF (tests/lab/securityhub.py); `securityhub: false` leaves it off
        sessions.client("securityhub", account, region).enable_security_hub(EnableDefaultStandards=False)
    out["securityhub"] = bool(spec.get("securityhub", spec.get("guardduty", True)))
    for vpc_name, vpc_spec in (spec.get("vpcs") or {}).items():
        _create_vpc(ec2, out, vpc_name, vpc_spec or {}, region)
    for profile_name in spec.get("instance_profiles") or []:
        out["instance_profiles"][profile_name] = _create_instance_profile(sessions.client("iam", account, region),
                                                                           profile_name)
    elbv2 = sessions.client("elbv2", account, region)
    for tg_name, tg_spec in (spec.get("target_groups") or {}).items():
        tg = elbv2.create_target_group(Name=tg_name, Protocol="HTTP", Port=int(tg_spec.get("port", 80)),
                                       VpcId=out["vpcs"][tg_spec["vpc"]], TargetType="instance")
        out["target_groups"][tg_name] = tg["TargetGroups"][0]["TargetGroupArn"]
    elb = sessions.client("elb", account, region)
    for lb_name, lb_spec in (spec.get("load_balancers") or {}).items():
        elb.create_load_balancer(LoadBalancerName=lb_name,
                                 Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
                                 Subnets=[out["subnets"][lb_spec["subnet"]]])
        out["load_balancers"][lb_name] = lb_name
    asg = sessions.client("autoscaling", account, region)
    for asg_name, asg_spec in (spec.get("autoscaling_groups") or {}).items():
        lt_name = f"{asg_name}-template"
        ec2.create_launch_template(LaunchTemplateName=lt_name,
                                   LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"})
        asg.create_auto_scaling_group(AutoScalingGroupName=asg_name, MinSize=0, MaxSize=10, DesiredCapacity=0,
                                      LaunchTemplate={"LaunchTemplateName": lt_name, "Version": "$Latest"},
                                      VPCZoneIdentifier=out["subnets"][asg_spec["subnet"]])
        out["autoscaling_groups"][asg_name] = asg_name
    names = {}
    for inst_name, inst_spec in (spec.get("instances") or {}).items():
        if (inst_spec or {}).get("count"):
            batch = _create_instances(ec2, out, inst_name, inst_spec)
            out["instances"].update(batch)
            names[inst_name] = list(batch)
        else:
            out["instances"][inst_name] = _create_instance(ec2, elbv2, elb, asg, out, region, inst_name, inst_spec or {})
            names[inst_name] = [inst_name]
    for inst_name, inst_spec in (spec.get("instances") or {}).items():
        for name in names[inst_name]:
            inst = out["instances"][name]
            for finding in (inst_spec or {}).get("findings") or []:
                lab.guardduty.add_finding(account, region, out["detector_id"], dict(finding, instance_id=inst["id"]))
            if (inst_spec or {}).get("malware"):
                lab.guardduty.set_malware(account, region, inst["id"], inst_spec["malware"])
    for finding in spec.get("other_findings") or []:
        lab.guardduty.add_finding(account, region, out["detector_id"], dict(finding))
    return out


def _create_vpc(ec2, out, name, spec, region):
    vpc = ec2.create_vpc(CidrBlock=spec.get("cidr", "10.0.0.0/16"),
                         AmazonProvidedIpv6CidrBlock=bool(spec.get("ipv6")))["Vpc"]
    vpc_id = vpc["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": name}])
    out["vpcs"][name] = vpc_id
    ipv6_block = None
    if spec.get("ipv6"):
        described = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
        blocks = described.get("Ipv6CidrBlockAssociationSet") or []
        ipv6_block = blocks[0]["Ipv6CidrBlock"] if blocks else None
    for index, (subnet_name, subnet_spec) in enumerate((spec.get("subnets") or {}).items()):
        kwargs = {"VpcId": vpc_id, "CidrBlock": subnet_spec["cidr"],
                  "AvailabilityZone": subnet_spec.get("az", f"{region}a")}
        if ipv6_block and subnet_spec.get("ipv6", True):
            kwargs["Ipv6CidrBlock"] = str(next(itertools.islice(
                ipaddress.IPv6Network(ipv6_block).subnets(new_prefix=64), index, None)))
        subnet_id = ec2.create_subnet(**kwargs)["Subnet"]["SubnetId"]
        out["subnets"][subnet_name] = subnet_id
    for group_name, group_spec in (spec.get("security_groups") or {}).items():
        group_id = ec2.create_security_group(GroupName=group_name, Description=f"{name} {group_name}",
                                             VpcId=vpc_id)["GroupId"]
        out["security_groups"][group_name] = group_id
        permissions = []
        for rule in (group_spec or {}).get("ingress") or []:
            perm = {"IpProtocol": rule.get("protocol", "tcp"), "FromPort": int(rule["port"]),
                    "ToPort": int(rule.get("to_port", rule["port"]))}
            if rule.get("cidr"):
                perm["IpRanges"] = [{"CidrIp": rule["cidr"]}]
            if rule.get("ipv6"):
                perm["Ipv6Ranges"] = [{"CidrIpv6": rule["ipv6"]}]
            permissions.append(perm)
        if permissions:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)


def _create_instance_profile(iam, name):
    trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},'
             '"Action":"sts:AssumeRole"}]}')
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return profile["Arn"]


def _create_instances(ec2, out, name, spec):
    """`count: K` on an instance entry: K alike instances from one RunInstances (MinCount=MaxCount=K), as
    for benchmarks. They share the Name tag; the resource map names them NAME-00000, NAME-00001..."""
    count = int(spec["count"])
    tags = [{"Key": "Name", "Value": name}] + [{"Key": k, "Value": str(v)} for k, v in (spec.get("tags") or {}).items()]
    groups = [out["security_groups"][g] for g in spec.get("groups") or []]
    network = {"SubnetId": out["subnets"][spec["subnet"]], "SecurityGroupIds": groups}
    if int(spec.get("enis", 1)) > 1:
        # `enis: K`: K interfaces each, all in the subnet and groups, created by the same RunInstances
        network = {"NetworkInterfaces": [{"DeviceIndex": i, "SubnetId": out["subnets"][spec["subnet"]], "Groups": groups}
                                         for i in range(int(spec["enis"]))]}
    launched = ec2.run_instances(
        ImageId=AMI, InstanceType=spec.get("type", "t3.micro"), MinCount=count, MaxCount=count, **network,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"]
    launched.sort(key=lambda i: i.get("AmiLaunchIndex", 0))
    return {f"{name}-{index:05d}": {"id": inst["InstanceId"],
                                    "enis": [n["NetworkInterfaceId"] for n in sorted(
                                        inst.get("NetworkInterfaces") or [], key=lambda n: n.get("Attachment", {}).get("DeviceIndex", 0))]}
            for index, inst in enumerate(launched)}


def _create_instance(ec2, elbv2, elb, asg, out, region, name, spec):
    enis = spec.get("enis") or [{}]
    interfaces = []
    for index, eni in enumerate(enis):
        subnet = eni.get("subnet") or spec.get("subnet")
        groups = eni.get("groups") or spec.get("groups") or []
        nic = {"DeviceIndex": index, "SubnetId": out["subnets"][subnet],
               "Groups": [out["security_groups"][g] for g in groups]}
        if eni.get("ipv6", spec.get("ipv6") if index == 0 else 0):
            nic["Ipv6AddressCount"] = int(eni.get("ipv6", spec.get("ipv6", 1)))
        interfaces.append(nic)
    volumes = [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}}]
    for i in range(int(spec.get("volumes", 1)) - 1):
        volumes.append({"DeviceName": f"/dev/sd{chr(ord('f') + i)}",
                        "Ebs": {"VolumeSize": 10, "DeleteOnTermination": bool(spec.get("delete_on_termination", True))}})
    primary = {k: v for k, v in interfaces[0].items() if k != "Ipv6AddressCount"}
    kwargs = {"ImageId": AMI, "InstanceType": spec.get("type", "t3.micro"), "MinCount": 1, "MaxCount": 1,
              "NetworkInterfaces": [primary], "BlockDeviceMappings": volumes,
              "TagSpecifications": [{"ResourceType": "instance",
                                     "Tags": [{"Key": "Name", "Value": name}]
                                     + [{"Key": k, "Value": str(v)} for k, v in (spec.get("tags") or {}).items()]}]}
    if spec.get("instance_profile"):
        kwargs["IamInstanceProfile"] = {"Arn": out["instance_profiles"][spec["instance_profile"]]}
    instance = ec2.run_instances(**kwargs)["Instances"][0]
    instance_id = instance["InstanceId"]
    # Secondary ENIs are created then attached, as they would be for an instance whose ENIs
    # live in several subnets or VPCs.
    for index, nic in enumerate(interfaces[1:], start=1):
        create = {"SubnetId": nic["SubnetId"], "Groups": nic["Groups"]}
        if nic.get("Ipv6AddressCount"):
            create["Ipv6AddressCount"] = nic["Ipv6AddressCount"]
        eni_id = ec2.create_network_interface(**create)["NetworkInterface"]["NetworkInterfaceId"]
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=index)
    if interfaces[0].get("Ipv6AddressCount"):
        # moto ignores a per-interface Ipv6AddressCount at launch; AssignIpv6Addresses is the same end state.
        ec2.assign_ipv6_addresses(NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
                                  Ipv6AddressCount=interfaces[0]["Ipv6AddressCount"])
    result = {"id": instance_id}
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    result["enis"] = [n["NetworkInterfaceId"] for n in sorted(described["NetworkInterfaces"],
                                                               key=lambda n: n["Attachment"]["DeviceIndex"])]
    result["volumes"] = [b["Ebs"]["VolumeId"] for b in described.get("BlockDeviceMappings", [])]
    if spec.get("elastic_ip"):
        allocation = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=allocation["AllocationId"], NetworkInterfaceId=result["enis"][0])
        result["allocation_id"] = allocation["AllocationId"]
        result["public_ip"] = allocation["PublicIp"]
    if spec.get("target_group"):
        elbv2.register_targets(TargetGroupArn=out["target_groups"][spec["target_group"]],
                               Targets=[{"Id": instance_id}])
    if spec.get("load_balancer"):
        elb.register_instances_with_load_balancer(LoadBalancerName=spec["load_balancer"],
                                                  Instances=[{"InstanceId": instance_id}])
    if spec.get("autoscaling_group"):
        asg.update_auto_scaling_group(AutoScalingGroupName=spec["autoscaling_group"], MaxSize=10)
        asg.attach_instances(AutoScalingGroupName=spec["autoscaling_group"], InstanceIds=[instance_id])
    return result
