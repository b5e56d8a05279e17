#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_isolation
version_added: 1.0.0
short_description: Isolate compromised EC2 instances from the network, and release them
description:
  - Contains a batch of EC2 instances the way Amazon GuardDuty's remediation guide and AWS's
    C(AWSSupport-ContainEC2Instance) runbook do, cutting established connections, and releases them later.
  - "O(state=isolated): for every network interface (ENI) of every instance, primary and secondary:
    1. record the ENI's original security groups in the incident store (O(incident_store)), then in tags on the
    ENI as the hint to resume, before any change;
    2. per VPC, find or create a conversion group (all traffic in and out, IPv4 and IPv6) and an isolation
    group (no rules but O(allowed_access)), found by name and tag, never duplicated;
    3. move the ENI to the conversion group, which makes its TCP/UDP flows untracked, then at once to the
    isolation group, which cuts them; 4. tag the instance C(guardduty:isolation=isolated)."
  - A security-group change alone does not cut connections EC2 is tracking (TCP for up to 5 days); the
    conversion step is what cuts them. ICMP and flows through a NAT gateway, NLB, Global Accelerator,
    Network Firewall, PrivateLink endpoint or egress-only internet gateway stay tracked (see docs/isolation.md).
  - If the move to the isolation group fails after an ENI reached the conversion group, the ENI is put back
    on its original groups and the instance is reported failed with that ENI named; an ENI is never left on
    the open conversion group by a run that could still reach AWS.
  - "Moves off the conversion group go first: no ENI is moved onto it while another waits there for its move
    to the isolation group (for AWS's answer or a retry), and that move is retried fast (50 ms doubling to
    500 ms), so an ENI's time on the open group is about one API call even when EC2 throttles."
  - "A run killed between an ENI's two moves leaves that ENI on the conversion group. Every run, isolate or
    release, looks for ENIs on a conversion group of its VPCs (a group tagged C(guardduty:role=conversion)
    that allows all traffic), its own instances' and any other's, names each in a warning and in
    RV(conversion_recovery), and moves it on to the VPC's isolation group (an ENI of the run's instances
    on release is restored from its record instead). An ENI of another instance without a readable record
    of its original groups was not put there by this module: it is named, not moved. An ENI of another
    instance whose lock another live run holds (another AWX slice, a second responder, between the ENI's two
    moves) is that run's to finish: it is left alone, listed with RV(conversion_recovery[].held_by) and not
    warned about; one whose lock this run takes is described again and moved only if still there."
  - Requester-managed interfaces, and interfaces of another service's type, cannot be changed; they are
    reported per ENI and the instance fails.
  - "O(state=released): restore every ENI's recorded groups, delete the record and mark the instance
    C(guardduty:isolation=released). An instance with no record fails with a clear error."
  - The incident store, not the C(guardduty:original-groups) tag, is the record, because anyone with C(ec2:CreateTags)
    in the member account can write the tag. Isolation never adopts a tag the store does not know; it records the
    ENI's actual groups (the containment groups excepted), rewrites the tag and warns by name. Release refuses,
    naming the ENI and changing nothing of the instance, a record that names a containment group (by its
    C(guardduty:role) tag or its id), a group of another VPC, or a tag that differs from the store's record.
  - Instances isolated by an earlier version have their record in tags only; release refuses them unless
    O(trust_tag_records=true) acknowledges it (the containment and VPC checks still apply).
  - Running again on an isolated (or released) instance makes no AWS write call and reports no change.
  - Every instance gets its own result; the task fails if any instance failed, after trying all of them.
    An instance that cannot be worked on (malformed or unknown id, terminated, another region) is left
    untouched and reported; the others are still processed.
author:
  - cloudsec.guardduty contributors (@cloudsec)
options:
  instance_ids:
    description:
      - The instances to isolate or release, in the module's account and region.
      - Required unless O(batches) is given.
    type: list
    elements: str
  state:
    description:
      - V(isolated) contains the instances; V(released) restores their original security groups.
    type: str
    choices: [isolated, released]
    default: isolated
  isolation_group_name:
    description:
      - Name of the isolation security group, one per VPC, shared by every isolated instance of the VPC.
      - It holds no rule except examiner access (O(allowed_access), this run's and, unless O(allowed_access_exclusive), earlier
        runs'); any other rule added to it by hand is revoked.
      - AWS refuses names longer than 255 characters or starting with C(sg-); they are refused before any call.
    type: str
    default: guardduty-isolation
  conversion_group_name:
    description:
      - Name of the conversion security group, one per VPC, that allows all traffic so that the ENI's
        flows become untracked. ENIs stay on it for one API call.
    type: str
    default: guardduty-isolation-conversion
  allowed_access:
    description:
      - Examiner access kept in the isolation group, for example SSH from a forensics host.
      - It applies to every instance isolated in the VPC. An open CIDR (C(0.0.0.0/0), C(::/0)) or one broader than
        C(/8) (IPv4) or C(/32) (IPv6), such as C(0.0.0.0/1) and C(128.0.0.0/1), is always refused.
      - A public range (not RFC 1918 or C(fc00::/7)), or a private one broader than C(/16) (IPv4) or C(/48) (IPv6), is
        refused unless O(allowed_access_acknowledge_public=true).
      - Rules are only added; leaving this out does not remove the examiner access an earlier run added for another
        incident (see O(allowed_access_exclusive)).
    type: list
    elements: dict
    suboptions:
      cidr:
        description: IPv4 or IPv6 network of the examiner.
        type: str
        required: true
      protocol:
        description: V(all) for all traffic.
        type: str
        choices: [tcp, udp, icmp, all]
        default: tcp
      port:
        description: First port (ICMP type, V(-1) to V(255), V(-1) for all types); required for V(tcp) and V(udp).
        type: int
      to_port:
        description:
          - Last port; defaults to O(allowed_access[].port).
          - For V(icmp), the ICMP code (V(-1) to V(255), default V(-1), all codes); with type V(-1) it must be V(-1).
        type: int
      direction:
        description: Traffic direction the rule allows.
        type: str
        choices: [ingress, egress]
        default: ingress
  allowed_access_acknowledge_public:
    description:
      - Accept in O(allowed_access) public ranges and private ones broader than C(/16) (IPv4) or C(/48) (IPv6),
        knowing that they reach every instance isolated in the VPC. Open and broader than C(/8) or C(/32) stay refused.
    type: bool
    default: false
  allowed_access_exclusive:
    description:
      - Make the isolation group's rules exactly O(allowed_access), revoking the examiner access earlier runs (other
        incidents) added. Without it, rules are only added, and only rules that are not examiner access (open or too
        broad ranges, group or prefix-list references) are revoked.
    type: bool
    default: false
  incident_id:
    description:
      - Incident reference written to the instance's C(guardduty:incident) tag.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters; anything else is
        refused before any AWS call.
    type: str
  max_concurrency:
    description:
      - How many network interfaces are moved at the same time.
    type: int
    default: 8
  lock_timeout:
    description:
      - How many seconds to wait for an instance that another isolate or release holds (see O(incident_store)).
        An instance still held then is left untouched and reported failed, naming the operation that holds it.
      - V(0) refuses at once.
    type: int
    default: 30
  connection_tracking:
    description:
      - Idle timeouts of connection tracking set on every ENI of each isolated instance
        (C(ModifyNetworkInterfaceAttribute) C(ConnectionTrackingSpecification)), after the ENIs are isolated.
      - Flows EC2 always tracks (ICMP, and flows through a NAT gateway, transit gateway attachment, Gateway
        Load Balancer, Network Firewall, Network Load Balancer, Global Accelerator...) survive the conversion
        step until they are idle for their timeout, by default 432000 s (5 days) for established TCP, or
        350 s on Nitro v6 instance types. Shorter timeouts make the idle ones expire. An active flow stays.
      - Unset by default (the ENIs keep their timeouts). A failure to set them fails the instance, which
        stays isolated.
    type: dict
    suboptions:
      tcp_established_timeout:
        description: Seconds an idle established TCP flow stays tracked (60 to 432000).
        type: int
      udp_stream_timeout:
        description: Seconds an idle UDP stream (more than one request-response) stays tracked (60 to 180).
        type: int
      udp_timeout:
        description: Seconds any other idle UDP flow stays tracked (30 to 60).
        type: int
  trust_tag_records:
    description:
      - With O(state=released), apply a C(guardduty:original-groups) tag record the incident store does not know
        (one written by an earlier version, which kept records in tags only). Check the tags first, as anyone with
        C(ec2:CreateTags) in the member account can write them.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode; check mode makes only Describe calls and returns the same plan a
    real run would execute. Groups not created yet are shown as C((new) NAME).
  - "One instance, one operation at a time: before its first write, a run takes each instance's operation lock in
    the incident store (O(incident_store): a C(flock) on the controller, or an S3 lease shared by several controllers)
    and describes the instances only then; it gives the locks back at the end. Check mode takes no lock.
    sts:GetCallerIdentity names the account of the lock (no permission needed)."
  - "IAM actions: ec2:DescribeInstances, ec2:DescribeNetworkInterfaces, ec2:DescribeSecurityGroups,
    ec2:CreateSecurityGroup, ec2:AuthorizeSecurityGroupIngress, ec2:AuthorizeSecurityGroupEgress,
    ec2:RevokeSecurityGroupIngress, ec2:RevokeSecurityGroupEgress, ec2:ModifyNetworkInterfaceAttribute,
    ec2:CreateTags, ec2:DeleteTags, and ec2:DescribeVpcs when it creates groups; ec2:DescribeRouteTables and
    ec2:DescribeVpcEndpoints (the tracked paths) when isolating (policy: docs/iam/ec2_isolation.json).
    With an S3 O(incident_store), s3:GetObject, s3:PutObject and s3:DeleteObject on the store's prefix, with the
    operator's own credentials (docs/iam/incident-store-bucket.json)."
