"""A security group's name is unique in its VPC, even when two callers create it at the same moment.

AWS: "You can't have two security groups for the same VPC with the same name"; the second
CreateSecurityGroup is refused with InvalidGroup.Duplicate (EC2 API reference, CreateSecurityGroup,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html, and
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html: InvalidGroup.Duplicate).
moto 5.2 checks the name, builds the group, then stores it, with nothing holding other request threads
off in between: two concurrent creates both pass the check and the VPC ends with two groups of one name
(the flaky "3 groups in a VPC" of test_concurrent_runs_share_one_group_pair). Its name lookup also
iterates the live dict of the VPC's groups, so a create landing meanwhile answers HTTP 500
("dictionary changed size during iteration"), which AWS never does.
"""

import threading

from moto.ec2.models.security_groups import SecurityGroupBackend

_original_create = SecurityGroupBackend.create_security_group
_original_delete = SecurityGroupBackend.delete_security_group
# One lock for the whole lab: creations and deletions are rare next to the other calls.
_names_lock = threading.RLock()


def _create_security_group(self, *args, **kwargs):
    with _names_lock:  # the name check and the insertion, as one step
        return _original_create(self, *args, **kwargs)


def _delete_security_group(self, *args, **kwargs):
    with _names_lock:
        return _original_delete(self, *args, **kwargs)


def _get_security_group_from_name(self, name, vpc_id=None):
    # Over a copy: another request thread may be adding a group to the same VPC.
    vpc_ids = [vpc_id] if vpc_id else list(self.groups)
    for one_vpc in vpc_ids:
        for group in list(self.groups[one_vpc].values()):
            if group.name == name:
                return group
    return None


def apply():
    SecurityGroupBackend.create_security_group = _create_security_group
    SecurityGroupBackend.delete_security_group = _delete_security_group
    SecurityGroupBackend.get_security_group_from_name = _get_security_group_from_name
