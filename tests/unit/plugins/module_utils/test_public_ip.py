# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Public IP planning: Elastic IPs per ENI, auto-assigned exposure, and reassociation without taking back."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_public_ip as pip
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import PlanProblem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_public_ip import (
    RECORD_TAG, exposure_notes, plan_disassociate, plan_reassociate, public_addresses)

ID = "i-0123456789abcdef0"
INSTANCE = {"InstanceId": ID, "NetworkInterfaces": [
    {"NetworkInterfaceId": "eni-1", "Attachment": {"DeviceIndex": 0}, "PrivateIpAddresses": [
        {"PrivateIpAddress": "10.0.1.5", "Association": {"PublicIp": "198.51.100.1", "IpOwnerId": "123456789012"}},
        {"PrivateIpAddress": "10.0.1.6"}]},
    {"NetworkInterfaceId": "eni-2", "Attachment": {"DeviceIndex": 1}, "PrivateIpAddresses": [
        {"PrivateIpAddress": "10.0.2.5", "Association": {"PublicIp": "203.0.113.9", "IpOwnerId": "amazon"}}]}]}
ADDRESSES = [{"AllocationId": "eipalloc-1", "AssociationId": "eipassoc-1", "PublicIp": "198.51.100.1",
              "NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.1.5"},
             {"AllocationId": "eipalloc-9", "AssociationId": "eipassoc-9", "PublicIp": "198.51.100.9",
              "NetworkInterfaceId": "eni-other", "PrivateIpAddress": "10.0.9.9"}]


def test_elastic_and_auto_assigned_addresses_are_told_apart():
    elastic, auto = public_addresses(INSTANCE, ADDRESSES)
    assert [a["allocation_id"] for a in elastic] == ["eipalloc-1"]
    assert auto == [{"network_interface_id": "eni-2", "private_ip": "10.0.2.5", "public_ip": "203.0.113.9"}]
    assert "eni-2" in exposure_notes(auto)[0] and "security group" in exposure_notes(auto)[0]


def test_disassociate_records_first():
    elastic, _unused1 = public_addresses(INSTANCE, ADDRESSES)
    calls, record, _unused1 = plan_disassociate(ID, elastic, None, [])
    assert [c[0] for c in calls] == ["CreateTags", "DisassociateAddress"]
    assert calls[0][1]["Tags"][0]["Key"] == RECORD_TAG
    assert calls[1][1] == {"AssociationId": "eipassoc-1"}
    assert record == [["eipalloc-1", "eni-1", "10.0.1.5"]]
    assert plan_disassociate(ID, [], record, records.encode(RECORD_TAG, record))[0] == []
    # A tag that does not hold the record kept (forged, or from before) is rewritten from it.
    forged = records.encode(RECORD_TAG, [["eipalloc-9", "eni-1", "10.0.1.5"]])
    assert [c[0] for c in plan_disassociate(ID, [], record, forged)[0]] == ["CreateTags"]


def test_reassociate_never_takes_an_address_back():
    record = [["eipalloc-1", "eni-1", "10.0.1.5"]]
    free = {"eipalloc-1": {"AllocationId": "eipalloc-1", "PublicIp": "198.51.100.1"}}
    calls, _unused1 = plan_reassociate(ID, record, [RECORD_TAG], free, {"eni-1", "eni-2"})
    assert calls[0] == ("AssociateAddress", {"AllocationId": "eipalloc-1", "NetworkInterfaceId": "eni-1",
                                             "PrivateIpAddress": "10.0.1.5", "AllowReassociation": False})
    assert calls[-1][0] == "DeleteTags"
    taken = {"eipalloc-1": dict(free["eipalloc-1"], AssociationId="eipassoc-7", NetworkInterfaceId="eni-other",
                                PrivateIpAddress="10.0.9.9")}
    with pytest.raises(PlanProblem) as info:
        plan_reassociate(ID, record, [RECORD_TAG], taken, {"eni-1"})
    assert info.value.code == "Resource.AlreadyAssociated" and "eni-other" in str(info.value)
    with pytest.raises(PlanProblem) as info:
        plan_reassociate(ID, record, [RECORD_TAG], {}, {"eni-1"})
    assert info.value.code == "InvalidAllocationID.NotFound"


def test_auto_assigned_address_of_the_primary_eni_is_removed_on_request():
    one_eni = {"InstanceId": "i-1", "NetworkInterfaces": [{"NetworkInterfaceId": "eni-0", "Attachment": {"DeviceIndex": 0}}]}
    two_enis = {"InstanceId": "i-2", "NetworkInterfaces": [{"NetworkInterfaceId": "eni-0", "Attachment": {"DeviceIndex": 0}},
                                                           {"NetworkInterfaceId": "eni-1", "Attachment": {"DeviceIndex": 1}}]}
    elastic = [{"network_interface_id": "eni-0", "private_ip": "10.0.0.5"}]
    remove = [("ModifyNetworkInterfaceAttribute", {"NetworkInterfaceId": "eni-0", "AssociatePublicIpAddress": False})]
    # AWS hands a new public IPv4 once the Elastic IP of the only ENI is gone (EC2 User Guide, Public IPv4 addresses)
    assert pip.plan_remove_auto_assigned(one_eni, elastic, []) == remove
    assert pip.plan_remove_auto_assigned(two_enis, elastic, []) == []
    auto = [{"network_interface_id": "eni-0", "private_ip": "10.0.0.5", "public_ip": "203.0.113.9"}]
    assert pip.plan_remove_auto_assigned(two_enis, [], auto) == remove
    assert pip.plan_remove_auto_assigned(one_eni, [], []) == []  # nothing left: a rerun makes no call
    [note] = pip.exposure_notes(auto, "eni-0")
    assert "203.0.113.9" in note and "remove_auto_assigned=true" in note
    [other] = pip.exposure_notes([dict(auto[0], network_interface_id="eni-1")], "eni-0")
    assert "only to the primary network interface" in other