extends_documentation_fragment:
  - cloudsec.guardduty.incident_store
  - cloudsec.guardduty.batches
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Isolate the instances of a finding, keeping SSH from the forensics host
  cloudsec.guardduty.ec2_isolation:
    region: us-east-1
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210
    incident_id: IR-2024-0042
    allowed_access:
      - cidr: 10.99.0.10/32
        port: 22

- name: Release an instance once it is clean
  cloudsec.guardduty.ec2_isolation:
    region: us-east-1
    instance_ids: [i-0123456789abcdef0]
    state: released
"""

RETURN = r"""
instances:
  description:
    - One result per instance id given (as given, without surrounding spaces; a duplicate once), by instance id,
      as every instance module of this collection returns them. A malformed, unknown or terminated id has one too,
      failed.
  returned: unless O(batches) is given (each batch has it in its result)
  type: dict
  contains:
    changed:
      description: Whether anything was (or in check mode would be) changed for this instance.
      type: bool
    state:
      description: V(isolated), V(released) or V(failed) (nothing isolated, or a step failed).
      type: str
      sample: isolated
    network_interfaces:
      description: Every network interface of the instance.
      type: list
      elements: dict
      contains:
        network_interface_id:
          description: The ENI.
          type: str
        vpc_id:
          description: Its VPC.
          type: str
        original_security_groups:
          description: The groups recorded before isolation, restored by release.
          type: list
          elements: str
        security_groups:
          description: Its groups after the run (predicted in check mode).
          type: list
          elements: str
        conversion_seconds:
          description: How long the ENI was on the conversion group (real runs that moved it).
          type: float
        error:
          description: Why this ENI could not be changed, if so (names the ENI, C(ec2:Action) and AWS's error code).
          type: str
    warnings:
      description: Things the responder should know that did not fail the instance.
      type: list
      elements: str
    tracked_paths:
      description:
        - Routes of the ENIs' subnets through which flows stay tracked after isolation (NAT gateway, transit
          gateway, egress-only internet gateway, Gateway Load Balancer or Network Firewall endpoint); each
          is also in RV(instances.warnings) with the recommendation to use
          M(cloudsec.guardduty.ec2_subnet_containment).
      type: list
      elements: dict
      returned: when O(state=isolated)
    error:
      description:
        - Why the instance failed, null if it did not. C(message) names the instance, the action and the cause
          (each failed ENI with C(ec2:Action) and AWS's error code); C(action) and C(code) are the first failure's.
      type: dict
      contains:
        instance_id:
          description: The instance.
          type: str
        action:
          description: The action that failed (an AWS action, C(validate), C(TakeLock), C(ReadIncidentStore), ...).
          type: str
        code:
          description: AWS's error code (or the collection's, such as C(InstanceLocked)), if any.
          type: str
        message:
          description: The whole message.
          type: str
  sample:
    i-0123456789abcdef0:
      changed: true
      state: isolated
      network_interfaces:
        - network_interface_id: eni-0123456789abcdef0
          vpc_id: vpc-0123456789abcdef0
          original_security_groups: [sg-0123456789abcdef0]
          security_groups: [sg-0fedcba9876543210]
      warnings: []
      tracked_paths: []
      error: null
errors:
  description: The failures, one per failed instance (the RV(instances.error) of each), in the order given.
  returned: unless O(batches) is given (each batch has it in its result)
  type: list
  elements: dict
  sample:
    - instance_id: i-0fedcba9876543210
      action: ModifyNetworkInterfaceAttribute
      code: UnauthorizedOperation
      message: "i-0fedcba9876543210: ModifyNetworkInterfaceAttribute: eni-0fedcba9876543210: ec2:ModifyNetworkInterfaceAttribute:
        You are not authorized to perform this operation. (UnauthorizedOperation) (moving to the conversion group; the ENI
        is unchanged)"
security_groups:
  description: The conversion and isolation group of each VPC involved.
  returned: unless O(batches) is given (each batch has it in its result)
  type: dict
  sample: {"vpc-0123456789abcdef0": {"conversion": "sg-01234567890abcdef", "isolation": "sg-0fedcba9876543210"}}
plan:
  description: The write calls planned from the described state, in order; the same in check mode.
  returned: unless O(batches) is given (each batch has it in its result)
  type: list
  elements: dict
conversion_recovery:
  description:
    - Every ENI found on a conversion group of the batch's VPCs (left there by a run that stopped between
      its two moves), whether or not its instance is in O(instance_ids), and what this run did with it.
  returned: unless O(batches) is given (each batch has it in its result)
  type: list
  elements: dict
  contains:
    network_interface_id:
      description: The ENI.
      type: str
    instance_id:
      description: The instance it is attached to (null when detached).
      type: str
    vpc_id:
      description: Its VPC.
      type: str
    conversion_group:
      description: The conversion group it was found on.
      type: str
    in_run:
      description: Whether its instance is in O(instance_ids).
      type: bool
    action:
      description: What this run planned for it (null when it cannot be moved, see RV(conversion_recovery[].error)).
      type: str
    isolation_group:
      description: The isolation group it was moved to.
      type: str
    moved:
      description: Whether it was moved on to the isolation group.
      type: bool
    restored:
      description: Whether this release restored its recorded groups.
      type: bool
    held_by:
      description:
        - The run holding the lock of its instance (operation, pid, host, start), when another live run (another
          AWX slice, a second responder) is between this ENI's two moves. That run finishes it; this one leaves it
          alone and does not warn. Absent otherwise.
      type: str
    error:
      description: Why it was left where it was, if so.
      type: str
  sample:
    - network_interface_id: eni-0123456789abcdef0
      instance_id: i-0123456789abcdef0
      vpc_id: vpc-0123456789abcdef0
      conversion_group: sg-01234567890abcdef
      in_run: false
      isolation_group: sg-0fedcba9876543210
      moved: true
      error: null
