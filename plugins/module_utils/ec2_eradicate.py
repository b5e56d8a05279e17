# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Eradication (seed step 3, last resort): terminate a compromised instance and replace it, guarded.

Guards, all checked before anything is changed:
  - confirmation: the caller names the instances (or `terminate-<incident_id>`);
  - evidence:     every EBS volume of the instance has a completed snapshot tagged for the incident
                  (ec2_forensic_snapshot's tags: guardduty:incident, guardduty:volume);
  - protection:   termination protection on means refuse, unless override_protection (then it is
                  recorded in a tag and turned off first).
Replacement: through its Auto Scaling group (TerminateInstanceInAutoScalingGroup without decrementing
the desired capacity, so the group launches a new one; an instance in Standby is no longer counted in the
desired capacity, so none is launched and the result says so); none when isolate detached it from its
group (the group launched the replacement then, as the detach record says); else from the launch template
it was launched from (RunInstances in the same subnet, tagged guardduty:replaces: the subnet goes into the
template's primary network interface when the template defines interfaces), else none ("no replacement
source").
"""

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter, describe_by_ids
from ansible_collections.cloudsec.guardduty.plugins.module_utils.evidence_snapshot_tags import (
    TAG_INCIDENT, TAG_VOLUME, attached_volumes)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.records import tag_dict

TAG_REPLACES = "guardduty:replaces"
TAG_PROTECTION_WAS = "guardduty:termination-protection-was"
TEMPLATE_ID_TAG = "aws:ec2launchtemplate:id"
TEMPLATE_VERSION_TAG = "aws:ec2launchtemplate:version"
ASG_TAG = "aws:autoscaling:groupName"
NO_REPLACEMENT = "no replacement source: not in an Auto Scaling group and not launched from a launch template"
# Fields of a launch template's network interface that RunInstances takes as they are. Fixed addresses and
# an existing ENI are left out: they belong to the instance being replaced.
INTERFACE_FIELDS = ("AssociatePublicIpAddress", "AssociateCarrierIpAddress", "DeleteOnTermination", "Description",
                    "DeviceIndex", "Groups", "InterfaceType", "Ipv6AddressCount", "SecondaryPrivateIpAddressCount",
                    "NetworkCardIndex", "SubnetId", "Ipv4PrefixCount", "Ipv6PrefixCount")


def confirmed(confirm, instance_ids, incident_id):
    """Whether `confirm` is the literal terminate-<incident_id> or names exactly the instances to terminate."""
    given = [str(c).strip() for c in confirm or [] if str(c).strip()]
    if given == [f"terminate-{incident_id}"]:
        return True
    return bool(given) and sorted(set(given)) == sorted(set(instance_ids))


def missing_evidence(instance, snapshots, incident_id):
    """The volume ids of the instance that have no completed snapshot tagged for the incident."""
    done = set()
    for snapshot in snapshots:
        tags = tag_dict(snapshot.get("Tags"))
        if snapshot.get("State") == "completed" and tags.get(TAG_INCIDENT) == incident_id:
            done.add(tags.get(TAG_VOLUME))
    return [v["volume_id"] for v in attached_volumes(instance) if v["volume_id"] not in done]


def detached_group(record):
    """The Auto Scaling group isolate detached the instance from (asg_mode=detach, the desired capacity kept, so
    the group launched a replacement), from a detach record as records.decode reads it from the tags; else None."""
    asg = (record or {}).get("a")
    return asg[0] if asg and len(asg) > 3 and asg[3] == "detach" else None


def replacement_source(instance, asg_name, detached_from=None):
    """{"kind": "autoscaling", "group"} | {"kind": "detached", "group"} | {"kind": "launch_template", "id",
    "version"} | None."""
    tags = tag_dict(instance.get("Tags"))
    if asg_name:
        return {"kind": "autoscaling", "group": asg_name}
    if detached_from:
        return {"kind": "detached", "group": detached_from}
    if tags.get(TEMPLATE_ID_TAG):
        return {"kind": "launch_template", "id": tags[TEMPLATE_ID_TAG], "version": tags.get(TEMPLATE_VERSION_TAG) or "$Default"}
    return None


def launch_network(subnet_id, template_interfaces):
    """RunInstances parameters placing the replacement in `subnet_id`.

    A template that defines network interfaces refuses an instance-level SubnetId (InvalidParameterCombination,
    EC2 API reference RunInstances, SubnetId: "If you specify a network interface, you must specify any
    subnets as part of the network interface"): the template's interfaces are given again, the subnet on the
    primary one (DeviceIndex 0).
    """
    if not template_interfaces:
        return {"SubnetId": subnet_id}
    interfaces = []
    for interface in template_interfaces:
        spec = {k: interface[k] for k in INTERFACE_FIELDS if k in interface}
        if int(spec.get("DeviceIndex") or 0) == 0:
            spec["DeviceIndex"] = 0
            if subnet_id:
                spec["SubnetId"] = subnet_id
        interfaces.append(spec)
    return {"NetworkInterfaces": interfaces}


def plan_eradicate(instance, incident_id, snapshots, asg_name, termination_protection, override_protection,
                   replace, existing_replacement, asg_lifecycle_state=None, detached_from=None, template_interfaces=None):
    """(refusal message or None, calls, replacement) for one instance.

    existing_replacement: the id of a live instance already tagged guardduty:replaces=<this instance>
    (a rerun after a failed terminate must not launch a second one). asg_lifecycle_state: the instance's
    state in its group (DescribeAutoScalingInstances). detached_from: the group isolate detached it from
    (`detached_group`). template_interfaces: the NetworkInterfaces of its launch template version.
    """
    instance_id = instance["InstanceId"]
    missing = missing_evidence(instance, snapshots, incident_id)
    if missing:
        return (f"no completed evidence snapshot tagged {TAG_INCIDENT}={incident_id} for volume(s) {', '.join(missing)}; "
                f"take them first (cloudsec.guardduty.ec2_forensic_snapshot) and wait for them to complete"), [], None
    if termination_protection and not override_protection:
        return "termination protection is on; set override_protection=true to turn it off and terminate", [], None
    calls = []
    if termination_protection:
        # Recorded before it changes, on the instance (tags stay readable for a while after termination).
        calls.append(("CreateTags", {"Resources": [instance_id], "Tags": [{"Key": TAG_PROTECTION_WAS, "Value": "true"}]}))
        calls.append(("ModifyInstanceAttribute", {"InstanceId": instance_id, "DisableApiTermination": {"Value": False}}))
    source = replacement_source(instance, asg_name, detached_from) if replace else None
    replacement = {"source": source, "instance_id": existing_replacement, "note": None}
    if source and source["kind"] == "autoscaling":
        calls.append(("TerminateInstanceInAutoScalingGroup", {"InstanceId": instance_id, "ShouldDecrementDesiredCapacity": False}))
        if asg_lifecycle_state == "Standby":
            # EnterStandby with ShouldDecrementDesiredCapacity=true took it out of the desired capacity (EC2 Auto
            # Scaling API reference, EnterStandby); terminating without a decrement leaves the capacity as it
            # is, so the group has nothing to replace (with a decrement it would scale in one more instance).
            replacement["note"] = (f"the instance is in Standby in Auto Scaling group {source['group']}, outside its desired "
                                   "capacity: terminating it without decrementing the capacity launches no replacement; "
                                   "raise the group's desired capacity by 1 (SetDesiredCapacity) if one is needed")
        else:
            replacement["note"] = f"Auto Scaling group {source['group']} launches the replacement"
        return None, calls, replacement
    if source and source["kind"] == "detached":
        replacement["note"] = (f"isolate detached the instance from Auto Scaling group {source['group']} keeping its desired "
                               "capacity, so the group already launched the replacement; none is launched here")
    if source and source["kind"] == "launch_template" and not existing_replacement:
        tags = [{"Key": TAG_REPLACES, "Value": instance_id}, {"Key": TAG_INCIDENT, "Value": incident_id}]
        calls.append(("RunInstances", {
            "LaunchTemplate": {"LaunchTemplateId": source["id"], "Version": str(source["version"])},
            **launch_network(instance.get("SubnetId"), template_interfaces), "MinCount": 1, "MaxCount": 1,
            # Idempotent across retries: a retried RunInstances with the same token launches nothing more.
            "ClientToken": f"guardduty-{instance_id}-{incident_id}"[:64],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}]}))
    if source is None:
        replacement["note"] = NO_REPLACEMENT if replace else "replacement not asked (replace=false)"
    calls.append(("TerminateInstances", {"InstanceIds": [instance_id]}))
    return None, calls, replacement


# -- AWS ----------------------------------------------------------------------------------------

ASG_DESCRIBE_BATCH = 50  # DescribeAutoScalingInstances takes at most 50 ids


def incident_snapshots_by_volume(ec2, incident_id, volume_ids):
    """[snapshot] of this account tagged for the incident and one of the volumes."""
    return describe_by_filter(ec2, "DescribeSnapshots", "Snapshots", f"tag:{TAG_VOLUME}", volume_ids,
                              filters=[{"Name": f"tag:{TAG_INCIDENT}", "Values": [incident_id]}], OwnerIds=["self"])


def autoscaling_groups(autoscaling, instance_ids):
    """{instance_id: (Auto Scaling group name, lifecycle state)} for the instances in a group."""
    return {item["InstanceId"]: (item["AutoScalingGroupName"], item.get("LifecycleState"))
            for item in describe_by_ids(autoscaling, "DescribeAutoScalingInstances", "AutoScalingInstances", "InstanceIds",
                                        instance_ids, size=ASG_DESCRIBE_BATCH)}


def termination_protection(ec2, instance_id):
    answer = aws_calls.call(ec2, "DescribeInstanceAttribute", InstanceId=instance_id, Attribute="disableApiTermination")
    return bool(answer["DisableApiTermination"]["Value"])


def existing_replacements(ec2, instance_ids):
    """{replaced instance id: live replacement id} from the guardduty:replaces tag."""
    out = {}
    for reservation in describe_by_filter(ec2, "DescribeInstances", "Reservations", f"tag:{TAG_REPLACES}", instance_ids, filters=[
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]):
        for instance in reservation.get("Instances", []):
            out[tag_dict(instance.get("Tags"))[TAG_REPLACES]] = instance["InstanceId"]
    return out


def template_interfaces(ec2, template_id, version):
    """The NetworkInterfaces of a launch template version ([] when it defines none)."""
    versions = aws_calls.call(ec2, "DescribeLaunchTemplateVersions", LaunchTemplateId=template_id, Versions=[str(version)])
    data = (versions.get("LaunchTemplateVersions") or [{}])[0].get("LaunchTemplateData") or {}
    return data.get("NetworkInterfaces") or []


def make_call(ec2, autoscaling, action, params):
    """One planned call, with the client of its service."""
    return aws_calls.call(autoscaling if action == "TerminateInstanceInAutoScalingGroup" else ec2, action, **params)
