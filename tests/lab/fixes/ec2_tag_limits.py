"""EC2 tag key and value lengths, as AWS enforces them on CreateTags.

AWS refuses a tag key longer than 128 characters or a value longer than 256 with InvalidParameterValue
("Tag value exceeds the maximum length of 256 characters"); moto 5.2 stores any length. An incident id
too long for the instance's tag must fail in the lab as it would in AWS.
"""

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.tags import TagBackend

KEY_MAX = 128
VALUE_MAX = 256

_original_create_tags = TagBackend.create_tags


class TagLengthError(EC2ClientError):
    def __init__(self, what, limit):
        super().__init__("InvalidParameterValue", f"Tag {what} exceeds the maximum length of {limit} characters")


def _create_tags(self, resource_ids, tags):
    for key, value in tags.items():
        if len(key) > KEY_MAX:
            raise TagLengthError("key", KEY_MAX)
        if value is not None and len(value) > VALUE_MAX:
            raise TagLengthError("value", VALUE_MAX)
    return _original_create_tags(self, resource_ids, tags)


def apply():
    TagBackend.create_tags = _create_tags