batches:
  description:
    - With O(batches), each batch's own result, in the order given, exactly what a run of the module over that batch
      returns (C(instances), C(errors), C(security_groups), C(plan), C(conversion_recovery)), with C(changed), and
      C(failed) and C(msg) for a batch that failed.
  returned: when O(batches) is given
  type: list
  elements: dict
"""

import contextlib
import datetime
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import botocore.config
    import botocore.exceptions
    import botocore.retries.adaptive
    # A timeout or a dropped connection (BotoCoreError) is an error of the call like any ClientError:
    # the ENI it concerned must not be left on the conversion group because of it.
    AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
except ImportError:
    AWS_ERRORS = ()  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import ModuleClients
from ansible_collections.cloudsec.guardduty.plugins.module_utils import connection_tracking
from ansible_collections.cloudsec.guardduty.plugins.module_utils import ec2_network
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils import incident_store
from ansible_collections.cloudsec.guardduty.plugins.module_utils import instance_lock
from ansible_collections.cloudsec.guardduty.plugins.module_utils import isolation
from ansible_collections.cloudsec.guardduty.plugins.module_utils import module_batches
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import batch_output, exit_batch, long_lived
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import InstanceProblem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import describe_instances
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import split_instance_ids


# -- retries: decided here, and only here --------------------------------------------------------------
# One retry layer, ours: botocore makes one attempt per call (total_max_attempts: 1; its max_attempts counts
# retries after the first), every call but the ENI moves is retried by ec2_network.retry
# (AWSRetry.jittered_backoff: 12 retries, 0.5 s to 20 s), the ENI moves by MoveRetries below (isolation moves
# first, fast). Botocore's adaptive mode used to retry under AWSRetry too, two layers multiplying each other's
# attempts. What stays of it is its pacer (ConversionPacer), on the moves onto the conversion group only: no
# retry, it holds them to the rate EC2's token bucket allows (5 mutating calls a second per account and region
# once the burst is spent) instead of each worker retrying into the throttle. When the shared floor
# (module_utils/aws_calls.py) lands, these settings and policies switch to it here, and nowhere else.
EC2_CLIENT_CONFIG = {"retries": {"mode": "standard", "total_max_attempts": 1}}
# Retries of the ENI moves: (attempts, first delay, longest delay) in seconds, each delay jittered (50-100%).
# A move off the conversion group is retried fast: the ENI is open to everything until it is answered.
ISOLATION_RETRY = (30, 0.05, 0.5)
CONVERSION_RETRY = (12, 0.5, 20.0)  # AWSRetry's policy for the other calls (ec2_network.retry)
# CreateTags and DeleteTags take up to 1000 resource ids per call (botocore ec2 model, ResourceIdList of
# CreateTagsRequest.Resources: "Constraints: Up to 1000 resource IDs").
TAG_RESOURCES_MAX = 1000
RETRIED_CODES = ("RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
                 "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable")


def ec2_client(clients):
    """The batch's one EC2 client; a user's aws_config still overrides its settings."""
    return clients.client("ec2", config=botocore.config.Config(**EC2_CLIENT_CONFIG))


class ConversionPacer:
    """Botocore's adaptive pacer (botocore.retries.adaptive: a token bucket whose rate follows EC2's throttling
    answers), on the batch's one client but for the moves onto the conversion group only (`pacing()` around
    them): a move off the conversion group is never held by it. A second client in adaptive mode did the same at
    the cost of loading EC2's model again; `turn` (the conversions' turn) runs after the pacer, right before the
    request leaves."""

    class _Collect:  # register_retry_handler's client: the pacer's two handlers are registered below instead
        def __init__(self):
            self.meta = self
            self.events = self

        def register(self, *_args, **_kwargs):
            pass

    def __init__(self, client, turn):
        self.local = threading.local()
        self.turn = turn
        self.limiter = botocore.retries.adaptive.register_retry_handler(self._Collect())
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register("before-send", self._before_send)
            events.register_last("before-send", self._last_before_send)  # after the pacer
            events.register("needs-retry", self._answered)

    @contextlib.contextmanager
    def pacing(self):
        self.local.on = True
        try:
            yield
        finally:
            self.local.on = False

    def _paced(self):
        return getattr(self.local, "on", False)

    def _before_send(self, **kwargs):
        if self._paced():
            self.limiter.on_sending_request(**kwargs)

    def _last_before_send(self, **_kwargs):
        if self._paced():
            self.turn()

    def _answered(self, **kwargs):
        if self._paced():
            self.limiter.on_receiving_response(**kwargs)


# -- errors ------------------------------------------------------------------------------------------------
def batch_label(instance_ids):
    """`batch (i-1, i-2 and 3 more)`: errors before any per-instance work still name the instances."""
    named = ", ".join(instance_ids[:10]) + (f" and {len(instance_ids) - 10} more" if len(instance_ids) > 10 else "")
    return f"batch ({named})"


def failure(resource, action, exc):
    """`resource: ec2:Action: message (Code)`, the shape every error of this module takes."""
    message = (getattr(exc, "response", None) or {}).get("Error", {}).get("Message") or str(exc)
    return f"{resource}: ec2:{action}: {message} ({error_code(exc)})"


AWS_FAILURE = re.compile(r"ec2:(\w+)(?: \([^)]*\))?: .*?\(([A-Za-z][\w.]*)\)")


def instance_problem(instance_id, details, action=None, state="isolated", code=None):
    """The instance's InstanceProblem from its error lines (each names its ENI or the instance, the action and
    AWS's code): the action and code are those of the first line, read from it when not given; a refusal of
    the plan's (a record, a group not ours) is the action of the state asked for."""
    details = [d[len(instance_id) + 2:] if d.startswith(f"{instance_id}: ") else d for d in details]
    found = AWS_FAILURE.search(details[0]) if details else None
    action = action or (found.group(1) if found else ("IsolateInstance" if state == "isolated" else "ReleaseInstance"))
    code = code or (found.group(2) if found else None)
    problem = InstanceProblem(instance_id, action, "; ".join(details))  # each line already carries its code
    problem.code = code
    return problem


def fail_batch(module, instance_ids, action, exc, what=""):
    """Fail the module for the whole batch (a describe or the lock's identity), having changed nothing."""
    message = failure(batch_label(instance_ids), action, exc) + what + "; nothing was changed"
    module.fail_json(msg=message, instances={}, errors=[
        {"instance_id": None, "action": action, "code": error_code(exc), "message": message}])


class MoveRetries:
    """Retries of throttled and 5xx ENI moves with jittered exponential backoff; `before` runs before each
    attempt (the conversions' turn), `after` once the call is answered, before any other move is let out."""

    def __init__(self, sleep=time.sleep, uniform=random.uniform):
        self.sleep, self.uniform = sleep, uniform

    @staticmethod
    def retryable(exc):
        if not isinstance(exc, botocore.exceptions.ClientError):
            return False
        response = exc.response or {}
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        return error_code(exc) in RETRIED_CODES or status >= 500

    def retried(self, call, policy, before=None, after=None):
        attempts, first, longest = policy
        for attempt in range(attempts):
            if before:
                before()
            try:
                answer = call()
            except botocore.exceptions.ClientError as exc:
                if attempt == attempts - 1 or not self.retryable(exc):
                    raise
            else:
                if after:
                    after()
                return answer
            self.sleep(self.uniform(0.5, 1.0) * min(longest, first * 2 ** attempt))
        return None


