# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ARNs: the partition every ARN we build is in, read from the caller's identity (GetCallerIdentity's Arn).

A Region name does not say its partition reliably (aws-eusc, aws-iso-e, aws-iso-f came after the
well-known prefixes), and an ARN in the wrong partition is refused by IAM and GuardDuty alike; the
caller's own ARN always carries the right one.
"""

import re

# The partitions AWS has today (botocore's endpoints / partitions.json); any aws[-x] name is accepted.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc")
PARTITION = re.compile(r"^aws(-[a-z]+)*$")


def partition_of(arn):
    """The partition of an ARN (arn:PARTITION:service:region:account:resource); ValueError if it is not an ARN."""
    parts = str(arn or "").split(":")
    if len(parts) < 6 or parts[0] != "arn" or not PARTITION.match(parts[1]):
        raise ValueError(f"not an ARN with an AWS partition: {arn!r}")
    return parts[1]


def caller_partition(identity):
    """The partition of a GetCallerIdentity answer ({"Account", "Arn", ...})."""
    return partition_of(identity.get("Arn"))


def role_arn(template, account_id, partition):
    """A role ARN from a template naming {account_id} and optionally {partition}; None for an empty template."""
    if not template:
        return None
    return template.format(account_id=account_id, partition=partition)
