# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Forensic snapshots: every EBS volume of an instance, crash-consistent, tagged with the incident.

Planning is pure (`attached_volumes`, `snapshot_tags`, `plan_snapshots`): described instances and the
incident's existing snapshots in, a plan per instance out. The AWS layer below it makes the calls.
"""

import math
import time

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter, describe_by_ids
from ansible_collections.cloudsec.guardduty.plugins.module_utils.evidence_snapshot_tags import (  # noqa: F401 (also for callers)
    TAG_DEVICE, TAG_FINDINGS, TAG_INCIDENT, TAG_INSTANCE, TAG_SNAPSHOT_AT, TAG_SOURCE_REGION, TAG_SOURCE_SNAPSHOT, TAG_VOLUME,
    attached_volumes)

TAG_VALUE_MAX = 256  # AWS's limit on a tag value
UNUSABLE_STATES = ("error", "recoverable")  # failed snapshots are not evidence: take them again


def findings_tag_value(finding_ids):
    """The finding ids, comma-separated; when they do not fit in a tag value, as many as fit and `+N`."""
    ids = [str(f) for f in finding_ids or []]
    value = ",".join(ids)
    if len(value) <= TAG_VALUE_MAX:
        return value
    kept = []
    for index, finding_id in enumerate(ids):
        more = f",+{len(ids) - index - 1}"
        if len(",".join(kept + [finding_id])) + len(more) > TAG_VALUE_MAX:
            break
        kept.append(finding_id)
    return ",".join(kept) + f",+{len(ids) - len(kept)}"


def snapshot_tags(incident_id, instance_id, finding_ids, snapshot_at):
    """Tags shared by all of an instance's snapshots (CreateSnapshots applies one tag set to all)."""
    tags = {TAG_INCIDENT: incident_id, TAG_INSTANCE: instance_id, TAG_SNAPSHOT_AT: snapshot_at}
    if finding_ids:
        tags[TAG_FINDINGS] = findings_tag_value(finding_ids)
    return tags


def volume_tags(volume):
    return {TAG_VOLUME: volume["volume_id"], TAG_DEVICE: volume["device"] or ""}


def tag_dict(tags):
    return {t["Key"]: t["Value"] for t in tags or []}


def aws_tags(tags):
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def snapshot_summary(snapshot, device=None):
    tags = tag_dict(snapshot.get("Tags"))
    return {"snapshot_id": snapshot["SnapshotId"], "volume_id": snapshot.get("VolumeId"),
            "device": device if device is not None else tags.get(TAG_DEVICE),
            "state": snapshot.get("State"), "progress": snapshot.get("Progress")}


def plan_snapshots(instance, existing, incident_id, finding_ids, snapshot_at):
    """What to do for one instance, given the incident's usable snapshots of it.

    Returns {"instance_id", "volumes", "reuse": [snapshot], "create": "instance" | [volume] | None,
    "common_tags", "retag": [(snapshot_id, tags)]}. A rerun reuses the snapshots already taken; a
    volume attached since the first run is snapshotted on its own (CreateSnapshot), because
    CreateSnapshots would take every volume again.
    """
    instance_id = instance["InstanceId"]
    volumes = attached_volumes(instance)
    usable = [s for s in existing if s.get("State") not in UNUSABLE_STATES]
    by_volume = {}
    for snapshot in sorted(usable, key=lambda s: s["SnapshotId"]):
        by_volume.setdefault(snapshot.get("VolumeId"), snapshot)
    missing = [v for v in volumes if v["volume_id"] not in by_volume]
    reuse = [by_volume[v["volume_id"]] for v in volumes if v["volume_id"] in by_volume]
    # Snapshots that lost their per-volume tags (a run stopped between CreateSnapshots and CreateTags).
    retag = []
    device_of = {v["volume_id"]: v for v in volumes}
    for snapshot in reuse:
        wanted = volume_tags(device_of[snapshot["VolumeId"]])
        have = tag_dict(snapshot.get("Tags"))
        if any(have.get(k) is None for k in wanted):
            retag.append((snapshot["SnapshotId"], {k: v for k, v in wanted.items() if have.get(k) is None}))
    if not volumes:
        create = None
    elif len(missing) == len(volumes):
        create = "instance"
    else:
        create = missing or None
    return {"instance_id": instance_id, "volumes": volumes, "reuse": reuse, "create": create,
            "common_tags": snapshot_tags(incident_id, instance_id, finding_ids, snapshot_at), "retag": retag}


def planned_snapshots(plan):
    """The per-volume result check mode reports: reused snapshots as they are, new ones as `(new)`."""
    device_of = {v["volume_id"]: v["device"] for v in plan["volumes"]}
    out = [snapshot_summary(s, device_of.get(s.get("VolumeId"))) for s in plan["reuse"]]
    reused = {s["volume_id"] for s in out}
    for volume in plan["volumes"]:
        if volume["volume_id"] not in reused:
            out.append({"snapshot_id": None, "volume_id": volume["volume_id"], "device": volume["device"],
                        "state": "(new)", "progress": None})
    return sorted(out, key=lambda s: s["device"] or "")


def wait_attempts(timeout, delay):
    return max(1, int(math.ceil(float(timeout) / max(float(delay), 1.0))))


# -- AWS ----------------------------------------------------------------------------------------

def find_incident_snapshots(client, incident_id, instance_ids):
    """{instance_id: [snapshot]} of this account's snapshots tagged for the incident and instances.

    One DescribeSnapshots (paged) per 200 instances: the tag filters do the matching, never a call per instance.
    """
    found = {i: [] for i in instance_ids}
    for snapshot in describe_by_filter(client, "DescribeSnapshots", "Snapshots", f"tag:{TAG_INSTANCE}", instance_ids,
                                       filters=[{"Name": f"tag:{TAG_INCIDENT}", "Values": [incident_id]}], OwnerIds=["self"]):
        owner = tag_dict(snapshot.get("Tags")).get(TAG_INSTANCE)
        if owner in found:
            found[owner].append(snapshot)
    return found