class Isolation:
    """Runs the plan against AWS: groups per VPC, then records, then ENI moves, then instance tags."""

    def __init__(self, client, names, allowed_rules, max_concurrency, exclusive=False):
        self.client = client
        self.names = names
        self.allowed_rules = allowed_rules
        self.exclusive = exclusive
        self.workers = max(1, max_concurrency)
        self.moves = MoveRetries()
        self.gate = threading.Condition()
        self.waiting = 0
        # The pacer holds a request inside botocore after the caller let it go: the conversions' turn is checked
        # again at the last moment, after the pacer.
        self.pacer = ConversionPacer(client, self.conversion_allowed)

    # -- groups ---------------------------------------------------------------------------------
    def ensure_groups(self, steps, groups, ipv6_vpcs):
        """Create the missing groups, then set every group's rules, as planned.

        Returns ({(vpc, role): id}, {vpc: error}, the steps run). A new group's rules are the ones AWS gives every
        new group (the plan's starting point), so the plan stands; only a VPC where a concurrent run created a
        group first (InvalidGroup.Duplicate) is described again and its rules planned from what that group holds.
        """
        groups, errors = dict(groups), {}
        creates = [s for s in steps if s["action"] == "CreateSecurityGroup"]
        rule_steps = [s for s in steps if s["action"] != "CreateSecurityGroup"]

        def create(step):
            try:
                return step, ec2_network.create_security_group(self.client, step["vpc_id"], step["group_name"],
                                                               step["description"], {isolation.TAG_GROUP_ROLE: step["role"]})
            except AWS_ERRORS as exc:
                return step, failure(f"{step['group_name']} in {step['vpc_id']}", "CreateSecurityGroup", exc)

        raced = set()
        for step, outcome in _in_pool(self, create, creates):
            if outcome is None:
                raced.add(step["vpc_id"])
            elif outcome.startswith("sg-"):
                groups[(step["vpc_id"], step["role"])] = outcome
            else:
                errors[step["vpc_id"]] = outcome
        raced -= set(errors)
        if raced:
            rule_steps = [s for s in rule_steps if s["vpc_id"] not in raced] + self.replan(raced, groups, errors, ipv6_vpcs)

        by_vpc = {}
        for step in rule_steps:
            if step["vpc_id"] not in errors:
                by_vpc.setdefault(step["vpc_id"], []).append(step)

        def converge(vpc_steps):
            for step in vpc_steps:  # in plan order: revokes before authorizations
                group_id = step.get("group_id") or groups[(step["vpc_id"], step["role"])]
                try:
                    ec2_network.change_rules(self.client, step["action"], group_id, step["permissions"])
                except AWS_ERRORS as exc:
                    return step["vpc_id"], failure(f"{step['group_name']} ({group_id}) in {step['vpc_id']}",
                                                   step["action"], exc)
            return None, None

        for vpc_id, error in _in_pool(self, converge, list(by_vpc.values())):
            if vpc_id:
                errors[vpc_id] = error
        executed = creates + rule_steps
        return groups, errors, executed

    def replan(self, vpc_ids, groups, errors, ipv6_vpcs):
        """The rule steps of VPCs where another run created a group first: described again, adopted when ours."""
        try:
            described = ec2_network.describe_groups_by_name(self.client, vpc_ids, self.names.values())
        except AWS_ERRORS as exc:
            for vpc_id in vpc_ids:
                errors[vpc_id] = failure(vpc_id, "DescribeSecurityGroups", exc)
            return []
        redo, found, redo_errors = isolation.plan_groups(vpc_ids, [isolation.group_view(g) for g in described], self.names,
                                                         self.allowed_rules, ipv6_vpcs, self.exclusive)
        errors.update(redo_errors)
        for vpc_id in set(vpc_ids) - set(redo_errors):
            missing = [r for r in (isolation.CONVERSION, isolation.ISOLATION)
                       if not found.get((vpc_id, r)) and not groups.get((vpc_id, r))]
            if missing:
                errors[vpc_id] = f"{vpc_id}: created {', '.join(missing)} group not found by DescribeSecurityGroups"
        groups.update({k: v for k, v in found.items() if v})
        return [s for s in redo if s["action"] != "CreateSecurityGroup"]

    # -- instances ------------------------------------------------------------------------------
    def tag_batches(self, steps, call):
        """Run CreateTags/DeleteTags steps, one call per identical tag set and TAG_RESOURCES_MAX resources;
        returns {instance_id: error}."""
        by_tags = {}
        for step in steps:
            key = tuple(sorted(step["tags"].items())) if isinstance(step["tags"], dict) else tuple(step["tags"])
            by_tags.setdefault(key, []).append(step)
        batches = [same[start:start + TAG_RESOURCES_MAX] for same in by_tags.values()
                   for start in range(0, len(same), TAG_RESOURCES_MAX)]
        errors = {}

        def run(batch):
            resources = [s["resource"] for s in batch]
            try:
                call(self.client, resources, batch[0]["tags"])
            except AWS_ERRORS as exc:
                action = "CreateTags" if call is ec2_network.create_tags else "DeleteTags"
                for step in batch:
                    errors[step["instance_id"]] = failure(step["resource"], action, exc)

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(run, batches))
        return errors

    def isolate_interface(self, step, groups, original, current=None):
        """Conversion group, then isolation group at once. On failure after the conversion move, the ENI
        goes back to its original groups: it must never stay on the open conversion group.

        Moves off the conversion group go first: no conversion starts while one waits (for its answer or a
        retry), so an ENI's time on the open group is one call plus that call's own retries, not a queue
        of other ENIs' conversions and their backoff. An ENI found already on the conversion group (`current`,
        a run stopped between its two moves) goes straight on to the isolation group."""
        eni_id, vpc_id = step["resource"], step["vpc_id"]
        conversion, final = groups[(vpc_id, isolation.CONVERSION)], groups[(vpc_id, isolation.ISOLATION)]
        if current == [conversion]:
            self.isolation_waiting(+1)
        else:
            try:
                self.moves.retried(lambda: self.convert(eni_id, conversion),
                                   CONVERSION_RETRY, before=self.conversion_allowed,
                                   after=lambda: self.isolation_waiting(+1))
            except botocore.exceptions.ClientError as exc:
                return None, None, failure(eni_id, "ModifyNetworkInterfaceAttribute", exc) + \
                    " (moving to the conversion group; the ENI is unchanged)"
            except botocore.exceptions.BotoCoreError as exc:
                # No answer: the move may have happened. Put the original groups back (idempotent) so the ENI is
                # not on the open group; isolation is retried on the next run.
                error = failure(eni_id, "ModifyNetworkInterfaceAttribute", exc) + " (moving to the conversion group)"
                refused = self.put_back(eni_id, original)
                if refused is None:
                    return list(original), None, error + "; the ENI was put back on its original groups"
                return None, None, (error + f"; putting it back failed too ({refused}): check that {eni_id} "
                                    f"is not on the conversion group {conversion}")
        converted = time.monotonic()
        try:
            try:
                self.moves.retried(lambda: ec2_network.set_interface_groups_once(self.client, eni_id, [final]),
                                   ISOLATION_RETRY)
                return [final], time.monotonic() - converted, None
            except AWS_ERRORS as exc:
                error = failure(eni_id, "ModifyNetworkInterfaceAttribute", exc) + " (moving to the isolation group)"
            refused = self.put_back(eni_id, original)
        finally:
            self.isolation_waiting(-1)
        if refused is None:
            return list(original), time.monotonic() - converted, error + "; the ENI was put back on its original groups"
        return [conversion], None, (error + f"; putting it back failed too ({refused}): the ENI is on the "
                                    f"conversion group {conversion}, move it to {final} by hand")

    def convert(self, eni_id, conversion):
        with self.pacer.pacing():
            return ec2_network.set_interface_groups_once(self.client, eni_id, [conversion])

    def finish_conversion(self, step, groups):
        """An ENI found on a conversion group goes on to its VPC's isolation group, ahead of any conversion."""
        eni_id, final = step["resource"], groups[(step["vpc_id"], isolation.ISOLATION)]
        self.isolation_waiting(+1)
        try:
            self.moves.retried(lambda: ec2_network.set_interface_groups_once(self.client, eni_id, [final]),
                               ISOLATION_RETRY)
            return [final], None, None
        except AWS_ERRORS as exc:
            return None, None, failure(eni_id, "ModifyNetworkInterfaceAttribute", exc) + \
                " (moving it from the conversion group to the isolation group)"
        finally:
            self.isolation_waiting(-1)

    # -- isolation moves first --------------------------------------------------------------------
    def isolation_waiting(self, delta):
        """Count the moves off a conversion group not answered yet; wake the conversions when none is left."""
        with self.gate:
            self.waiting += delta
            if not self.waiting:
                self.gate.notify_all()

    def conversion_allowed(self):
        """Hold a conversion (and each of its retries) while any move off a conversion group waits."""
        with self.gate:
            while self.waiting:
                self.gate.wait()

    def put_back(self, eni_id, original):
        """Put the ENI back on its original groups; None, or AWS's error code when that fails too."""
        try:
            ec2_network.set_interface_groups(self.client, eni_id, original)
            return None
        except AWS_ERRORS as exc:
            return error_code(exc)

    def restore_interface(self, step):
        try:
            ec2_network.set_interface_groups(self.client, step["resource"], step["groups"])
            return list(step["groups"]), None, None
        except AWS_ERRORS as exc:
            return None, None, failure(step["resource"], "ModifyNetworkInterfaceAttribute", exc)


