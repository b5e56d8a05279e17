# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Detach: take compromised instances out of their Auto Scaling group, target groups and classic load
balancers, and put them back exactly.

Memberships are described once for the whole batch (`describe_memberships`), planned per instance
by pure functions (`plan_detach`, `plan_release`) into a list of (action, parameters) calls (the
floor's shape, aws_calls.py; SERVICES says which client makes each), and made by `apply_calls`. The memberships found are written to the instance tag
`guardduty:detach-record` before any change; release reads it back.

The record is kept in the incident store (written first) and in that tag, the hint to resume, through
the shared codec (records.py).
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import PlanProblem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_ids
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describing

RECORD_TAG = "guardduty:detach-record"
ASG_DESCRIBE_BATCH = 50  # DescribeAutoScalingInstances accepts at most 50 ids
ASG_GROUPS_BATCH = 100  # DescribeAutoScalingGroups: at most 100 names
# DescribeTargetHealth states of a target that still receives traffic (or will): anything but
# `draining` (deregistration under way) and `unused` for a target that is no longer registered.
REGISTERED_STATES = ("initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "unavailable")
# The client (botocore service) that makes each planned action.
SERVICES = {"CreateTags": "ec2", "DeleteTags": "ec2", "DeregisterTargets": "elbv2", "RegisterTargets": "elbv2",
            "DeregisterInstancesFromLoadBalancer": "elb", "RegisterInstancesWithLoadBalancer": "elb",
            "EnterStandby": "autoscaling", "ExitStandby": "autoscaling", "DetachInstances": "autoscaling",
            "AttachInstances": "autoscaling"}
WRITE_ACTIONS = tuple(SERVICES)


def own_addresses(instance):
    """The instance's private IPv4 and IPv6 addresses: the only target ids besides its own id it may be registered as."""
    addresses = set()
    for eni in instance.get("NetworkInterfaces") or []:
        addresses.update(p["PrivateIpAddress"] for p in eni.get("PrivateIpAddresses") or [])
        addresses.update(a["Ipv6Address"] for a in eni.get("Ipv6Addresses") or [])
    return addresses


def foreign_targets(instance_id, record, addresses):
    """The recorded target ids that are neither the instance nor one of its addresses (a forged third element)."""
    return sorted({str(entry[2]) for entry in (record or {}).get("t", [])
                   if len(entry) > 2 and entry[2] != instance_id and entry[2] not in addresses})


def describe_call(call):
    """A short readable form of a call, for check mode, results and errors: `service:Action {params}`."""
    return aws_calls.describe_call(call, service=SERVICES[call[0]])


# -- reading the memberships --------------------------------------------------------------------

def memberships_of(instance, asg_instances, asg_groups, target_health, target_groups, load_balancers):
    """The memberships of one instance from the batch's describe answers.

    - asg_instances: {instance id: DescribeAutoScalingInstances entry}
    - asg_groups: {group name: DescribeAutoScalingGroups entry}
    - target_health: {target group ARN: [TargetHealthDescriptions]}
    - target_groups: {target group ARN: DescribeTargetGroups entry plus "DeregistrationDelay" (int)}
    - load_balancers: DescribeLoadBalancers entries plus "ConnectionDraining" ({Enabled, Timeout})
    """
    instance_id = instance["InstanceId"]
    private_ips = set()
    for eni in instance.get("NetworkInterfaces") or []:
        private_ips.update(p["PrivateIpAddress"] for p in eni.get("PrivateIpAddresses") or [])
        private_ips.update(a["Ipv6Address"] for a in eni.get("Ipv6Addresses") or [])
    asg = None
    entry = asg_instances.get(instance_id)
    if entry:
        group = asg_groups.get(entry["AutoScalingGroupName"]) or {}
        asg = {"group": entry["AutoScalingGroupName"], "lifecycle_state": entry["LifecycleState"],
               "desired_capacity": group.get("DesiredCapacity"), "min_size": group.get("MinSize"),
               "max_size": group.get("MaxSize")}
    targets = []
    for arn in sorted(target_health):
        group = target_groups.get(arn) or {}
        ip_target = group.get("TargetType") == "ip" and group.get("VpcId") == instance.get("VpcId")
        for description in target_health[arn]:
            target = description["Target"]
            mine = target["Id"] == instance_id or (ip_target and target["Id"] in private_ips)
            if mine:
                targets.append({"target_group_arn": arn, "id": target["Id"], "port": target.get("Port"),
                                "state": (description.get("TargetHealth") or {}).get("State"),
                                "deregistration_delay": group.get("DeregistrationDelay")})
    elbs = []
    for lb in load_balancers:
        if any(i["InstanceId"] == instance_id for i in lb.get("Instances") or []):
            draining = lb.get("ConnectionDraining") or {}
            elbs.append({"name": lb["LoadBalancerName"],
                         "connection_draining": draining.get("Timeout") if draining.get("Enabled") else 0})
    return {"autoscaling": asg, "target_groups": targets, "load_balancers": sorted(elbs, key=lambda e: e["name"])}


def registered_targets(memberships):
    return [t for t in memberships["target_groups"] if t["state"] in REGISTERED_STATES]


# -- the record ---------------------------------------------------------------------------------
# {"a": [group, lifecycle state, desired capacity, asg mode] or null, "t": [[arn, port] or [arn, port, ip]],
#  "e": [classic load balancer names]}

def record_from(instance_id, memberships, asg_mode, record=None):
    """The record to keep: the one already there, plus memberships found since (re-registered by hand)."""
    targets = [list(t) for t in (record or {}).get("t", [])]
    for target in registered_targets(memberships):
        entry = [target["target_group_arn"], target["port"]] + ([] if target["id"] == instance_id else [target["id"]])
        if entry not in targets:
            targets.append(entry)
    elbs = list((record or {}).get("e", []))
    elbs += [lb["name"] for lb in memberships["load_balancers"] if lb["name"] not in elbs]
    asg = (record or {}).get("a")
    current = memberships["autoscaling"]
    if asg is None and current and not (asg_mode == "standby" and current["lifecycle_state"] == "Standby"):
        asg = [current["group"], current["lifecycle_state"], current["desired_capacity"], asg_mode]
    return {"a": asg, "t": sorted(targets), "e": sorted(elbs)}


def record_is_empty(record):
    return not (record["a"] or record["t"] or record["e"])


def shown_record(record):
    """The record in the module's result: readable names."""
    if record is None:
        return None
    asg = record.get("a")
    return {"autoscaling": {"group": asg[0], "lifecycle_state": asg[1], "desired_capacity": asg[2], "asg_mode": asg[3]} if asg else None,
            "target_groups": [{"target_group_arn": t[0], "port": t[1], "id": t[2] if len(t) > 2 else None} for t in record.get("t", [])],
            "load_balancers": list(record.get("e", []))}


# -- planning -----------------------------------------------------------------------------------

def plan_detach(instance_id, memberships, record, record_tags, asg_mode):
    """(calls, new record, predicted memberships, notes). Raises PlanProblem when AWS would refuse.

    Order: the record first; then load balancers and target groups, so no new connection arrives;
    then Auto Scaling, last, because a replacement may start as soon as the instance leaves the group.
    """
    notes = []
    calls = []
    new_record = record_from(instance_id, memberships, asg_mode, record)
    if not record_is_empty(new_record):
        # The tag is (re)written whenever it does not hold the record kept: a forged tag is replaced.
        calls += records.tag_calls(instance_id, RECORD_TAG, new_record, record_tags)
    for target in registered_targets(memberships):
        calls.append(("DeregisterTargets", {"TargetGroupArn": target["target_group_arn"],
                                            "Targets": [{"Id": target["id"], "Port": target["port"]}]}))
        if target["deregistration_delay"]:
            notes.append(f"{target['target_group_arn']}: in-flight requests drain for up to "
                         f"{target['deregistration_delay']} s (deregistration delay) before the target is removed")
    for lb in memberships["load_balancers"]:
        calls.append(("DeregisterInstancesFromLoadBalancer", {"LoadBalancerName": lb["name"],
                                                              "Instances": [{"InstanceId": instance_id}]}))
        if lb["connection_draining"]:
            notes.append(f"classic load balancer {lb['name']}: open connections drain for up to "
                         f"{lb['connection_draining']} s (connection draining)")
    asg = memberships["autoscaling"]
    predicted_asg = None
    if asg:
        state = asg["lifecycle_state"]
        if asg_mode == "standby" and state == "Standby":
            predicted_asg = asg
        elif asg_mode == "standby" and state == "InService":
            if asg["desired_capacity"] is not None and asg["min_size"] is not None and asg["desired_capacity"] - 1 < asg["min_size"]:
                raise PlanProblem("EnterStandby", f"Auto Scaling group {asg['group']} has desired capacity {asg['desired_capacity']} and "
                                  f"minimum size {asg['min_size']}: entering standby without a replacement would go below the "
                                  "minimum; use asg_mode=detach (a replacement starts) or lower the minimum", "ValidationError")
            calls.append(("EnterStandby", {"AutoScalingGroupName": asg["group"], "InstanceIds": [instance_id],
                                           "ShouldDecrementDesiredCapacity": True}))
            predicted_asg = dict(asg, lifecycle_state="Standby", desired_capacity=_minus_one(asg["desired_capacity"]))
            notes.append(f"Auto Scaling group {asg['group']}: instance in standby, desired capacity lowered by 1 (no replacement)")
        elif asg_mode == "detach" and state in ("InService", "Standby"):
            calls.append(("DetachInstances", {"AutoScalingGroupName": asg["group"], "InstanceIds": [instance_id],
                                              "ShouldDecrementDesiredCapacity": False}))
            notes.append(f"Auto Scaling group {asg['group']}: instance detached, desired capacity kept at "
                         f"{asg['desired_capacity']}, so a replacement instance is launched")
        else:
            raise PlanProblem("EnterStandby" if asg_mode == "standby" else "DetachInstances",
                              f"instance is {state} in Auto Scaling group {asg['group']}; it can leave the group only when "
                              "InService (or Standby, to detach): retry once the lifecycle action is over", "IncorrectInstanceState")
    predicted = {"autoscaling": predicted_asg, "target_groups": [], "load_balancers": []}
    return calls, new_record, predicted, notes


def _minus_one(value):
    return None if value is None else value - 1


def plan_release(instance_id, memberships, record, record_keys, existing_target_groups, existing_load_balancers, existing_groups):
    """(calls, predicted memberships, notes): put back every recorded membership missing now, then drop the record.

    Raises PlanProblem when a recorded target group, load balancer or Auto Scaling group no longer exists:
    the record stays, so nothing is lost.
    """
    if record is None:
        return [], memberships, []
    notes = []
    calls = []
    asg = record.get("a")
    current = memberships["autoscaling"]
    predicted_asg = current
    if asg:
        group, lifecycle_state, desired, mode = asg
        if group not in existing_groups:
            raise PlanProblem("DescribeAutoScalingGroups", f"recorded Auto Scaling group {group} no longer exists", "ValidationError")
        if current and current["group"] != group:
            raise PlanProblem("AttachInstances", f"instance is now in Auto Scaling group {current['group']}, not the recorded {group}",
                              "ValidationError")
        if current and current["lifecycle_state"] == "Standby" and lifecycle_state == "InService":
            calls.append(("ExitStandby", {"AutoScalingGroupName": group, "InstanceIds": [instance_id]}))
            predicted_asg = dict(current, lifecycle_state="InService", desired_capacity=_plus_one(current["desired_capacity"]))
        elif current is None:
            calls.append(("AttachInstances", {"AutoScalingGroupName": group, "InstanceIds": [instance_id]}))
            group_now = existing_groups[group]
            now = group_now.get("DesiredCapacity")
            predicted_asg = {"group": group, "lifecycle_state": "InService", "desired_capacity": _plus_one(now),
                             "min_size": group_now.get("MinSize"), "max_size": group_now.get("MaxSize")}
            if now is not None and group_now.get("MaxSize") is not None and now + 1 > group_now["MaxSize"]:
                raise PlanProblem("AttachInstances", f"Auto Scaling group {group} is at its maximum size {group_now['MaxSize']} "
                                  f"(desired capacity {now}): raise the maximum, or scale in, before releasing", "ValidationError")
            if now is not None and desired is not None and now + 1 != desired:
                notes.append(f"Auto Scaling group {group}: desired capacity becomes {now + 1} (it was {desired} before the "
                             "detach; the replacement launched then is still there): scale in if that is too many")
    registered = {(t["target_group_arn"], t["port"], t["id"]) for t in registered_targets(memberships)}
    targets = []
    for entry in record.get("t", []):
        arn, port = entry[0], entry[1]
        target_id = entry[2] if len(entry) > 2 else instance_id
        if arn not in existing_target_groups:
            raise PlanProblem("RegisterTargets", f"recorded target group {arn} no longer exists", "TargetGroupNotFound")
        targets.append({"target_group_arn": arn, "id": target_id, "port": port, "state": "initial",
                        "deregistration_delay": None})
        if (arn, port, target_id) not in registered:
            target = {"Id": target_id}
            if port is not None:
                target["Port"] = port
            calls.append(("RegisterTargets", {"TargetGroupArn": arn, "Targets": [target]}))
    in_elbs = {lb["name"] for lb in memberships["load_balancers"]}
    for name in record.get("e", []):
        if name not in existing_load_balancers:
            raise PlanProblem("RegisterInstancesWithLoadBalancer", f"recorded classic load balancer {name} no longer exists",
                              "LoadBalancerNotFound")
        if name not in in_elbs:
            calls.append(("RegisterInstancesWithLoadBalancer", {"LoadBalancerName": name,
                                                                "Instances": [{"InstanceId": instance_id}]}))
    if record_keys:
        calls.append(("DeleteTags", {"Resources": [instance_id], "Tags": [{"Key": k} for k in record_keys]}))
    predicted = {"autoscaling": predicted_asg, "target_groups": targets,
                 "load_balancers": [{"name": n, "connection_draining": None} for n in record.get("e", [])]}
    return calls, predicted, notes


def _plus_one(value):
    return None if value is None else value + 1


# -- AWS ----------------------------------------------------------------------------------------

def describe_memberships(clients, instance_ids, workers=8):
    """Everything the batch's plans need, in as few calls as the APIs allow:

    DescribeAutoScalingInstances (50 ids a call), DescribeAutoScalingGroups for the groups found,
    DescribeTargetGroups once, DescribeTargetHealth once per target group, DescribeTargetGroupAttributes
    and DescribeLoadBalancerAttributes only for groups and load balancers holding a batch instance,
    DescribeLoadBalancers once. A failed call raises DescribeError naming it.
    Returns (asg_instances, asg_groups, target_health, target_groups, load_balancers).
    """
    autoscaling, elbv2, elb = clients["autoscaling"], clients["elbv2"], clients["elb"]
    asg_instances = {entry["InstanceId"]: entry for entry in describing(
        "DescribeAutoScalingInstances", describe_by_ids, autoscaling, "DescribeAutoScalingInstances", "AutoScalingInstances",
        "InstanceIds", instance_ids, size=ASG_DESCRIBE_BATCH)}
    asg_groups = describe_groups(autoscaling, sorted({e["AutoScalingGroupName"] for e in asg_instances.values()}))
    groups = describing("DescribeTargetGroups", aws_calls.items, elbv2, "DescribeTargetGroups", "TargetGroups")
    groups = [g for g in groups if g.get("TargetType", "instance") in ("instance", "ip")]
    target_groups = {g["TargetGroupArn"]: dict(g) for g in groups}

    def health(arn):
        return arn, describing("DescribeTargetHealth", aws_calls.call, elbv2, "DescribeTargetHealth",
                               TargetGroupArn=arn).get("TargetHealthDescriptions", [])

    target_health = {}
    if groups:
        with ThreadPoolExecutor(max_workers=min(workers, len(groups))) as pool:
            target_health = dict(pool.map(health, target_groups))
    load_balancers = describing("DescribeLoadBalancers", aws_calls.items, elb, "DescribeLoadBalancers", "LoadBalancerDescriptions")
    return asg_instances, asg_groups, target_health, target_groups, load_balancers


def describe_groups(autoscaling, names):
    return {group["AutoScalingGroupName"]: group for group in describing(
        "DescribeAutoScalingGroups", describe_by_ids, autoscaling, "DescribeAutoScalingGroups", "AutoScalingGroups",
        "AutoScalingGroupNames", names, size=ASG_GROUPS_BATCH)}


def add_draining_times(clients, target_groups, load_balancers, arns, lb_names):
    """Deregistration delay of the target groups and connection draining of the load balancers the batch is in."""
    for arn in arns:
        attributes = describing("DescribeTargetGroupAttributes", aws_calls.call, clients["elbv2"], "DescribeTargetGroupAttributes",
                                TargetGroupArn=arn).get("Attributes", [])
        values = {a["Key"]: a["Value"] for a in attributes}
        target_groups[arn]["DeregistrationDelay"] = int(values.get("deregistration_delay.timeout_seconds", 300))
    for lb in load_balancers:
        if lb["LoadBalancerName"] in lb_names:
            attributes = describing("DescribeLoadBalancerAttributes", aws_calls.call, clients["elb"],
                                    "DescribeLoadBalancerAttributes",
                                    LoadBalancerName=lb["LoadBalancerName"]).get("LoadBalancerAttributes", {})
            lb["ConnectionDraining"] = attributes.get("ConnectionDraining") or {}


def apply_calls(clients, calls):
    """Make the calls in order, each with its service's client; the first failure stops the rest (its
    exception carries `.action` and `.done`)."""
    return aws_calls.make_calls(lambda action: clients[SERVICES[action]], calls, shown=describe_call)
