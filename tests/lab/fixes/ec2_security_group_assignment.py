"""EC2 security-group assignment on network interfaces, as AWS validates it; requester-managed ENIs.

- ModifyNetworkInterfaceAttribute(Groups): AWS refuses a group that does not exist, or that belongs to
  another VPC than the interface, with InvalidGroup.NotFound. moto 5.2 accepts both (an unknown id even
  leaves a None in the interface's group set).
- Requester-managed interfaces (created by another AWS service for you) cannot be created through the
  API, so the lab marks one with the tag `lab:requester-managed=true`: DescribeNetworkInterfaces then
  reports RequesterManaged true, as AWS would for such an interface.
"""

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_network_interfaces import NetworkInterface, NetworkInterfaceBackend

LAB_REQUESTER_MANAGED_TAG = "lab:requester-managed"

_original_modify = NetworkInterfaceBackend.modify_network_interface_attribute


class GroupNotInVpcError(EC2ClientError):
    def __init__(self, group_id, vpc_id):
        super().__init__("InvalidGroup.NotFound", f"The security group '{group_id}' does not exist in VPC '{vpc_id}'")


def _modify_network_interface_attribute(self, eni_id, group_ids, *args, **kwargs):
    eni = self.get_network_interface(eni_id)
    vpc_id = eni.subnet.vpc_id
    for group_id in group_ids or []:
        group = self.get_security_group_from_id(group_id)
        if group is None or group.vpc_id != vpc_id:
            raise GroupNotInVpcError(group_id, vpc_id)
    return _original_modify(self, eni_id, group_ids, *args, **kwargs)


def _requester_managed_get(self):
    if getattr(self, "_lab_requester_managed", False):
        return True
    try:
        tags = self.get_tags()
    except Exception:  # not registered with the backend yet (during __init__)
        return False
    return any(t.get("key") == LAB_REQUESTER_MANAGED_TAG and t.get("value") == "true" for t in tags)


def _requester_managed_set(self, value):
    self._lab_requester_managed = bool(value)


def apply():
    NetworkInterfaceBackend.modify_network_interface_attribute = _modify_network_interface_attribute
    NetworkInterface.requester_managed = property(_requester_managed_get, _requester_managed_set)