def build_argument_spec():
    return dict(
        instance_ids=dict(type="list", elements="str"),
        batches=module_batches.batches_spec(),
        state=dict(type="str", choices=["isolated", "released"], default="isolated"),
        isolation_group_name=dict(type="str", default="guardduty-isolation"),
        conversion_group_name=dict(type="str", default="guardduty-isolation-conversion"),
        allowed_access=dict(type="list", elements="dict", options=dict(
            cidr=dict(type="str", required=True),
            protocol=dict(type="str", choices=["tcp", "udp", "icmp", "all"], default="tcp"),
            port=dict(type="int"),
            to_port=dict(type="int"),
            direction=dict(type="str", choices=["ingress", "egress"], default="ingress"),
        )),
        allowed_access_acknowledge_public=dict(type="bool", default=False),
        allowed_access_exclusive=dict(type="bool", default=False),
        incident_id=dict(type="str"),
        max_concurrency=dict(type="int", default=8),
        incident_store=dict(type="str"),
        lock_timeout=dict(type="int", default=30),
        connection_tracking=dict(type="dict", options=dict(
            tcp_established_timeout=dict(type="int"),
            udp_stream_timeout=dict(type="int"),
            udp_timeout=dict(type="int"),
        )),
        trust_tag_records=dict(type="bool", default=False),
    )


# -- 1. validate ------------------------------------------------------------------------------------------
def validate_options(module):
    """(group names, allowed_access as rules, connection-tracking spec); fails the module, before any call, on a
    bad option."""
    params = module.params
    names = {isolation.ISOLATION: params["isolation_group_name"], isolation.CONVERSION: params["conversion_group_name"]}
    if not params["instance_ids"]:
        module.fail_json(msg="instance_ids is empty: give at least one instance id", instances={}, errors=[])
    if names[isolation.ISOLATION] == names[isolation.CONVERSION]:
        module.fail_json(msg="isolation_group_name and conversion_group_name must differ", instances={}, errors=[])
    incident_id = params["incident_id"]
    if incident_id is not None and len(incident_id) > isolation.TAG_VALUE_MAX:
        module.fail_json(msg=f"incident_id is {len(incident_id)} characters long; an EC2 tag value holds at most "
                             f"{isolation.TAG_VALUE_MAX}: nothing was changed", instances={}, errors=[])
    problems = [p for p in (
        guards.incident_id_problem(incident_id) if incident_id is not None else None,
        guards.group_name_problem(names[isolation.ISOLATION], "isolation_group_name"),
        guards.group_name_problem(names[isolation.CONVERSION], "conversion_group_name"),
        guards.positive_problem(params["max_concurrency"], "max_concurrency"),
        f"lock_timeout is {params['lock_timeout']}: give 0 or more seconds" if params["lock_timeout"] < 0 else None) if p]
    if problems:
        module.fail_json(msg="; ".join(problems) + ": nothing was changed", instances={}, errors=[])
    try:
        allowed_rules = isolation.allowed_access_rules(params["allowed_access"], params["allowed_access_acknowledge_public"])
        tracking_spec = connection_tracking.tracking_specification(params["connection_tracking"])
    except ValueError as exc:  # isolation.PlanError is a ValueError
        module.fail_json(msg=f"{exc}: nothing was changed", instances={}, errors=[])
    return names, allowed_rules, tracking_spec


def validate_ids(instance_ids):
    """(every id given, stripped, in order, without duplicates; the valid ones; a problem per malformed one).
    A malformed id fails only itself: the others are still worked on."""
    given = list(dict.fromkeys(str(raw).strip() for raw in instance_ids))
    valid, bad = split_instance_ids(instance_ids)
    return given, valid, {i: InstanceProblem(i, "validate", reason) for i, reason in bad.items()}


def take_locks(module, clients, locks, instance_ids):
    """(instance ids this run holds, {instance_id: problem naming the operation that holds it}).

    Before the describe: a plan made from a state another run is still changing would be stale."""
    params = module.params
    try:
        account_id = clients.client("sts").get_caller_identity()["Account"]  # once per run: the locks' account
    except AWS_ERRORS as exc:
        fail_batch(module, instance_ids, "GetCallerIdentity", exc, " (the account of the operation locks)")
    try:
        backend = instance_lock.backend_for(instance_lock.store_location(params["incident_store"]),
                                            lambda: clients.client("s3"))
        locks.bind(backend, account_id, module.region)
        held, refused = locks.take(instance_ids, instance_lock.owner(params["state"]), params["lock_timeout"])
    except instance_lock.LockError as exc:
        message = f"{batch_label(instance_ids)}: {exc}: nothing was changed"
        module.fail_json(msg=message, instances={}, errors=[
            {"instance_id": None, "action": "TakeLock", "code": "LockError", "message": message}])
    return held, {i: instance_problem(i, [why], "TakeLock", code="InstanceLocked") for i, why in refused.items()}


