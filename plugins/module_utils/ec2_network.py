# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The EC2 calls isolation makes: one small function each, retried with jittered backoff on throttling
and 5xx (AWSRetry), batched where the API allows. Errors other than the tolerated ones propagate as
botocore ClientError; callers turn them into per-instance problems naming the action and the code.
"""

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

FILTER_VALUES_MAX = 200  # values per filter in one Describe call

# Generous: under a bulk run EC2 throttles by token bucket, and a failed call leaves the instance for a rerun.
retry = AWSRetry.jittered_backoff(retries=12, delay=0.5, max_delay=20)


@retry
def _describe_network_interfaces_page(client, **kwargs):
    return client.describe_network_interfaces(**kwargs)


def _interfaces_by_filter(client, name, values):
    """{eni_id: interface} of the ENIs matching filter `name` on any of `values`, in as few calls as the filter
    limits allow, every page read."""
    found = {}
    values = sorted(set(values))
    for start in range(0, len(values), FILTER_VALUES_MAX):
        kwargs = {"Filters": [{"Name": name, "Values": values[start:start + FILTER_VALUES_MAX]}]}
        while True:
            page = _describe_network_interfaces_page(client, **kwargs)
            for eni in page.get("NetworkInterfaces", []):
                found[eni["NetworkInterfaceId"]] = eni
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return found


def describe_network_interfaces(client, eni_ids):
    """{eni_id: interface}. By filter, so an interface detached or deleted since DescribeInstances is simply
    absent instead of failing the batch."""
    return _interfaces_by_filter(client, "network-interface-id", eni_ids)


@retry
def _describe_security_groups_page(client, **kwargs):
    return client.describe_security_groups(**kwargs)


def describe_groups_by_name(client, vpc_ids, names):
    """Every security group called one of `names` in one of `vpc_ids`: one call for the batch."""
    groups = []
    vpc_ids = sorted(set(vpc_ids))
    for start in range(0, len(vpc_ids), FILTER_VALUES_MAX):
        kwargs = {"Filters": [{"Name": "vpc-id", "Values": vpc_ids[start:start + FILTER_VALUES_MAX]},
                              {"Name": "group-name", "Values": sorted(set(names))}]}
        while True:
            page = _describe_security_groups_page(client, **kwargs)
            groups.extend(page.get("SecurityGroups", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return groups


def describe_groups_by_id(client, group_ids):
    """{group_id: {"vpc_id", "role"}} of the groups that exist among `group_ids` (by filter: a deleted group is
    simply absent). `role` is the group's guardduty:role tag: how a containment group is known."""
    found = {}
    group_ids = sorted(set(group_ids))
    for start in range(0, len(group_ids), FILTER_VALUES_MAX):
        kwargs = {"Filters": [{"Name": "group-id", "Values": group_ids[start:start + FILTER_VALUES_MAX]}]}
        while True:
            page = _describe_security_groups_page(client, **kwargs)
            for group in page.get("SecurityGroups", []):
                tags = {t["Key"]: t["Value"] for t in group.get("Tags") or []}
                found[group["GroupId"]] = {"vpc_id": group.get("VpcId"), "role": tags.get("guardduty:role")}
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return found


@retry
def _describe_vpcs(client, **kwargs):
    return client.describe_vpcs(**kwargs)


def ipv6_vpcs(client, vpc_ids):
    """The VPCs among `vpc_ids` with an associated IPv6 block (a new group there gets a ::/0 egress rule)."""
    out = set()
    vpc_ids = sorted(set(vpc_ids))
    for start in range(0, len(vpc_ids), FILTER_VALUES_MAX):
        page = _describe_vpcs(client, Filters=[{"Name": "vpc-id", "Values": vpc_ids[start:start + FILTER_VALUES_MAX]}])
        for vpc in page.get("Vpcs", []):
            if any(b.get("Ipv6CidrBlockState", {}).get("State") == "associated"
                   for b in vpc.get("Ipv6CidrBlockAssociationSet") or []):
                out.add(vpc["VpcId"])
    return out


@retry
def _create_security_group(client, **kwargs):
    return client.create_security_group(**kwargs)


def create_security_group(client, vpc_id, name, description, tags):
    """The new group's id, or None when a group of that name appeared meanwhile (a concurrent run):
    the caller describes it again. Tags are given at creation so the group is never seen untagged."""
    try:
        return _create_security_group(
            client, GroupName=name, Description=description, VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])["GroupId"]
    except is_boto3_error_code("InvalidGroup.Duplicate"):
        return None


@retry
def _change_rules(client, action, **kwargs):
    method = {"AuthorizeSecurityGroupIngress": client.authorize_security_group_ingress,
              "AuthorizeSecurityGroupEgress": client.authorize_security_group_egress,
              "RevokeSecurityGroupIngress": client.revoke_security_group_ingress,
              "RevokeSecurityGroupEgress": client.revoke_security_group_egress}[action]
    return method(**kwargs)


def change_rules(client, action, group_id, permissions):
    """Authorize or revoke rules. A rule already there (authorize) or already gone (revoke) is the state
    wanted: a concurrent run got there first."""
    tolerated = "InvalidPermission.Duplicate" if action.startswith("Authorize") else "InvalidPermission.NotFound"
    try:
        _change_rules(client, action, GroupId=group_id, IpPermissions=permissions)
        return True
    except is_boto3_error_code(tolerated):
        return False


@retry
def set_interface_groups(client, eni_id, group_ids):
    """Replace an ENI's security groups (the whole set, as ModifyNetworkInterfaceAttribute does)."""
    client.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=list(group_ids))


@retry
def create_tags(client, resource_ids, tags):
    client.create_tags(Resources=list(resource_ids), Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


@retry
def delete_tags(client, resource_ids, keys):
    client.delete_tags(Resources=list(resource_ids), Tags=[{"Key": k} for k in keys])


def describe_groups_by_tag(client, vpc_ids, key, value):
    """Every security group tagged `key`=`value` in one of `vpc_ids` (the conversion groups, whatever their name)."""
    groups = []
    vpc_ids = sorted(set(vpc_ids))
    for start in range(0, len(vpc_ids), FILTER_VALUES_MAX):
        kwargs = {"Filters": [{"Name": "vpc-id", "Values": vpc_ids[start:start + FILTER_VALUES_MAX]},
                              {"Name": f"tag:{key}", "Values": [value]}]}
        while True:
            page = _describe_security_groups_page(client, **kwargs)
            groups.extend(page.get("SecurityGroups", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return groups


def describe_interfaces_on_groups(client, group_ids):
    """{eni_id: interface} of every ENI that has one of `group_ids` among its groups."""
    return _interfaces_by_filter(client, "group-id", group_ids)


def set_interface_groups_once(client, eni_id, group_ids):
    """ModifyNetworkInterfaceAttribute(Groups) without retries: the caller retries the ENI moves itself,
    so that no move to the conversion group goes out while a move off it waits (ec2_isolation)."""
    client.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=list(group_ids))
