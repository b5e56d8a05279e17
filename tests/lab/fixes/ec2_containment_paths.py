"""EC2 network ACLs and public addresses as AWS shows them.

- A new custom network ACL (CreateNetworkAcl) comes with AWS's default rules: deny all inbound and outbound
  IPv4 (rule 32767, shown as "*") and, when the VPC has an IPv6 block, IPv6 (rule 32768). moto 5.2.5 creates
  it with no entries at all.
- The Association of a public IPv4 address in DescribeInstances / DescribeNetworkInterfaces has
  IpOwnerId "amazon" when AWS assigned it (auto-assign), and the account id only for an Elastic IP.
  moto 5.2.5 always says the account id.
"""

from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.models.network_acls import NetworkAclBackend

_original = {}


def _create_network_acl(self, vpc_id, tags=None, default=False):
    acl = _original["create"](self, vpc_id, tags=tags, default=default)
    if not default:
        vpc = self.get_vpc(vpc_id)
        ipv6 = any(a.get("ipv6CidrBlock") for a in vpc.ipv6_cidr_block_association_set)
        for egress in (False, True):
            self.create_network_acl_entry(acl.id, 32767, "-1", "deny", egress, "0.0.0.0/0", None, None, None, None, None)
            if ipv6:
                self.create_network_acl_entry(acl.id, 32768, "-1", "deny", egress, None, None, None, None, None, "::/0")
    return acl


def _association(self):
    association = _original["association"].fget(self)
    if association.get("publicIp") and not association.get("allocationId"):
        association["ipOwnerId"] = "amazon"
    return association


def apply():
    _original.setdefault("create", NetworkAclBackend.create_network_acl)
    _original.setdefault("association", NetworkInterface.association)
    NetworkAclBackend.create_network_acl = _create_network_acl
    NetworkInterface.association = property(_association)