# -- 2. describe: every Describe call of the run, once per batch, before any change --------------------------
def describe_batch(module, client, instance_ids, names, state):
    """What the plan is made from: the instances, their ENIs (DescribeInstances completed by one
    DescribeNetworkInterfaces), the containment groups by name, the conversion groups by tag and the ENIs on
    them (a run killed between two moves), the IPv6 VPCs where a group is created, the groups a release record
    names. Fails the module, having changed nothing, when a describe the plan needs is refused."""
    found, problems = {}, {}
    action = "DescribeInstances"
    try:
        found, missing = describe_instances(client, instance_ids)
        action = "DescribeNetworkInterfaces"
        eni_ids = [n["NetworkInterfaceId"] for i in found.values() for n in i.get("NetworkInterfaces", [])]
        interfaces = ec2_network.describe_network_interfaces(client, eni_ids) if eni_ids else {}
    except AWS_ERRORS as exc:
        fail_batch(module, instance_ids, action, exc)
    for instance_id, reason in missing.items():
        where = f" ({module.region})" if "not found" in reason else ""
        problems[instance_id] = InstanceProblem(instance_id, "DescribeInstances", reason + where)
    enis = {}
    for instance_id, instance in found.items():
        nics = instance.get("NetworkInterfaces") or []
        if not nics:
            problems[instance_id] = InstanceProblem(instance_id, "DescribeInstances", "has no network interface to isolate")
            continue
        enis[instance_id] = [isolation.interface_view(n, interfaces.get(n["NetworkInterfaceId"])) for n in nics]
    vpc_ids = {e["vpc_id"] for views in enis.values() for e in views if isolation.changeable_problem(e) is None}
    batch = {"instances": found, "enis": enis, "interfaces": interfaces, "problems": problems, "vpc_ids": vpc_ids,
             "groups": [], "ipv6": set(), "recorded_groups": {}, "conversion_groups": set(), "on_conversion": {},
             "held_elsewhere": {}, "recovery_error": None}
    if not vpc_ids:
        return batch
    try:
        batch["groups"] = [isolation.group_view(g) for g in ec2_network.describe_groups_by_name(client, vpc_ids, names.values())]
    except AWS_ERRORS as exc:
        fail_batch(module, instance_ids, "DescribeSecurityGroups", exc)
    try:
        tagged = ec2_network.describe_groups_by_tag(client, vpc_ids, isolation.TAG_GROUP_ROLE, isolation.CONVERSION)
        conversion = {g["group_id"] for g in map(isolation.group_view, tagged) if isolation.is_conversion_group(g)}
        batch["conversion_groups"] = conversion
        batch["on_conversion"] = ec2_network.describe_interfaces_on_groups(client, conversion) if conversion else {}
    except AWS_ERRORS as exc:
        # Never a reason not to contain the batch: named in a warning.
        batch["recovery_error"] = failure(batch_label(instance_ids), "DescribeNetworkInterfaces", exc)
    if state == "isolated":
        # Only where a group is created: a new group gets an IPv6 egress rule in a VPC with an IPv6 block.
        have = {(g["vpc_id"], g["group_name"]) for g in batch["groups"]}
        creating = {v for v in vpc_ids if any((v, n) not in have for n in names.values())}
        try:
            batch["ipv6"] = ec2_network.ipv6_vpcs(client, creating) if creating else set()
        except AWS_ERRORS as exc:
            fail_batch(module, instance_ids, "DescribeVpcs", exc)
    return batch


def claim_stranded(module, client, locks, batch, instance_ids):
    """Of the ENIs of other instances found on a conversion group, those a live run is moving are left to it.

    Each such instance's lock is tried once, never waited for. One held by another run (another AWX slice,
    a second responder) means that run is between the ENI's two moves: it finishes it, and the finding says
    who holds it (`held_by`). The ENIs whose lock this run took are described again, since their run may have
    finished after the first read; only those still on a conversion group are moved, and the locks are
    given back with the run's own. When the lock store cannot answer, they are finished as before: an ENI
    must not stay on the open group."""
    mine = set(instance_ids)
    by_instance = {}
    for eni_id, eni in batch["on_conversion"].items():
        owner = (eni.get("Attachment") or {}).get("InstanceId")
        if owner and owner not in mine:
            by_instance.setdefault(owner, []).append(eni_id)
    if not by_instance or locks.backend is None:
        return
    try:
        taken, holders = locks.try_each(sorted(by_instance), instance_lock.owner(module.params["state"]))
    except instance_lock.LockError as exc:
        module.warn(f"{batch_label(instance_ids)}: the locks of the instances whose ENIs are on a conversion group "
                    f"could not be read ({exc}): they are finished by this run")
        return
    for instance_id, holder in holders.items():
        for eni_id in by_instance[instance_id]:
            batch["held_elsewhere"][eni_id] = instance_lock.describe_owner(holder)
    recheck = [eni_id for instance_id in taken for eni_id in by_instance[instance_id]]
    if not recheck:
        return
    try:
        now = ec2_network.describe_network_interfaces(client, recheck)
    except AWS_ERRORS as exc:
        module.warn(f"{failure(batch_label(instance_ids), 'DescribeNetworkInterfaces', exc)}: the ENIs found on a "
                    "conversion group were not described again; they are finished by this run")
        return
    for eni_id in recheck:
        groups = {g["GroupId"] for g in (now.get(eni_id) or {}).get("Groups") or []}
        if eni_id not in now or not groups & batch["conversion_groups"]:
            del batch["on_conversion"][eni_id]  # its run finished it meanwhile
        else:
            batch["on_conversion"][eni_id] = now[eni_id]


def describe_recorded_groups(module, client, instance_ids, enis, stored):
    """{group_id: {"vpc_id", "role"}} of every group a release record names (store and tags), in one call."""
    recorded_ids = set()
    for instance_id in enis:
        recorded_ids |= isolation.recorded_group_ids(enis[instance_id], stored.get(instance_id))
    try:
        return ec2_network.describe_groups_by_id(client, recorded_ids) if recorded_ids else {}
    except AWS_ERRORS as exc:
        fail_batch(module, instance_ids, "DescribeSecurityGroups", exc)


# -- 3. plan: once, from the described state; check mode shows it, the run follows it ----------------------
def plan_batch(params, state, names, allowed_rules, batch, stored, problems, now):
    """{"groups": (steps, {(vpc, role): id or None}, {vpc: error}), "instances": {id: plan}, "recovery":
    (steps, findings)}: the whole run's plan, made once."""
    enis, instances = batch["enis"], batch["instances"]
    group_steps, groups, vpc_errors = isolation.plan_groups(batch["vpc_ids"], batch["groups"], names, allowed_rules,
                                                            batch["ipv6"], params["allowed_access_exclusive"])
    plans = {}
    for instance_id in instances:
        if instance_id not in enis or instance_id in problems:
            continue
        tags = isolation.tag_dict(instances[instance_id].get("Tags"))
        if state == "isolated":
            plans[instance_id] = isolation.plan_isolate(instance_id, tags, enis[instance_id], groups, names,
                                                        params["incident_id"], now, vpc_errors, stored.get(instance_id))
        else:
            plans[instance_id] = isolation.plan_release(instance_id, tags, enis[instance_id], groups,
                                                        stored.get(instance_id), batch["recorded_groups"],
                                                        params["trust_tag_records"])
    if state == "released":
        group_steps = []  # release never creates or changes groups
    return {"group_steps": group_steps, "groups": groups, "vpc_errors": vpc_errors, "instances": plans,
            "recovery": plan_recovery(state, batch, plans, groups)}


def plan_recovery(state, batch, plans, groups):
    """(steps, findings) for the ENIs found on a conversion group of the batch's VPCs (isolation.py)."""
    conversion = batch["conversion_groups"]
    in_run = {e["network_interface_id"] for views in batch["enis"].values() for e in views}
    handled = set()
    for result in plans.values():
        if result["state"] == "failed":
            continue
        handled.update(s["resource"] for s in result["steps"] if s["action"] == "ModifyNetworkInterfaceAttribute")
    stuck = []
    for eni_id, eni in batch["on_conversion"].items():
        view = isolation.interface_view(eni, eni)
        view["instance_id"] = (eni.get("Attachment") or {}).get("InstanceId")
        view["conversion_group"] = next(g for g in view["security_groups"] if g in conversion)
        view["in_run"] = eni_id in in_run
        view["held_by"] = batch["held_elsewhere"].get(eni_id)
        stuck.append(view)
    return isolation.plan_conversion_recovery(state, stuck, handled, groups)


