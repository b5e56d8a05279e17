# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Subnet containment: put the subnets of compromised instances behind a deny-all network ACL, and back.

Network ACLs are stateless, so unlike security groups they also cut flows that EC2 keeps tracking
(ICMP, flows through a NAT gateway, NLB, ...). They apply to a whole subnet: every ENI in it is cut
off (other instances, NAT gateways, load balancer nodes, Lambda ENIs), so this is opt-in and asks for
an explicit acknowledgement. Traffic between two addresses of the same subnet never crosses a NACL.

Plans are per subnet (several instances may share one): `plan_contain_subnet`, `plan_release_subnet`
return (action, parameters) calls (the floor's shape, aws_calls.py). The original ACL id is recorded before the
association is replaced: in the incident store (one document per subnet, section `nacl`), the authority, then in
the subnet tag `guardduty:nacl-record`, a hint anyone with ec2:CreateTags in the member account can rewrite.
`subnet_record` weighs the two (records.for_change / for_release): release never applies a tag the store does not
hold, so a forged tag cannot choose the network ACL a released subnet gets.
"""

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import PlanProblem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describing

RECORD_TAG = "guardduty:nacl-record"
MARKER_TAG = "guardduty:containment"
DEFAULT_RULE = 32767  # AWS's "*" rules: 32767 (IPv4) and 32768 (IPv6) cannot be changed or removed
WRITE_ACTIONS = ("CreateTags", "DeleteTags", "CreateNetworkAcl", "ReplaceNetworkAclAssociation", "DeleteNetworkAclEntry")


def instance_subnets(instance):
    """{subnet id: vpc id} of every ENI of the instance."""
    return {n["SubnetId"]: n.get("VpcId") or instance.get("VpcId") for n in instance.get("NetworkInterfaces") or []}


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def is_containment_acl(acl, name):
    tags = tags_of(acl)
    return tags.get(MARKER_TAG) == "true" and tags.get("Name") == name


def subnet_associations(acls):
    """{subnet id: (association id, acl)} from DescribeNetworkAcls."""
    out = {}
    for acl in acls:
        for association in acl.get("Associations") or []:
            out[association["SubnetId"]] = (association["NetworkAclAssociationId"], acl)
    return out


def containment_acls(acls, name):
    """{vpc id: acl} of the containment ACLs already there."""
    return {acl["VpcId"]: acl for acl in sorted(acls, key=lambda a: a["NetworkAclId"]) if is_containment_acl(acl, name)}


def stray_entries(acl):
    """Entries someone added to a containment ACL: anything but AWS's default deny rules."""
    return [e for e in acl.get("Entries") or [] if e["RuleNumber"] < DEFAULT_RULE]


def plan_containment_acl(vpc_id, existing, name):
    """(calls, acl id or a placeholder): the VPC's containment ACL, created if missing, with only deny rules.

    A new custom network ACL denies all inbound and outbound traffic, IPv4 and IPv6, until rules are added.
    """
    if existing is None:
        return [("CreateNetworkAcl", {"VpcId": vpc_id, "TagSpecifications": [{"ResourceType": "network-acl", "Tags": [
            {"Key": "Name", "Value": name}, {"Key": MARKER_TAG, "Value": "true"}]}]})], f"(new) {name}"
    calls = [("DeleteNetworkAclEntry", {"NetworkAclId": existing["NetworkAclId"], "RuleNumber": e["RuleNumber"],
                                        "Egress": e["Egress"]}) for e in stray_entries(existing)]
    return calls, existing["NetworkAclId"]


def subnet_record(subnet, stored, releasing, trust_tag_records=False):
    """(record, problem, warning) for one subnet: the original network ACL id a run keeps or a release applies.

    `stored` is the incident store's `nacl` section for the subnet (None when it has none). Containing, the
    store's record wins over the tag and, without one, the tag is never adopted (None: the caller records the
    ACL it describes). Releasing, the store's record is applied only when the tag, if any, says the same; a tag
    alone only with trust_tag_records. A problem means nothing of this subnet may change."""
    subject = f"subnet {subnet['SubnetId']}"
    tagged = tags_of(subnet).get(RECORD_TAG)
    if not releasing:
        record, warning = records.for_change(subject, RECORD_TAG, stored, tagged)
        return record, None, warning
    return records.for_release(subject, RECORD_TAG, stored, tagged, None, trust_tag_records)


def plan_contain_subnet(subnet, association, containment_acl_id, name, original=None):
    """(calls, before acl id, after acl id). `association` is (association id, acl); `original` the ACL id to
    record (the store's, see subnet_record), else the one the subnet has now."""
    association_id, acl = association
    if is_containment_acl(acl, name):
        return [], acl["NetworkAclId"], acl["NetworkAclId"]
    original = original or acl["NetworkAclId"]
    calls = []
    if tags_of(subnet).get(RECORD_TAG) != original:
        calls.append(("CreateTags", {"Resources": [subnet["SubnetId"]], "Tags": [{"Key": RECORD_TAG, "Value": original}]}))
    calls.append(("ReplaceNetworkAclAssociation", {"AssociationId": association_id, "NetworkAclId": containment_acl_id}))
    return calls, acl["NetworkAclId"], containment_acl_id


def plan_release_subnet(subnet, association, existing_acl_ids, name, recorded):
    """(calls, before acl id, after acl id); `recorded` is the ACL id subnet_record allows (None: no record, no
    change). Raises PlanProblem if the recorded ACL is gone."""
    association_id, acl = association
    if not recorded:
        return [], acl["NetworkAclId"], acl["NetworkAclId"]
    calls = []
    if is_containment_acl(acl, name):
        if recorded not in existing_acl_ids:
            raise PlanProblem("ReplaceNetworkAclAssociation", f"subnet {subnet['SubnetId']}: recorded network ACL {recorded} no "
                              "longer exists", "InvalidNetworkAclID.NotFound")
        calls.append(("ReplaceNetworkAclAssociation", {"AssociationId": association_id, "NetworkAclId": recorded}))
        after = recorded
    else:
        after = acl["NetworkAclId"]  # someone already moved it: keep their choice, drop the record
    if RECORD_TAG in tags_of(subnet):
        calls.append(("DeleteTags", {"Resources": [subnet["SubnetId"]], "Tags": [{"Key": RECORD_TAG}]}))
    return calls, acl["NetworkAclId"], after


def others_in_subnets(enis, subnet_ids, instance_ids):
    """{subnet id: [descriptions of the other ENIs there]}: what the containment also cuts off."""
    out = {s: [] for s in subnet_ids}
    for eni in enis:
        owner = (eni.get("Attachment") or {}).get("InstanceId")
        if eni["SubnetId"] not in out or owner in instance_ids:
            continue
        what = f"instance {owner}" if owner else (eni.get("Description") or eni.get("InterfaceType") or "unattached")
        out[eni["SubnetId"]].append(f"{eni['NetworkInterfaceId']} ({what})")
    return out


# -- AWS ----------------------------------------------------------------------------------------

def describe_call(call):
    """A short readable form of a call, for check mode, results and errors: `ec2:Action {params}`."""
    return aws_calls.describe_call(call, service="ec2")


def apply_calls(ec2, calls):
    """Make the calls in order; the first failure stops the rest (its exception carries `.action` and `.done`)."""
    return aws_calls.make_calls(lambda action: ec2, calls, shown=describe_call)


def describe_subnet_state(ec2, vpc_ids, subnet_ids):
    """(acls, subnets, enis) for the VPCs and subnets of the batch: three paged calls (per 200 filter values)."""
    acls = describing("DescribeNetworkAcls", describe_by_filter, ec2, "DescribeNetworkAcls", "NetworkAcls", "vpc-id", sorted(vpc_ids))
    subnets = describing("DescribeSubnets", aws_calls.items, ec2, "DescribeSubnets", "Subnets", SubnetIds=sorted(subnet_ids))
    enis = describing("DescribeNetworkInterfaces", describe_by_filter, ec2, "DescribeNetworkInterfaces", "NetworkInterfaces",
                      "subnet-id", sorted(subnet_ids))
    return acls, subnets, enis
