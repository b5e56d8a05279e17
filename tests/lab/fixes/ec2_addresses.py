"""DescribeAddresses as AWS answers it.

AWS shows an Elastic IP's `InstanceId` whenever the address is on an instance, also when it was
associated through one of the instance's network interfaces (AssociateAddress NetworkInterfaceId=...),
and leaves `InstanceId` and `NetworkInterfaceId` out of an address associated with nothing. moto 5.2
answers `InstanceId: ""` for an address associated through an ENI, and empty strings for an unassociated
one, and its `instance-id` filter misses the former. Code that records which instance held an address (and tests that read it back) must see AWS's shape.

Public IPv4 addresses around an Elastic IP, as the EC2 User Guide ("Public IPv4 addresses",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-instance-addressing.html#concepts-public-addresses)
describes them: "We release your instance's public IP address when you associate an Elastic IP address with it.
When you disassociate the Elastic IP address from your instance, it receives a new public IP address", but "if
the public IP address of your instance in a VPC has been released, it will not receive a new one if there is
more than one network interface attached to your instance". moto 5.2.5 hands the new address whatever the
number of interfaces. ModifyNetworkInterfaceAttribute(AssociatePublicIpAddress) assigns or removes the
auto-assigned public IPv4 address ("This option can be enabled for any network interface but will only apply
to the primary network interface (eth0)", botocore ec2 model, ModifyNetworkInterfaceAttributeRequest); moto
ignores the parameter.
"""

from moto.ec2.models.elastic_ip_addresses import ElasticAddress, ElasticAddressBackend
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
from moto.ec2.utils import random_public_ip

_original = {}


def _instance_id(self):
    if self.instance:
        return self.instance.id
    attached = getattr(self.eni, "instance", None) if self.eni else None
    return attached.id if attached else None


def _network_interface_id(self):
    return self.eni.id if self.eni else None


_original_filter_value = ElasticAddress.get_filter_value


def _get_filter_value(self, filter_name, method_name=None):
    if filter_name == "instance-id":
        return _instance_id(self)
    return _original_filter_value(self, filter_name, method_name)


def _elastic_ip_on(backend, eni):
    return any(a.eni is eni for a in backend.addresses)


def _disassociate_address(self, address=None, association_id=None):
    eips = self.address_by_ip([address]) if address else self.address_by_association([association_id])
    eni = eips[0].eni if eips else None
    _original["disassociate"](self, address=address, association_id=association_id)
    instance = getattr(eni, "instance", None) if eni else None
    if instance is not None and (eni.device_index != 0 or len(instance.nics) > 1):
        eni.public_ip = None  # no new public IPv4 with more than one network interface


def _modify_network_interface_attribute(self):
    value = self._get_param("AssociatePublicIpAddress")
    if value is not None:
        enabled = str(value).lower() == "true"
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        primary = eni.instance is None or eni.device_index == 0
        if primary:
            eni.public_ip_auto_assign = enabled
            if not enabled and not _elastic_ip_on(self.ec2_backend, eni):
                eni.public_ip = None
            elif enabled and not eni.public_ip:
                eni.public_ip = random_public_ip()
    return _original["modify"](self)


def apply():
    _original.setdefault("disassociate", ElasticAddressBackend.disassociate_address)
    _original.setdefault("modify", ElasticNetworkInterfaces.modify_network_interface_attribute)
    ElasticAddressBackend.disassociate_address = _disassociate_address
    ElasticNetworkInterfaces.modify_network_interface_attribute = _modify_network_interface_attribute
    ElasticAddress.get_filter_value = _get_filter_value
    ElasticAddress.instance_id = property(_instance_id)
    ElasticAddress.network_interface_id = property(_network_interface_id)