def warn_recovery(module, plans, recovery, groups, names):
    """Each ENI found on a conversion group, named in the run's warnings (and in its instance's, if in the run)."""
    for finding in recovery:
        if finding.get("held_by"):
            continue  # not stranded: a live run is moving it
        if finding["isolation_group"] is None and not finding.get("error"):
            finding["isolation_group"] = groups.get((finding["vpc_id"], isolation.ISOLATION)) or \
                isolation.group_placeholder(names, isolation.ISOLATION)
        message = isolation.conversion_recovery_warning(finding, module.check_mode)
        if finding["instance_id"] in plans:
            plans[finding["instance_id"]]["warnings"].append(message)
        else:
            module.warn(message)


def execute(worker, state, plans, groups, group_errors, described, recovery_steps=(), recovery=()):
    """Apply each instance's steps in the seed's order; a step's failure stops that instance only.

    ENIs found on a conversion group go on to the isolation group first, before any record or move.
    Results start from the described groups and change only with calls that succeeded."""
    def fail(instance_id, message):
        plans[instance_id]["errors"].append(message)
        plans[instance_id]["state"] = "failed"

    def ok(instance_id):
        plans[instance_id]["changed"] = True

    for result in plans.values():
        result["changed"] = False
        for eni in result["enis"]:
            eni["security_groups"] = list(described[eni["network_interface_id"]])
        broken = {e["vpc_id"] for e in result["enis"]} & set(group_errors)
        if broken and result["steps"]:
            for vpc_id in sorted(broken):
                fail(result["instance_id"], f"{result['instance_id']}: containment groups of {vpc_id} not ready: "
                                            f"{group_errors[vpc_id]}")
    live = [s for r in plans.values() if r["state"] != "failed" for s in r["steps"]]
    enis = {e["network_interface_id"]: e for r in plans.values() for e in r["enis"]}
    findings = {f["network_interface_id"]: f for f in recovery}

    def recover(steps):
        ready = [s for s in steps if s["vpc_id"] not in group_errors and groups.get((s["vpc_id"], isolation.ISOLATION))]
        for step in steps:
            if step not in ready:
                findings[step["resource"]]["error"] = f"the isolation group of {step['vpc_id']} is not ready"
        for step, (new_groups, _seconds, error) in zip(ready, _in_pool(worker, lambda s: worker.finish_conversion(
                s, groups), ready)):
            finding = findings[step["resource"]]
            finding["isolation_group"] = groups[(step["vpc_id"], isolation.ISOLATION)]
            finding["moved"], finding["error"] = new_groups is not None, error
            eni = enis.get(step["resource"])
            if eni is not None and new_groups is not None:
                eni["security_groups"] = new_groups
                ok(step["instance_id"])

    recover(list(recovery_steps))

    def pending(action, kind):
        return [s for s in live if s["action"] == action and s["resource"].startswith(kind)
                and plans[s["instance_id"]]["state"] != "failed"]

    def tag(steps, call, note=""):
        errors = worker.tag_batches(steps, call)
        for step in steps:
            if step["instance_id"] in errors:
                fail(step["instance_id"], errors[step["instance_id"]] + note)
            else:
                ok(step["instance_id"])

    if state == "isolated":
        tag(pending("CreateTags", "eni-"), ec2_network.create_tags, " (recording the original groups; nothing was moved)")
        tag(pending("DeleteTags", "eni-"), ec2_network.delete_tags, " (rewriting the record; nothing was moved)")
        moves = pending("ModifyNetworkInterfaceAttribute", "eni-")
        # ENIs already on the conversion group first: they only need the move on to the isolation group.
        moves.sort(key=lambda s: s["resource"] not in findings)
        outcomes = _in_pool(worker, lambda s: worker.isolate_interface(
            s, groups, enis[s["resource"]]["original_security_groups"] or described[s["resource"]],
            described[s["resource"]]), moves)
    else:
        moves = pending("ModifyNetworkInterfaceAttribute", "eni-")
        outcomes = _in_pool(worker, worker.restore_interface, moves)
        # An ENI on a conversion group whose record cannot be restored goes on to the isolation group.
        fallback = [dict(s, groups=[isolation.ISOLATION], recovery=True) for s, (_g, _t, error) in zip(moves, outcomes)
                    if error and s["resource"] in findings]
        for step in fallback:
            findings[step["resource"]]["in_run"] = True
        recover(fallback)
    for step, (new_groups, seconds, error) in zip(moves, outcomes):
        eni = enis[step["resource"]]
        if step["resource"] in findings and not findings[step["resource"]].get("moved"):
            finding = findings[step["resource"]]
            finding["error"] = error
            finding["moved"] = new_groups is not None and state == "isolated"
            finding["restored"] = new_groups is not None and state == "released"
            finding["isolation_group"] = groups.get((step["vpc_id"], isolation.ISOLATION))
        if new_groups is not None:
            eni["security_groups"] = new_groups
            ok(step["instance_id"])
        if seconds is not None:
            eni["conversion_seconds"] = round(seconds, 3)
        if error:
            eni["error"] = error
            fail(step["instance_id"], error)
    if state == "released":
        tag(pending("DeleteTags", "eni-"), ec2_network.delete_tags, " (deleting the record; the groups were restored)")
    # The instance is marked only once every one of its ENIs is done.
    tag(pending("CreateTags", "i-"), ec2_network.create_tags)
    tag(pending("DeleteTags", "i-"), ec2_network.delete_tags)


def after_isolation(module, client, plans, interfaces, spec):
    """The connection-tracking step, after containment so that it delays no move: the tracked paths each isolated
    instance keeps (read only, a warning each), then the idle timeouts of its ENIs when O(connection_tracking)
    asks (a failure fails the instance, which stays isolated). Returns the timeout steps planned.

    `interfaces` is the batch's DescribeNetworkInterfaces: the moves change no subnet, VPC or timeout."""
    instance_enis = {i: [e["network_interface_id"] for e in r["enis"]] for i, r in plans.items() if r["state"] != "failed"}
    if not instance_enis:
        return []
    described = {e: interfaces[e] for ids in instance_enis.values() for e in ids if e in interfaces}
    try:
        tables = connection_tracking.describe_route_tables(client, {e.get("VpcId") for e in described.values()})
        gateways = connection_tracking.vpce_gateways(tables)
        types = connection_tracking.vpc_endpoint_types(client, gateways) if gateways else {}
        paths = connection_tracking.tracked_paths(instance_enis, described, tables, types)
    except AWS_ERRORS as exc:
        paths = {}
        for instance_id in instance_enis:
            plans[instance_id]["warnings"].append(f"{instance_id}: tracked paths not checked: "
                                                  f"{failure('route tables', 'Describe*', exc)}")
    for instance_id, found in paths.items():
        plans[instance_id]["tracked_paths"] = found
        warning = connection_tracking.paths_warning(instance_id, found)
        if warning:
            plans[instance_id]["warnings"].append(warning)
    steps = connection_tracking.plan_timeouts(instance_enis, described, spec) if described or not spec else [
        {"action": "ModifyNetworkInterfaceAttribute", "resource": e, "instance_id": i, "connection_tracking": spec}
        for i, ids in instance_enis.items() for e in ids]
    if module.check_mode:
        return steps
    for step in steps:
        try:
            connection_tracking.set_timeouts(client, step["resource"], spec)
            plans[step["instance_id"]]["changed"] = True
        except AWS_ERRORS as exc:
            plans[step["instance_id"]]["errors"].append(
                failure(step["resource"], "ModifyNetworkInterfaceAttribute (ConnectionTrackingSpecification)", exc)
                + ": the ENI stays isolated with its previous timeouts")
    return steps


def owner_of(instance):
    return instance.get("OwnerId") or ""