def describe_snapshots_by_id(client, snapshot_ids):
    return {snapshot["SnapshotId"]: snapshot
            for snapshot in describe_by_ids(client, "DescribeSnapshots", "Snapshots", "SnapshotIds", snapshot_ids)}


def _create_tags(client, **kwargs):
    # A new snapshot id can take a moment to be visible to CreateTags (eventual consistency).
    return aws_calls.call(client, "CreateTags", extra_codes=("InvalidSnapshot.NotFound",), **kwargs)


def apply_plan(client, plan, description):
    """Make the plan's calls for one instance; returns the instance's snapshots (summaries).

    Raises ClientError with `.action` set to the failed API action, so the caller can name it.
    """
    device_of = {v["volume_id"]: v["device"] for v in plan["volumes"]}
    created = []
    action = None
    try:
        if plan["create"] == "instance":
            action = "CreateSnapshots"
            # CopyTagsFromSource is left out: the volume's own tags are not evidence metadata.
            response = aws_calls.call(
                client, "CreateSnapshots", Description=description,
                InstanceSpecification={"InstanceId": plan["instance_id"], "ExcludeBootVolume": False},
                TagSpecifications=[{"ResourceType": "snapshot", "Tags": aws_tags(plan["common_tags"])}],
            )
            created = response.get("Snapshots", [])
            # CreateSnapshots puts one tag set on every snapshot: the volume and device go on each one after.
            action = "CreateTags"
            for snapshot in created:
                volume = {"volume_id": snapshot["VolumeId"], "device": device_of.get(snapshot["VolumeId"])}
                _create_tags(client, Resources=[snapshot["SnapshotId"]], Tags=aws_tags(volume_tags(volume)))
                snapshot["Tags"] = aws_tags(dict(plan["common_tags"], **volume_tags(volume)))
        elif plan["create"]:
            action = "CreateSnapshot"
            for volume in plan["create"]:
                tags = dict(plan["common_tags"], **volume_tags(volume))
                snapshot = aws_calls.call(client, "CreateSnapshot", VolumeId=volume["volume_id"], Description=description,
                                          TagSpecifications=[{"ResourceType": "snapshot", "Tags": aws_tags(tags)}])
                snapshot.pop("ResponseMetadata", None)
                created.append(snapshot)
        action = "CreateTags"
        for snapshot_id, tags in plan["retag"]:
            _create_tags(client, Resources=[snapshot_id], Tags=aws_tags(tags))
    except Exception as exc:  # the caller turns it into an InstanceProblem naming the action
        exc.action = action
        exc.created = [snapshot_summary(s, device_of.get(s.get("VolumeId"))) for s in created]
        raise
    snapshots = [snapshot_summary(s, device_of.get(s.get("VolumeId"))) for s in plan["reuse"] + created]
    return sorted(snapshots, key=lambda s: s["device"] or "")


def wait_completed(client, snapshot_ids, timeout, delay, sleep=time.sleep):
    """Wait (bounded) for the snapshots to complete; returns {snapshot_id: snapshot} as last described.

    botocore's snapshot_completed waiter, polled through the floor so a throttled poll is retried rather than
    ending the wait: DescribeSnapshots every `delay` seconds until all are completed or one failed.
    """
    described = describe_snapshots_by_id(client, snapshot_ids)
    for _attempt in range(1, wait_attempts(timeout, delay) if snapshot_ids else 1):
        states = [s.get("State") for s in described.values()]
        if "error" in states or all(state == "completed" for state in states):
            break
        sleep(delay)
        described = describe_snapshots_by_id(client, snapshot_ids)
    return described


# -- copies in another region -------------------------------------------------------------------

def plan_copies(sources, copies):
    """(reuse {source id: copy}, to_copy [source summaries]) for one instance's snapshots.

    Only completed snapshots are copied: a copy of a snapshot still being taken is not evidence yet.
    """
    reuse, to_copy = {}, []
    for source in sources:
        copy = copies.get(source["snapshot_id"])
        if copy is not None and copy.get("State") not in UNUSABLE_STATES:
            reuse[source["snapshot_id"]] = copy
        elif source["state"] == "completed":
            to_copy.append(source)
    return reuse, to_copy


def copy_tags(source_tags, source_snapshot_id, source_region):
    tags = {k: v for k, v in tag_dict(source_tags).items() if k.startswith("guardduty:")}
    tags[TAG_SOURCE_SNAPSHOT] = source_snapshot_id
    tags[TAG_SOURCE_REGION] = source_region
    return tags


def find_copies(client, incident_id, instance_ids):
    """{source snapshot id: copy} of the incident's copies in the client's region (one describe per 200 instances)."""
    copies = {}
    for snapshots in find_incident_snapshots(client, incident_id, instance_ids).values():
        for snapshot in snapshots:
            source = tag_dict(snapshot.get("Tags")).get(TAG_SOURCE_SNAPSHOT)
            if source:
                copies.setdefault(source, snapshot)
    return copies


def copy_snapshot(client, source_region, source_snapshot_id, tags, description):
    """CopySnapshot into the client's region; returns the copy's id. Errors carry `.action`."""
    try:
        answer = aws_calls.call(client, "CopySnapshot", SourceRegion=source_region, SourceSnapshotId=source_snapshot_id,
                                Description=description,
                                TagSpecifications=[{"ResourceType": "snapshot", "Tags": aws_tags(tags)}])
    except Exception as exc:
        exc.action = "CopySnapshot"
        raise
    return answer["SnapshotId"]
