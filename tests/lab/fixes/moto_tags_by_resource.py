"""A resource's own tags read from its own entry, not by filtering every tag of the account and region.

AWS's own work to answer a call is not on the caller's machine; the lab's is, on the controller's cores, and every
benchmark counts it. moto 5.2.5 reads an EC2 resource's tags (TaggedEC2Resource.get_tags, for every instance,
network interface, group and volume it writes in an answer, and for every `tag:` filter) with DescribeTags' filter
over every tag of the account and region, compiling a regular expression from the resource id each time: at 62
instances per account and region, 7% of the lab's CPU in an organization's isolation, and a quadratic cost with more
(py-spy, GIL-holding samples).

The answer is the same list: the tag entries of that one resource id, in the order they were set, each with its
resource id, key, value and resource type. (The filter's pattern, made from an id, which has no `*` or `?`, matches
that id alone.)
"""

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix


def get_tags(self):
    if not self.id:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [{"resource_id": self.id, "key": key, "value": value, "resource_type": resource_type}
            for key, value in list(self.ec2_backend.tags.get(self.id, {}).items())]


def apply():
    TaggedEC2Resource.get_tags = get_tags