def read_store(store, region, instances, enis, workers):
    """({instance_id: its "network" record or None}, {instance_id: problem}): the store read per instance."""
    def read(instance_id):
        try:
            return instance_id, store.section(owner_of(instances[instance_id]), region, instance_id, "network"), None
        except incident_store.StoreError as exc:
            return instance_id, None, InstanceProblem(instance_id, "ReadIncidentStore", f"{exc}; nothing was changed",
                                                      "IncidentStoreError")

    stored, problems = {}, {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for instance_id, record, problem in pool.map(read, list(enis)):
            if problem:
                problems[instance_id] = problem
            else:
                stored[instance_id] = record
    return stored, problems


def _store_each(plans, workers, function):
    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(function, list(plans)))


def write_store(store, region, instances, plans, workers):
    def write(instance_id):
        plan = plans[instance_id]
        if plan["state"] == "failed" or not plan.get("store"):
            return
        try:
            store.put(owner_of(instances[instance_id]), region, instance_id, "network", plan["store"])
        except incident_store.StoreError as exc:
            plan["errors"].append(f"{instance_id}: writing the record to the incident store: {exc}; nothing was changed")
            plan["state"] = "failed"

    _store_each(plans, workers, write)


def forget_store(store, region, instances, plans, workers):
    """Drop the network record of every instance released whole; a failure leaves it (a rerun converges)."""
    def forget(instance_id):
        plan = plans[instance_id]
        if plan["state"] == "failed" or plan["errors"] or not plan.get("forget"):
            return
        try:
            store.drop(owner_of(instances[instance_id]), region, instance_id, "network")
        except incident_store.StoreError as exc:
            plan["warnings"].append(f"{instance_id}: released, but its record stays in the incident store: {exc}")

    _store_each(plans, workers, forget)


def _in_pool(worker, function, items):
    with ThreadPoolExecutor(worker.workers) as pool:
        return list(pool.map(function, items))


# -- 4. run, then finish ------------------------------------------------------------------------------------
def run(module, locks):
    params = module.params
    state = params["state"]
    names, allowed_rules, tracking_spec = validate_options(module)
    given, valid, problems = validate_ids(params["instance_ids"])
    clients = ModuleClients(module)  # one boto3 session for the EC2, STS (and S3) clients
    with long_lived():  # the client lasts as long as the process
        client = ec2_client(clients)
    if valid and not module.check_mode:
        valid, refused = take_locks(module, clients, locks, valid)
        problems.update(refused)
    batch = describe_batch(module, client, valid, names, state)
    problems.update(batch["problems"])
    if not module.check_mode:
        claim_stranded(module, client, locks, batch, valid)
    if batch["recovery_error"]:
        module.warn(batch["recovery_error"] + ": ENIs left on a conversion group by an earlier run were not looked for")
    store = incident_store.module_store(module)
    stored, store_problems = read_store(store, module.region, batch["instances"], batch["enis"], params["max_concurrency"])
    problems.update(store_problems)
    if state == "released":
        batch["recorded_groups"] = describe_recorded_groups(module, client, valid, batch["enis"], stored)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    plan = plan_batch(params, state, names, allowed_rules, batch, stored, problems, now)
    plans, groups, group_steps = plan["instances"], plan["groups"], plan["group_steps"]
    recovery_steps, recovery = plan["recovery"]
    enis = batch["enis"]
    before = isolation.diff_view([{"instance_id": i, "enis": [dict(network_interface_id=e["network_interface_id"],
                                                                   security_groups=e["security_groups"])
                                                              for e in enis[i]]} for i in plans])
    shown = [{k: v for k, v in s.items() if k != "group_id"} for s in group_steps]  # ids: see security_groups
    instance_steps = [s for p in plans.values() for s in p["steps"]] + recovery_steps

    group_errors = {}
    if not module.check_mode:
        worker = Isolation(client, names, allowed_rules, params["max_concurrency"], params["allowed_access_exclusive"])
        if group_steps:
            groups, group_errors, executed = worker.ensure_groups(group_steps, groups, batch["ipv6"])
            shown = [{k: v for k, v in s.items() if k != "group_id"} for s in executed]
        described = {e["network_interface_id"]: e["security_groups"] for views in enis.values() for e in views}
        if state == "isolated":
            # The store's record goes first, before the tags and before any move (a crash never leaves a
            # change without it); an instance whose record cannot be written is not touched.
            write_store(store, module.region, batch["instances"], plans, worker.workers)
        execute(worker, state, plans, groups, group_errors, described, recovery_steps, recovery)
        if state == "released":
            forget_store(store, module.region, batch["instances"], plans, worker.workers)
    warn_recovery(module, plans, recovery, groups, names)
    timeout_steps = after_isolation(module, client, plans, batch["interfaces"], tracking_spec) if state == "isolated" else []
    finish(module, given, plans, problems, groups, names, group_steps, group_errors, recovery, before,
           shown + instance_steps + timeout_steps)


FAILED_PART = {"changed": False, "state": "failed", "network_interfaces": [], "warnings": [], "error": None}


def instance_part(plan, state):
    """One instance's result, and its problem (None when it did not fail)."""
    failed = bool(plan["errors"]) or plan["state"] == "failed"
    part = {
        "changed": plan.get("changed", bool(plan["steps"])),
        "state": "failed" if failed and plan["state"] != isolation.ISOLATED else plan["state"],
        "network_interfaces": [{k: v for k, v in e.items() if k != "device_index"} for e in plan["enis"]],
        "warnings": plan["warnings"],
        **({"tracked_paths": plan.get("tracked_paths", [])} if state == "isolated" else {}),
        "error": None,
    }
    details = plan["errors"] or ["failed"]
    action = "WriteIncidentStore" if "writing the record to the incident store" in details[0] else None
    return part, (instance_problem(plan["instance_id"], details, action, state) if failed else None)


def finish(module, given, plans, problems, groups, names, group_steps, group_errors, recovery, before, plan):
    """{instance_id: part} and `errors` for every id given, the task failing by name if any instance failed."""
    state = module.params["state"]
    results, failed = {}, []
    for instance_id in given:
        if instance_id in problems:
            failed.append(problems[instance_id])
        elif instance_id not in plans:
            failed.append(InstanceProblem(instance_id, "IsolateInstance", "not processed"))
        else:
            results[instance_id], problem = instance_part(plans[instance_id], state)
            if problem:
                failed.append(problem)
    security_groups = {}
    for (vpc_id, role), group_id in sorted(groups.items()):
        security_groups.setdefault(vpc_id, {})[role] = group_id or isolation.group_placeholder(names, role)

    def diff(_results):
        return {"before": before, "after": isolation.diff_view(list(plans.values()))}

    out = batch_output(module, results, failed, default_result=FAILED_PART, diff=diff, order=given,
                       security_groups=security_groups, plan=plan, conversion_recovery=recovery)
    # Groups created or corrected, and ENIs of other instances moved off a conversion group, change the batch too.
    out["changed"] = out["changed"] or (bool(group_steps) and not group_errors) or \
        any(f.get("moved") and not f["in_run"] for f in recovery)
    for part in out["instances"].values():
        for warning in part["warnings"]:
            module.warn(warning)
    exit_batch(module, given, failed, out)


def run_batch(module):
    locks = instance_lock.OperationLocks()  # taken in run() once the options are checked
    try:
        run(module, locks)
    finally:
        locks.release()


def main():
    module = AnsibleAWSModule(argument_spec=build_argument_spec(), supports_check_mode=True,
                              required_one_of=[("instance_ids", "batches")], mutually_exclusive=[("instance_ids", "batches")])
    if module.params["batches"]:  # several account/region batches in this one process, each as below
        module_batches.run_batches(module, run_batch)
    run_batch(module)


if __name__ == "__main__":
    main()
