# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The EC2 calls isolation makes: one small function each, through the floor (aws_calls.py: EC2's retry
policy, every page read, filters in chunks of 200 values). Errors other than the tolerated ones propagate as
botocore ClientError; callers turn them into per-instance problems naming the action and the code.
"""

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import call, describe_by_filter


def _interfaces_by_filter(client, name, values):
    """{eni_id: interface} of the ENIs matching filter `name` on any of `values`, in as few calls as the filter
    limits allow, every page read."""
    return {eni["NetworkInterfaceId"]: eni
            for eni in describe_by_filter(client, "DescribeNetworkInterfaces", "NetworkInterfaces", name, sorted(set(values)))}


def describe_network_interfaces(client, eni_ids):
    """{eni_id: interface}. By filter, so an interface detached or deleted since DescribeInstances is simply
    absent instead of failing the batch."""
    return _interfaces_by_filter(client, "network-interface-id", eni_ids)


def describe_groups_by_name(client, vpc_ids, names):
    """Every security group called one of `names` in one of `vpc_ids`: one call for the batch."""
    return describe_by_filter(client, "DescribeSecurityGroups", "SecurityGroups", "vpc-id", sorted(set(vpc_ids)),
                              filters=[{"Name": "group-name", "Values": sorted(set(names))}])


def describe_groups_by_id(client, group_ids):
    """{group_id: {"vpc_id", "role"}} of the groups that exist among `group_ids` (by filter: a deleted group is
    simply absent). `role` is the group's guardduty:role tag: how a containment group is known."""
    found = {}
    for group in describe_by_filter(client, "DescribeSecurityGroups", "SecurityGroups", "group-id", sorted(set(group_ids))):
        tags = {t["Key"]: t["Value"] for t in group.get("Tags") or []}
        found[group["GroupId"]] = {"vpc_id": group.get("VpcId"), "role": tags.get("guardduty:role")}
    return found


def ipv6_vpcs(client, vpc_ids):
    """The VPCs among `vpc_ids` with an associated IPv6 block (a new group there gets a ::/0 egress rule)."""
    out = set()
    for vpc in describe_by_filter(client, "DescribeVpcs", "Vpcs", "vpc-id", sorted(set(vpc_ids))):
        if any(b.get("Ipv6CidrBlockState", {}).get("State") == "associated"
               for b in vpc.get("Ipv6CidrBlockAssociationSet") or []):
            out.add(vpc["VpcId"])
    return out


def create_security_group(client, vpc_id, name, description, tags):
    """The new group's id, or None when a group of that name appeared meanwhile (a concurrent run):
    the caller describes it again. Tags are given at creation so the group is never seen untagged."""
    try:
        return call(client, "CreateSecurityGroup", GroupName=name, Description=description, VpcId=vpc_id,
                    TagSpecifications=[{"ResourceType": "security-group",
                                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])["GroupId"]
    except is_boto3_error_code("InvalidGroup.Duplicate"):
        return None


def change_rules(client, action, group_id, permissions):
    """Authorize or revoke rules (action: Authorize/RevokeSecurityGroupIngress/Egress). A rule already there
    (authorize) or already gone (revoke) is the state wanted: a concurrent run got there first."""
    tolerated = "InvalidPermission.Duplicate" if action.startswith("Authorize") else "InvalidPermission.NotFound"
    try:
        call(client, action, GroupId=group_id, IpPermissions=permissions)
        return True
    except is_boto3_error_code(tolerated):
        return False


def set_interface_groups(client, eni_id, group_ids):
    """Replace an ENI's security groups (the whole set, as ModifyNetworkInterfaceAttribute does)."""
    call(client, "ModifyNetworkInterfaceAttribute", NetworkInterfaceId=eni_id, Groups=list(group_ids))


def create_tags(client, resource_ids, tags):
    call(client, "CreateTags", Resources=list(resource_ids), Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def delete_tags(client, resource_ids, keys):
    call(client, "DeleteTags", Resources=list(resource_ids), Tags=[{"Key": k} for k in keys])


def describe_groups_by_tag(client, vpc_ids, key, value):
    """Every security group tagged `key`=`value` in one of `vpc_ids` (the conversion groups, whatever their name)."""
    return describe_by_filter(client, "DescribeSecurityGroups", "SecurityGroups", "vpc-id", sorted(set(vpc_ids)),
                              filters=[{"Name": f"tag:{key}", "Values": [value]}])


def describe_interfaces_on_groups(client, group_ids):
    """{eni_id: interface} of every ENI that has one of `group_ids` among its groups."""
    return _interfaces_by_filter(client, "group-id", group_ids)


def set_interface_groups_once(client, eni_id, group_ids):
    """ModifyNetworkInterfaceAttribute(Groups) without retries: the caller retries the ENI moves itself,
    so that no move to the conversion group goes out while a move off it waits (ec2_isolation)."""
    client.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=list(group_ids))
