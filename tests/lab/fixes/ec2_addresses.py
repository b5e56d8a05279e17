"""DescribeAddresses as AWS answers it.

AWS shows an Elastic IP's `InstanceId` whenever the address is on an instance, also when it was
associated through one of the instance's network interfaces (AssociateAddress NetworkInterfaceId=...),
and leaves `InstanceId` and `NetworkInterfaceId` out of an address associated with nothing. moto 5.2
answers `InstanceId: ""` for an address associated through an ENI, and empty strings for an unassociated
one, and its `instance-id` filter misses the former. Code that records which instance held an address (and tests that read it back) must see AWS's shape.
"""

from moto.ec2.models.elastic_ip_addresses import ElasticAddress


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


def apply():
    ElasticAddress.get_filter_value = _get_filter_value
    ElasticAddress.instance_id = property(_instance_id)
    ElasticAddress.network_interface_id = property(_network_interface_id)
