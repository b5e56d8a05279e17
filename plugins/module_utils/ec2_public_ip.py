# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Public IP: take every Elastic IP off a compromised instance's network interfaces, and put them back.

The Elastic IPs of the whole batch are described in one DescribeAddresses call (by network interface),
planned per instance by pure functions (`plan_disassociate`, `plan_reassociate`) and recorded in the
instance tag `guardduty:eip-record` ([[allocation id, ENI, private IP], ...]) before any change.
An auto-assigned public IPv4 address has no allocation. Disassociating an Elastic IP gives the instance a
new one when its primary ENI auto-assigns and it has a single ENI (EC2 User Guide, Public IPv4 addresses:
"When you disassociate the Elastic IP address from your instance, it receives a new public IP address"). It
is reported per ENI as remaining exposure, and on request (`plan_remove_auto_assigned`) removed from the
primary ENI with ModifyNetworkInterfaceAttribute AssociatePublicIpAddress=false (botocore ec2 model: the
option "will only apply to the primary network interface (eth0)").
"""

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import PlanProblem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describing

RECORD_TAG = "guardduty:eip-record"
WRITE_ACTIONS = ("CreateTags", "DeleteTags", "DisassociateAddress", "AssociateAddress", "ModifyNetworkInterfaceAttribute")


def network_interfaces(instance):
    return sorted(instance.get("NetworkInterfaces") or [], key=lambda n: (n.get("Attachment") or {}).get("DeviceIndex", 0))


def public_addresses(instance, addresses):
    """(elastic, auto_assigned) for one instance.

    elastic: [{allocation_id, association_id, public_ip, network_interface_id, private_ip}] from DescribeAddresses;
    auto_assigned: [{network_interface_id, private_ip, public_ip}] for public IPv4s that are not Elastic IPs.
    """
    enis = {n["NetworkInterfaceId"] for n in network_interfaces(instance)}
    elastic = []
    for address in addresses:
        if address.get("NetworkInterfaceId") in enis and address.get("AssociationId"):
            elastic.append({"allocation_id": address.get("AllocationId"), "association_id": address["AssociationId"],
                            "public_ip": address.get("PublicIp"), "network_interface_id": address["NetworkInterfaceId"],
                            "private_ip": address.get("PrivateIpAddress")})
    auto = []
    for eni in network_interfaces(instance):
        for private in eni.get("PrivateIpAddresses") or []:
            association = private.get("Association") or {}
            public = association.get("PublicIp")
            # AWS marks an address it assigned (not an Elastic IP) with the owner "amazon".
            if public and association.get("IpOwnerId") == "amazon":
                auto.append({"network_interface_id": eni["NetworkInterfaceId"], "private_ip": private["PrivateIpAddress"],
                             "public_ip": public})
    return sorted(elastic, key=lambda a: (a["network_interface_id"], a["private_ip"] or "")), auto


def primary_eni(instance):
    enis = network_interfaces(instance)
    return enis[0]["NetworkInterfaceId"] if enis else None


def exposure_notes(auto_assigned, primary=None):
    """One sentence per auto-assigned public IPv4 address: what it is and how it can go."""
    notes = []
    for a in auto_assigned:
        if a["network_interface_id"] == primary:
            how = ("remove it with remove_auto_assigned=true (ModifyNetworkInterfaceAttribute AssociatePublicIpAddress=false "
                   "on the primary network interface)")
        else:
            how = ("AssociatePublicIpAddress=false applies only to the primary network interface, so it stays until the "
                   "interface is detached or the instance stopped")
        notes.append(f"{a['network_interface_id']}: auto-assigned public IPv4 {a['public_ip']} (on {a['private_ip']}); {how}; "
                     "the isolation security group already blocks traffic to it")
    return notes


def gets_new_public_ip(instance, elastic):
    """Whether removing these Elastic IPs can give the instance a new auto-assigned public IPv4: one on its primary
    ENI, and a single ENI (EC2 User Guide, Public IPv4 addresses; it happens when that ENI auto-assigns)."""
    primary = primary_eni(instance)
    return len(network_interfaces(instance)) == 1 and any(a["network_interface_id"] == primary for a in elastic)


def plan_remove_auto_assigned(instance, elastic, auto_assigned):
    """ModifyNetworkInterfaceAttribute AssociatePublicIpAddress=false on the primary ENI, when it holds an
    auto-assigned public IPv4 or will get one once its Elastic IP is gone; [] otherwise (reruns make no call)."""
    primary = primary_eni(instance)
    if primary and (any(a["network_interface_id"] == primary for a in auto_assigned) or gets_new_public_ip(instance, elastic)):
        return [("ModifyNetworkInterfaceAttribute", {"NetworkInterfaceId": primary, "AssociatePublicIpAddress": False})]
    return []


def plan_disassociate(instance_id, elastic, record, record_tags):
    """(calls, new record, predicted elastic addresses): record first, then one DisassociateAddress per Elastic IP."""
    entries = [list(e) for e in record or []]
    for address in elastic:
        entry = [address["allocation_id"], address["network_interface_id"], address["private_ip"]]
        if entry not in entries:
            entries.append(entry)
    entries.sort()
    calls = []
    if entries:
        # Written whenever the tag does not hold the record kept: a forged or stale tag is replaced.
        calls += records.tag_calls(instance_id, RECORD_TAG, entries, record_tags)
    for address in elastic:
        calls.append(("DisassociateAddress", {"AssociationId": address["association_id"]}))
    return calls, (entries or None), []


def plan_reassociate(instance_id, record, record_keys, allocations, instance_enis):
    """(calls, predicted elastic addresses). Raises PlanProblem if an address is gone or taken meanwhile.

    allocations: {allocation id: DescribeAddresses entry} for the recorded allocation ids that still exist.
    """
    if record is None:
        return [], []
    calls = []
    predicted = []
    for allocation_id, eni, private_ip in record:
        address = allocations.get(allocation_id)
        if address is None:
            raise PlanProblem("AssociateAddress", f"recorded Elastic IP {allocation_id} no longer exists in this account "
                              "and region (released?)", "InvalidAllocationID.NotFound")
        if eni not in instance_enis:
            raise PlanProblem("AssociateAddress", f"recorded network interface {eni} is no longer attached to the instance",
                              "InvalidNetworkInterfaceID.NotFound")
        predicted.append({"allocation_id": allocation_id, "public_ip": address.get("PublicIp"), "network_interface_id": eni,
                          "private_ip": private_ip})
        if address.get("NetworkInterfaceId") == eni and address.get("PrivateIpAddress") == private_ip:
            continue
        if address.get("AssociationId"):
            where = address.get("NetworkInterfaceId") or address.get("InstanceId")
            raise PlanProblem("AssociateAddress", f"Elastic IP {address.get('PublicIp')} ({allocation_id}) was taken meanwhile: it "
                              f"is now associated with {where} ({address.get('PrivateIpAddress')}); it is not taken back",
                              "Resource.AlreadyAssociated")
        calls.append(("AssociateAddress", {"AllocationId": allocation_id, "NetworkInterfaceId": eni,
                                           "PrivateIpAddress": private_ip, "AllowReassociation": False}))
    if record_keys:
        calls.append(("DeleteTags", {"Resources": [instance_id], "Tags": [{"Key": k} for k in record_keys]}))
    return calls, predicted


# -- AWS ----------------------------------------------------------------------------------------

def describe_call(call):
    """A short readable form of a call, for check mode, results and errors: `ec2:Action {params}`."""
    return aws_calls.describe_call(call, service="ec2")


def apply_calls(ec2, calls):
    """Make the calls in order; the first failure stops the rest (its exception carries `.action` and `.done`)."""
    return aws_calls.make_calls(lambda action: ec2, calls, shown=describe_call)


def describe_addresses_of(ec2, eni_ids):
    """DescribeAddresses for every Elastic IP on these ENIs, in one call per 200 ENIs."""
    return describing("DescribeAddresses", describe_by_filter, ec2, "DescribeAddresses", "Addresses", "network-interface-id", eni_ids)


def describe_allocations(ec2, allocation_ids):
    """{allocation id: address} for those that exist (unknown ids are left out, not an error)."""
    found = describing("DescribeAddresses", describe_by_filter, ec2, "DescribeAddresses", "Addresses", "allocation-id",
                       sorted(allocation_ids))
    return {a["AllocationId"]: a for a in found if a.get("AllocationId")}
