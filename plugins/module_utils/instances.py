# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Finding the batch's instances: validate ids, describe them in as few calls as possible, and say
clearly which ones cannot be worked on and why. Every module that takes `instance_ids` starts here.
"""

import re

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_code  # noqa: F401 (also for callers)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_message

INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
DESCRIBE_BATCH = 200  # ids per DescribeInstances call: the most one filter takes
GONE_STATES = ("shutting-down", "terminated")


class InstanceProblem(Exception):
    """One instance cannot be worked on; the message names the instance, the action and the cause."""

    def __init__(self, instance_id, action, message, code=None):
        self.instance_id = instance_id
        self.action = action
        self.code = code
        super().__init__(f"{instance_id}: {action}: {message}" + (f" ({code})" if code else ""))

    def as_dict(self):
        return {"instance_id": self.instance_id, "action": self.action, "code": self.code, "message": str(self)}


def split_instance_ids(instance_ids):
    """(valid ids without duplicates, in order; {bad id: reason})."""
    valid, bad = [], {}
    for raw in instance_ids or []:
        value = str(raw).strip()
        if not INSTANCE_ID.match(value):
            bad[value] = "malformed instance id: expected i- followed by 8 or 17 hexadecimal characters"
        elif value not in valid:
            valid.append(value)
    return valid, bad


def describe_instances(client, instance_ids):
    """({instance_id: instance}, {instance_id: reason}) for the ids, batched.

    An unknown id in a batch makes DescribeInstances fail the whole call, so the batch is described by
    filter (which ignores unknown ids) and whatever is missing is reported as not found.
    """
    found, missing = {}, {}
    for reservation in describe_by_filter(client, "DescribeInstances", "Reservations", "instance-id", instance_ids,
                                          size=DESCRIBE_BATCH):
        for instance in reservation.get("Instances", []):
            # The owner (the reservation's) names the instance's record in the incident store.
            instance.setdefault("OwnerId", reservation.get("OwnerId"))
            found[instance["InstanceId"]] = instance
    for instance_id in instance_ids:
        if instance_id not in found:
            missing[instance_id] = "instance not found in this account and region"
        elif found[instance_id]["State"]["Name"] in GONE_STATES:
            missing[instance_id] = f"instance is {found[instance_id]['State']['Name']}"
            del found[instance_id]
    return found, missing


def is_access_denied(exc):
    codes = ["UnauthorizedOperation", "AccessDenied", "AccessDeniedException"]
    return isinstance(exc, is_boto3_error_code(codes, e=exc))


def problem_from_error(instance_id, action, exc):
    """An InstanceProblem for an AWS error raised while working on one instance."""
    if isinstance(exc, InstanceProblem):
        return exc
    return InstanceProblem(instance_id, getattr(exc, "action", None) or action, error_message(exc), error_code(exc))
